"""Who is calling: a customer with their vehicles and upcoming appointments, by phone number."""

from __future__ import annotations

import logging
from typing import Any

from config.phones import e164
from config.settings import get_settings
from crm import db
from crm.appointments import ACTIVE_SQL
from crm.cache import cache
from crm.records import CustomerRecord

log = logging.getLogger(__name__)

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
