"""The appointments table: the single source of truth for capacity on every backend.

A row takes one bay. The exclusion constraint `appointments_no_double_booking` forbids two
active rows overlapping in the same bay, so choosing a bay is simply trying bays in turn,
each attempt in a savepoint: a violation means that bay is taken. A second constraint,
`appointments_no_customer_overlap`, forbids one customer two overlapping active rows in any
bays: its violation means no bay will do. Both are checked by the database, so no race
between two bookings, on one launcher or several, can get past them.

Two transactions inserting colliding rows at the same moment can each find the other's
uncommitted row and wait for each other: PostgreSQL then aborts one as a deadlock, after a
second's wait. So a booking first takes a transaction lock on its shop day; bookings of one
day queue for a few milliseconds instead, and the constraints still decide every race (two
overlapping appointments always fall on one shop day, so they always queue on one lock). The
lock is held for database work only: nothing outside the database is asked while it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg.errors import ExclusionViolation

from calendar_adapter.errors import InvalidRequest
from crm import locks
from crm.appointments import ACTIVE_SQL, COLUMNS, Appointment
from crm.customers import vehicle_label

_NO_DOUBLE_BOOKING = "appointments_no_double_booking"
_NO_CUSTOMER_OVERLAP = "appointments_no_customer_overlap"

T = TypeVar("T")


class BaysFull(Exception):
    """Every bay is taken for part of the requested period."""


class CustomerOverlap(Exception):
    """The customer already has an active appointment overlapping the requested period."""


@dataclass(frozen=True)
class Booking:
    """An appointment (its start in UTC, like every instant inside the package) with what the
    calendar keeps of it: its bay, its event, and what the event says."""

    appointment: Appointment
    bay: int
    calendar_event_id: str | None
    notes: str | None
    customer_name: str
    vehicle: str | None  # "2019 Honda Civic"


@dataclass(frozen=True)
class Occupied:
    bay: int
    start: datetime
    end: datetime
    customer_id: int
    service_type: str


# `{source}` is the appointments table or a data-modifying CTE, so every write returns the
# full appointment (with the names an event summary needs) in the same round trip.
_SELECT = f"""
SELECT {COLUMNS}, a.bay, a.calendar_event_id, a.notes,
       trim(c.first_name || ' ' || c.last_name) AS customer_name, v.year, v.make, v.model
FROM {{source}} a
JOIN customers c ON c.id = a.customer_id
LEFT JOIN vehicles v ON v.id = a.vehicle_id
"""

_INSERT = """
WITH inserted AS (
    INSERT INTO appointments (customer_id, vehicle_id, service_type, scheduled_at,
                              duration_minutes, bay, notes, idempotency_key)
    VALUES (%(customer_id)s, %(vehicle_id)s, %(service_type)s, %(start)s, %(minutes)s,
            %(bay)s, %(notes)s, %(key)s)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING *
)""" + _SELECT.format(source="inserted")

_MOVE = """
WITH moved AS (
    UPDATE appointments SET scheduled_at = %(start)s, bay = %(bay)s, updated_at = now(),
        customer_overlap_allowed = false  -- a time chosen now obeys today's rules
    WHERE id = %(id)s RETURNING *
)""" + _SELECT.format(source="moved")

# Cancelling releases the idempotency key: the same call may book that slot again later.
_SET_STATUS = """
WITH changed AS (
    UPDATE appointments SET status = %(status)s, updated_at = now(),
        idempotency_key = CASE WHEN %(status)s = 'cancelled' THEN NULL ELSE idempotency_key END
    WHERE id = %(id)s RETURNING *
)""" + _SELECT.format(source="changed")

_SET_EVENT = "UPDATE appointments SET calendar_event_id = %(event_id)s, updated_at = now() WHERE id = %(id)s"

# The GiST index behind the exclusion constraint answers this overlap query.
_OCCUPIED = f"""
SELECT bay, scheduled_at, duration_minutes, customer_id, service_type FROM appointments
WHERE status IN {ACTIVE_SQL}
  AND appointment_period(scheduled_at, duration_minutes) && tstzrange(%(start)s, %(end)s)
  AND id IS DISTINCT FROM %(ignore)s
  AND (%(customer)s::bigint IS NULL OR customer_id = %(customer)s)
"""

_PARTY = """
SELECT c.id AS customer_id, v.id AS vehicle_id, v.customer_id AS owner_id
FROM customers c LEFT JOIN vehicles v ON v.id = %(vehicle_id)s
WHERE c.id = %(customer_id)s
"""


async def _one(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> Booking | None:
    row = await (await conn.execute(sql, params)).fetchone()
    if row is None:
        return None
    return Booking(
        Appointment.from_row({**row, "start_time": row["start_time"].astimezone(UTC)}),
        row["bay"], row["calendar_event_id"], row["notes"], row["customer_name"],
        vehicle_label(row["year"], row["make"], row["model"]),
    )


async def get(conn: AsyncConnection, appointment_id: int, *, lock: bool = False) -> Booking | None:
    sql = _SELECT.format(source="appointments") + " WHERE a.id = %(id)s"
    return await _one(conn, sql + (" FOR UPDATE OF a" if lock else ""), {"id": appointment_id})


async def by_key(conn: AsyncConnection, key: str) -> Booking | None:
    sql = _SELECT.format(source="appointments") + " WHERE a.idempotency_key = %(key)s"
    return await _one(conn, sql, {"key": key})


async def occupied(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    ignore: int | None = None,
    *,
    customer: int | None = None,
) -> list[Occupied]:
    """Active appointments overlapping [start, end), except `ignore` (one being moved); only
    `customer`'s when given."""
    cursor = await conn.execute(
        _OCCUPIED, {"start": start, "end": end, "ignore": ignore, "customer": customer}
    )
    found = []
    for row in await cursor.fetchall():
        begins = row["scheduled_at"].astimezone(UTC)
        found.append(Occupied(
            row["bay"], begins, begins + timedelta(minutes=row["duration_minutes"]),
            row["customer_id"], row["service_type"],
        ))
    return found


async def check_party(conn: AsyncConnection, customer_id: int, vehicle_id: int | None) -> None:
    """Refuse an unknown customer, or a vehicle that is unknown or someone else's."""
    row = await (
        await conn.execute(_PARTY, {"customer_id": customer_id, "vehicle_id": vehicle_id})
    ).fetchone()
    if row is None:
        raise InvalidRequest(f"I could not find customer {customer_id}; please check the number.")
    if vehicle_id is not None and row["owner_id"] != customer_id:
        what = "is not on this customer's account" if row["vehicle_id"] else "does not exist"
        raise InvalidRequest(f"Vehicle {vehicle_id} {what}; please check which car it is.")


async def _in_free_bay(
    conn: AsyncConnection, day: date, bays: Iterable[int], attempt: Callable[[int], Awaitable[T]]
) -> T:
    """`attempt(bay)` for the first bay where it does not violate the constraints."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (locks.BOOKING_DAY, day.toordinal()))
    for bay in bays:
        try:
            async with conn.transaction():  # a savepoint: a taken bay must not abort the booking
                return await attempt(bay)
        except ExclusionViolation as exc:
            if exc.diag.constraint_name == _NO_CUSTOMER_OVERLAP:
                raise CustomerOverlap from None
            if exc.diag.constraint_name != _NO_DOUBLE_BOOKING:
                raise
    raise BaysFull


async def insert(
    conn: AsyncConnection,
    *,
    bays: int,
    customer_id: int,
    vehicle_id: int | None,
    service_type: str,
    start: datetime,
    day: date,
    minutes: int,
    notes: str | None,
    key: str | None,
) -> Booking | None:
    """The new appointment (starting on shop day `day`) in the first free bay; None when `key`
    was already used (the earlier booking, committed meanwhile, is then found with `by_key`)."""
    params = {
        "customer_id": customer_id,
        "vehicle_id": vehicle_id,
        "service_type": service_type,
        "start": start,
        "minutes": minutes,
        "notes": notes,
        "key": key,
    }

    async def attempt(bay: int) -> Booking | None:
        return await _one(conn, _INSERT, {**params, "bay": bay})

    return await _in_free_bay(conn, day, range(1, bays + 1), attempt)


async def move(
    conn: AsyncConnection, current: Booking, start: datetime, day: date, bays: int
) -> Booking:
    """`current` at a new start (on shop day `day`), in its own bay if free, else another."""
    order = [current.bay, *(bay for bay in range(1, bays + 1) if bay != current.bay)]

    async def attempt(bay: int) -> Booking:
        moved = await _one(conn, _MOVE, {"id": current.appointment.id, "start": start, "bay": bay})
        assert moved is not None  # the row is locked by the caller
        return moved

    return await _in_free_bay(conn, day, order, attempt)


async def set_status(conn: AsyncConnection, appointment_id: int, status: str) -> Booking:
    changed = await _one(conn, _SET_STATUS, {"id": appointment_id, "status": status})
    assert changed is not None  # the row is locked by the caller
    return changed


async def set_event(conn: AsyncConnection, appointment_id: int, event_id: str | None) -> None:
    await conn.execute(_SET_EVENT, {"id": appointment_id, "event_id": event_id})
