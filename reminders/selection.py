"""Which appointments get a reminder: the target day's `scheduled` ones, with the customer's
phone and vehicle; and, once a reminder call is answered, the appointment it is about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calendar_adapter import store
from crm import db
from crm.appointments import COLUMNS, Appointment
from crm.customers import vehicle_label


@dataclass(frozen=True)
class DueAppointment:
    """An appointment due a reminder, with what dialling and the run's report need of its customer."""

    appointment: Appointment
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


_SELECT = f"""
SELECT {COLUMNS}, c.first_name, c.phone, v.year, v.make, v.model
FROM appointments a
JOIN customers c ON c.id = a.customer_id
LEFT JOIN vehicles v ON v.id = a.vehicle_id
WHERE a.status = 'scheduled' AND a.scheduled_at >= %s AND a.scheduled_at < %s
ORDER BY a.scheduled_at, a.id
"""


async def select(day: date, tz: ZoneInfo) -> list[DueAppointment]:
    """The day's appointments still in status `scheduled`, earliest first."""
    async with db.connection() as conn:
        rows = await (await conn.execute(_SELECT, day_bounds(day, tz))).fetchall()
    return [DueAppointment(Appointment.from_row(row), row["first_name"], row["phone"],
                           vehicle_label(row["year"], row["make"], row["model"]))
            for row in rows]


async def reminded(appointment_id: int) -> Appointment | None:
    """The appointment a reminder call is about, as it is now (it may have changed since)."""
    async with db.connection() as conn:
        booking = await store.get(conn, appointment_id)
    return booking.appointment if booking else None
