"""Who is calling: a customer with their vehicles and upcoming appointments, by phone number.

The record travels as JSON (the cache, the tools, the contract's `lookup_customer`); in code it
is typed (`CustomerRecord`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from config.phones import e164
from config.settings import get_settings
from crm import db
from crm.appointments import ACTIVE_SQL, Appointment
from crm.cache import cache


def vehicle_label(year: int | None, make: str | None, model: str | None) -> str | None:
    """How a vehicle is named to people ("2019 Honda Civic"); None when nothing is known of it."""
    return " ".join(str(part) for part in (year, make, model) if part) or None


@dataclass(frozen=True)
class Customer:
    id: int
    first_name: str
    last_name: str
    phone: str  # E.164
    email: str | None


@dataclass(frozen=True)
class Vehicle:
    id: int
    year: int
    make: str
    model: str
    vin: str | None  # None: added by a caller who did not have it
    mileage: int | None

    @property
    def label(self) -> str:
        return vehicle_label(self.year, self.make, self.model) or ""


@dataclass(frozen=True)
class CustomerRecord:
    customer: Customer
    vehicles: tuple[Vehicle, ...]
    upcoming: tuple[Appointment, ...]  # the active ones still to come, in shop time, earliest first

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CustomerRecord:
        """From `as_json()`'s shape (the lookup's SQL builds the same)."""
        customer = Customer(**data["customer"])
        return cls(
            customer,
            tuple(Vehicle(**vehicle) for vehicle in data["vehicles"]),
            tuple(Appointment(**{**visit, "customer_id": customer.id,
                                 "start_time": datetime.fromisoformat(visit["start_time"])})
                  for visit in data["upcoming_appointments"]),
        )

    def as_json(self, hide: Collection[str] = ()) -> dict[str, Any]:
        """`lookup_customer`'s answer: `found`, `customer`, `vehicles`, `upcoming_appointments`,
        without the customer and vehicle fields named in `hide`."""
        def shown(part: Any) -> dict[str, Any]:
            return {name: value for name, value in asdict(part).items() if name not in hide}

        return {
            "found": True,
            "customer": shown(self.customer),
            "vehicles": [shown(vehicle) for vehicle in self.vehicles],
            "upcoming_appointments": [_visit(appointment) for appointment in self.upcoming],
        }

    def vehicle(self, vehicle_id: int | None) -> Vehicle | None:
        """That vehicle, or with no id the first one on file."""
        if vehicle_id is None:
            return self.vehicles[0] if self.vehicles else None
        return next((v for v in self.vehicles if v.id == vehicle_id), None)

    def upcoming_visit(self, appointment_id: int) -> Appointment | None:
        return next((visit for visit in self.upcoming if visit.id == appointment_id), None)


def _visit(appointment: Appointment) -> dict[str, Any]:
    """An upcoming appointment in the record's JSON: the customer's id is the record's own."""
    fields = {name: value for name, value in asdict(appointment).items() if name != "customer_id"}
    return {**fields, "start_time": appointment.start_time.isoformat()}

# One round trip: the customer, their vehicles and their upcoming appointments as one JSON
# document. Timestamps render in the connection's time zone, which is the shop's.
_LOOKUP = f"""
SELECT json_build_object(
    'id', c.id, 'first_name', c.first_name, 'last_name', c.last_name,
    'phone', c.phone, 'email', c.email
) AS customer,
coalesce((
    SELECT json_agg(json_build_object(
        'id', v.id, 'year', v.year, 'make', v.make, 'model', v.model,
        'vin', v.vin, 'mileage', v.mileage) ORDER BY v.id)
    FROM vehicles v WHERE v.customer_id = c.id
), '[]'::json) AS vehicles,
coalesce((
    SELECT json_agg(json_build_object(
        'id', a.id, 'vehicle_id', a.vehicle_id, 'service_type', a.service_type,
        'start_time', a.scheduled_at, 'duration_minutes', a.duration_minutes,
        'status', a.status) ORDER BY a.scheduled_at)
    FROM appointments a
    WHERE a.customer_id = c.id AND a.scheduled_at >= now()
      AND a.status IN {ACTIVE_SQL}
), '[]'::json) AS upcoming_appointments
FROM customers c WHERE c.phone = %s
"""


def cache_key(phone: str) -> str:
    return f"customer:{phone}"


async def lookup_customer(phone: str) -> dict[str, Any]:
    """The caller's record by phone number, in any reasonable format, as JSON; never raises for
    an unknown or malformed number (`found: false`). Cached for 5 minutes."""
    try:
        number = e164(phone, get_settings().phone_region)
    except ValueError as exc:
        return {"found": False, "phone": phone, "reason": str(exc)}
    store = await cache()
    key = cache_key(number)
    cached, generation = await store.get(key)
    if cached is not None:
        return cached
    async with db.connection() as conn:
        row = await (await conn.execute(_LOOKUP, (number,))).fetchone()
    answer: dict[str, Any] = (
        {"found": True, **row} if row else {"found": False, "phone": number}
    )
    await store.put(key, answer, generation)
    return answer


async def customer_record(phone: str) -> CustomerRecord | None:
    """`lookup_customer`, typed: the record, or None for a number not on file (or not one)."""
    answer = await lookup_customer(phone)
    return CustomerRecord.from_json(answer) if answer["found"] else None


async def create_customer(
    phone: str, first_name: str, last_name: str = "", email: str | None = None
) -> dict[str, Any]:
    """A new caller becomes a customer; an existing phone returns that customer unchanged."""
    number = e164(phone, get_settings().phone_region)
    async with db.connection() as conn:
        row = await (
            await conn.execute(
                "INSERT INTO customers (first_name, last_name, phone, email)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (phone) DO NOTHING"
                " RETURNING id, first_name, last_name, phone, email",
                (first_name.strip(), last_name.strip(), number, email),
            )
        ).fetchone()
        created = row is not None
        if row is None:
            row = await (
                await conn.execute(
                    "SELECT id, first_name, last_name, phone, email FROM customers"
                    " WHERE phone = %s",
                    (number,),
                )
            ).fetchone()
    if created:
        await (await cache()).forget(cache_key(number))
    return {"created": created, "customer": row}


async def forget_customer(customer_id: int) -> None:
    """Drop the cached record of a customer whose vehicles or appointments just changed."""
    async with db.connection() as conn:
        row = await (
            await conn.execute("SELECT phone FROM customers WHERE id = %s", (customer_id,))
        ).fetchone()
    if row:
        await (await cache()).forget(cache_key(row["phone"]))
