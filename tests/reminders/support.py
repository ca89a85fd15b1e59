"""Shared data for the reminder tests: a pinned clock, seeded appointments, a config."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crm import db
from reminders.policy import ReminderConfig

TZ = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 2, 17, 0, tzinfo=TZ)  # a Monday afternoon, inside calling hours
DAY = date(2026, 3, 3)  # tomorrow
SHOP = "+13125550199"
AREAS = ("202", "212", "646", "718", "415")


def number(n: int) -> str:
    """The n-th test number: 555-01XX in one area code after another."""
    return f"+1{AREAS[n // 100]}55501{n % 100:02d}"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


def pinned(moment: datetime = NOW):
    return lambda: moment


def config(base_url: str = "http://launcher.test", **overrides: Any) -> ReminderConfig:
    values: dict[str, Any] = {
        "tz": TZ, "allowlist": frozenset(), "shop_number": SHOP, "base_url": base_url,
        "calls_per_second": 500.0, "max_attempts": 3, "backoff_seconds": 0.01,
        "request_timeout": 5.0,
    }
    values.update(overrides)
    if not isinstance(values["allowlist"], frozenset):
        values["allowlist"] = frozenset(values["allowlist"])
    return ReminderConfig(**values)


async def seed(
    count: int,
    *,
    day: date = DAY,
    first: int = 0,
    status: str = "scheduled",
    phones: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """`count` customers, each with a vehicle and one appointment on `day` (30-minute steps
    from 9:00, one bay each so the database's double-booking guard never objects)."""
    phones = list(phones) if phones is not None else [number(first + i) for i in range(count)]
    made = []
    async with db.connection() as conn:
        for i, phone in enumerate(phones):
            n = first + i
            customer = await (await conn.execute(
                "INSERT INTO customers (first_name, last_name, phone) VALUES (%s, %s, %s)"
                " ON CONFLICT (phone) DO UPDATE SET first_name = EXCLUDED.first_name RETURNING id",
                (f"Pat{n}", "Driver", phone),
            )).fetchone()
            vehicle = await (await conn.execute(
                "INSERT INTO vehicles (customer_id, vin, year, make, model)"
                " VALUES (%s, %s, 2019, 'Honda', 'Civic') RETURNING id",
                (customer["id"], f"1HGCM8263{n:08d}"),
            )).fetchone()
            start = at(day, 9) + timedelta(minutes=30 * (n % 16))
            appointment = await (await conn.execute(
                "INSERT INTO appointments (customer_id, vehicle_id, service_type, scheduled_at,"
                " duration_minutes, status, bay) VALUES (%s, %s, 'oil change', %s, 30, %s, %s)"
                " RETURNING id",
                (customer["id"], vehicle["id"], start, status, n + 1),
            )).fetchone()
            made.append({"id": appointment["id"], "phone": phone, "scheduled_at": start,
                         "customer_id": customer["id"]})
    return made


async def rows(sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return await (await conn.execute(sql, params)).fetchall()


async def reminders() -> list[dict[str, Any]]:
    return await rows("SELECT * FROM reminders ORDER BY appointment_id")


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is the point
) -> None:
    """Poll `check` (plain or async) every 10 ms until it holds; TimeoutError after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)
