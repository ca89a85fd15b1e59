"""Schema migrations: idempotent, and the constraints the contract promises."""

from __future__ import annotations

import psycopg
import pytest

from crm import migrate


async def _schema(database_url: str) -> list[tuple]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        columns = await cur.fetchall()
        cur = await conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 1"
        )
        return columns + await cur.fetchall()


async def test_second_run_changes_nothing(database_url) -> None:
    before = await _schema(database_url)
    assert await migrate.migrate() == []  # the session fixture already migrated
    assert await _schema(database_url) == before
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
    assert [r[0] for r in rows] == [m.version for m in migrate.available()]


CONTRACT = {
    "customers": ("id", "first_name", "last_name", "phone", "email", "created_at"),
    "vehicles": ("id", "customer_id", "vin", "year", "make", "model", "mileage"),
    "appointments": ("id", "customer_id", "vehicle_id", "service_type", "scheduled_at", "duration_minutes",
                     "status", "calendar_event_id", "created_at"),
    "call_logs": ("id", "call_sid", "direction", "from_number", "to_number", "started_at", "ended_at",
                  "outcome", "transcript"),
}


async def test_contract_columns_exist(database_url) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
        types = {(table, column): data_type for table, column, data_type in await cur.fetchall()}
        # Single-column UNIQUE constraints only: one over (a, b) does not make `a` unique.
        cur = await conn.execute(
            "SELECT tc.table_name, min(kcu.column_name) FROM information_schema.table_constraints tc"
            " JOIN information_schema.key_column_usage kcu"
            " ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name"
            " WHERE tc.table_schema = 'public' AND tc.constraint_type = 'UNIQUE'"
            " GROUP BY tc.table_name, tc.constraint_name HAVING count(*) = 1"
        )
        unique = set(await cur.fetchall())
    missing = [(table, column) for table, columns in CONTRACT.items() for column in columns
               if (table, column) not in types]
    assert missing == []
    assert types["appointments", "scheduled_at"] == "timestamp with time zone"
    assert types["call_logs", "transcript"] == "jsonb"
    assert {("customers", "phone"), ("call_logs", "call_sid")} <= unique


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("INSERT INTO customers (first_name, phone) VALUES ('A', '212-555-0123')",
         "customers_phone_e164"),
        ("INSERT INTO appointments (customer_id, service_type, scheduled_at, duration_minutes,"
         " status, bay) VALUES (1, 'oil change', now(), 30, 'pending', 1)",
         "appointments_status_check"),
        ("INSERT INTO vehicles (customer_id, vin, year, make, model) VALUES"
         " (1, '1HGCM82633A00435O', 2019, 'Honda', 'Civic')", "vehicles_vin_format"),
    ],
)
async def test_checks_reject_bad_rows(clean_db, database_url, sql: str, constraint: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO customers (first_name, phone) VALUES ('B', '+12125550100')")
        with pytest.raises(psycopg.errors.CheckViolation) as caught:
            await conn.execute(sql)
    assert caught.value.diag.constraint_name == constraint


async def test_database_refuses_overlap_in_one_bay(clean_db, database_url) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO customers (first_name, phone) VALUES ('B', '+12125550100'),"
                           " ('C', '+12125550101')")
        insert = ("INSERT INTO appointments (customer_id, service_type, scheduled_at,"
                  " duration_minutes, status, bay) VALUES (%s, 'x', %s, %s, %s, %s)")
        await conn.execute(insert, (1, "2026-12-01 10:00-05", 90, "scheduled", 1))
        await conn.execute(insert, (2, "2026-12-01 10:30-05", 30, "scheduled", 2))  # other bay
        await conn.execute(insert, (2, "2026-12-01 11:30-05", 30, "confirmed", 1))  # after it ends
        await conn.execute(insert, (2, "2026-12-01 10:30-05", 30, "cancelled", 1))  # not holding
        with pytest.raises(psycopg.errors.ExclusionViolation) as refused:
            await conn.execute(insert, (2, "2026-12-01 11:00-05", 30, "scheduled", 1))
    assert refused.value.diag.constraint_name == "appointments_no_double_booking"
