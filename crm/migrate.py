"""Versioned SQL migrations: `crm/migrations/NNN_name.sql`, applied in order, once each.

Each file runs in its own transaction together with its row in `schema_migrations`, under an
advisory lock, so concurrent `init`s serialise and a failed migration leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from crm import db, locks


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    files = resources.files("crm") / "migrations"
    found = []
    for entry in files.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def migrate() -> list[Migration]:
    """Apply what is missing; returns the migrations applied (empty when up to date)."""
    applied: list[Migration] = []
    async with db.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks.MIGRATIONS,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
        done = {row["version"] for row in rows}
        for migration in available():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied.append(migration)
    return applied

