"""Shared data for the calendar tests: a pinned clock and customers in the database."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from crm import db

TZ = ZoneInfo("America/New_York")
# A Monday an hour before opening; every test pins this clock (or another) explicitly.
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=TZ)
TUESDAY = date(2026, 3, 3)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


def iso(day: date, hour: int, minute: int = 0) -> str:
    return at(day, hour, minute).isoformat()


async def make_customers(count: int = 1) -> list[tuple[int, int]]:
    """`count` customers with one vehicle each: [(customer_id, vehicle_id), ...]."""
    async with db.connection() as conn:
        start = (await (await conn.execute("SELECT count(*) AS n FROM customers")).fetchone())["n"]
        found = []
        for n in range(start, start + count):
            customer = await (
                await conn.execute(
                    "INSERT INTO customers (first_name, last_name, phone) VALUES (%s, %s, %s) RETURNING id",
                    ("Maria", f"Lopez{n}" if n else "Lopez", f"+1202555{n:04d}"),
                )
            ).fetchone()
            vehicle = await (
                await conn.execute(
                    "INSERT INTO vehicles (customer_id, vin, year, make, model)"
                    " VALUES (%s, %s, 2019, 'Honda', 'Civic') RETURNING id",
                    (customer["id"], f"1HGCM8263{n:08d}"),
                )
            ).fetchone()
            found.append((customer["id"], vehicle["id"]))
    return found


async def appointments(where: str = "TRUE", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        cursor = await conn.execute(f"SELECT * FROM appointments WHERE {where} ORDER BY id", params)
        return await cursor.fetchall()


async def queued() -> list[dict[str, Any]]:
    """The calendar outbox: one row per appointment whose event is still to be brought in step."""
    async with db.connection() as conn:
        cursor = await conn.execute("SELECT * FROM calendar_outbox ORDER BY appointment_id")
        return await cursor.fetchall()
