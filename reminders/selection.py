"""Which appointments get a reminder: the target day's `scheduled` ones, with the customer's
phone and vehicle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm import db


@dataclass(frozen=True)
class Appointment:
    id: int
    scheduled_at: datetime
    service_type: str
    customer_id: int
    first_name: str  # the only part of the name a run prints
    phone: str  # E.164, as the customers table keeps it
    vehicle: str | None  # "2019 Honda Civic"


def target_day(now: datetime, tz: ZoneInfo) -> date:
    """Tomorrow in the shop's time zone."""
    return now.astimezone(tz).date() + timedelta(days=1)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants the shop-local day starts and ends (23 or 25 hours apart around DST)."""
    return (datetime.combine(day, time(), tzinfo=tz),
            datetime.combine(day + timedelta(days=1), time(), tzinfo=tz))


_SELECT = """
SELECT a.id, a.scheduled_at, a.service_type, c.id AS customer_id,
       c.first_name, c.phone,
       CASE WHEN v.id IS NOT NULL THEN v.year || ' ' || v.make || ' ' || v.model END AS vehicle
FROM appointments a
JOIN customers c ON c.id = a.customer_id
LEFT JOIN vehicles v ON v.id = a.vehicle_id
WHERE a.status = 'scheduled' AND a.scheduled_at >= %s AND a.scheduled_at < %s
ORDER BY a.scheduled_at, a.id
"""


async def select(day: date, tz: ZoneInfo) -> list[Appointment]:
    """The day's appointments still in status `scheduled`, earliest first."""
    async with db.connection() as conn:
        rows = await (await conn.execute(_SELECT, day_bounds(day, tz))).fetchall()
    return [Appointment(**row) for row in rows]
