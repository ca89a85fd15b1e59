"""The appointment vocabulary agrees with the schema, whose migrations spell the lists again."""

from __future__ import annotations

import re

import psycopg

from crm.appointments import ACTIVE, CANCELLED, COMPLETED, CONFIRMED, NO_SHOW, SCHEDULED

_SCHEMA_LISTS = """
SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint
WHERE conrelid = 'appointments'::regclass
  AND conname IN ('appointments_status_check', 'appointments_no_double_booking')
UNION ALL
SELECT indexrelid::regclass::text, pg_get_expr(indpred, indrelid) FROM pg_index
WHERE indexrelid = 'appointments_day'::regclass
"""


async def _statuses_in_schema(database_url: str) -> dict[str, set[str]]:
    """The statuses each of the schema's definitions names, by the definition's name."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute(_SCHEMA_LISTS)).fetchall()
    return {name: set(re.findall(r"'(\w+)'::text", definition)) for name, definition in rows}


async def test_the_statuses_and_the_active_ones_are_those_the_schema_knows(database_url) -> None:
    found = await _statuses_in_schema(database_url)

    assert found == {
        "appointments_status_check": {SCHEDULED, CONFIRMED, CANCELLED, COMPLETED, NO_SHOW},
        "appointments_no_double_booking": set(ACTIVE),
        "appointments_day": set(ACTIVE),
    }
