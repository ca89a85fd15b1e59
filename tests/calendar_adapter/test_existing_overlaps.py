"""Migration 005 on a database that already holds appointments: overlaps one customer already
has are kept as booked, and from then on the database refuses new ones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from crm import migrate

ONE_CUSTOMER_AT_A_TIME = 5


@pytest.fixture
async def old_database(server_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """A scratch database migrated up to just before 005."""
    name = f"sda_test_old_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
            for migration in migrate.available():
                if migration.version < ONE_CUSTOMER_AT_A_TIME:
                    await conn.execute(migration.sql)
            yield conn
    finally:
        async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_existing_overlaps_are_kept_and_new_ones_refused(old_database: psycopg.AsyncConnection) -> None:
    conn = old_database
    await conn.execute("INSERT INTO customers (id, first_name, phone) VALUES (1, 'A', '+12125550100'),"
                       " (2, 'B', '+12125550101')")
    insert = ("INSERT INTO appointments (id, customer_id, service_type, scheduled_at, duration_minutes,"
              " status, bay) VALUES (%s, %s, 'x', %s, %s, %s, %s)")
    for row in (
        (1, 1, "2026-12-01 10:00-05", 90, "scheduled", 1),
        (2, 1, "2026-12-01 10:30-05", 30, "confirmed", 2),  # overlaps 1: kept, marked
        (3, 1, "2026-12-01 11:00-05", 60, "scheduled", 3),  # overlaps 1 too
        (4, 1, "2026-12-01 10:00-05", 30, "cancelled", 2),  # not holding anything
        (5, 2, "2026-12-01 10:00-05", 30, "scheduled", 2),  # another customer
    ):
        await conn.execute(insert, row)
    for migration in migrate.available():
        if migration.version >= ONE_CUSTOMER_AT_A_TIME:
            await conn.execute(migration.sql)

    rows = await (await conn.execute(
        "SELECT id, status, customer_overlap_allowed FROM appointments ORDER BY id")).fetchall()
    assert [(row["id"], row["status"], row["customer_overlap_allowed"]) for row in rows] == [
        (1, "scheduled", False), (2, "confirmed", True), (3, "scheduled", True),
        (4, "cancelled", False), (5, "scheduled", False),
    ]
    with pytest.raises(psycopg.errors.ExclusionViolation) as refused:
        await conn.execute(insert, (6, 1, "2026-12-01 11:00-05", 30, "scheduled", 2))
    assert refused.value.diag.constraint_name == "appointments_no_customer_overlap"
    await conn.execute(insert, (7, 1, "2026-12-01 11:30-05", 30, "scheduled", 1))  # after 1 ends
    await conn.execute(insert, (8, 2, "2026-12-01 11:00-05", 30, "scheduled", 2))
