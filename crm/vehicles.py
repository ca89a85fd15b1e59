"""A vehicle by VIN or id: what the VIN says about it, and its service history; a vehicle added
to a customer's record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vininfo import Vin

from crm import db
from crm import vin as vins
from crm.customers import forget_customer

_VEHICLE = """
SELECT v.id, v.customer_id, v.vin, v.year, v.make, v.model, v.mileage,
coalesce((
    SELECT json_agg(json_build_object(
        'appointment_id', a.id, 'date', a.scheduled_at, 'service_type', a.service_type,
        'status', a.status) ORDER BY a.scheduled_at DESC)
    FROM appointments a WHERE a.vehicle_id = v.id
), '[]'::json) AS appointments
FROM vehicles v WHERE {where}
"""


def decode_vin(raw: str) -> dict[str, Any]:
    """VIN facts (maker, model year, country, check digit); `valid: false` with a reason. The VIN
    may be typed or spelled out as said (`crm.vin.read`)."""
    checked = vins.read(raw)
    if not checked.valid:
        return {"valid": False, "vin": checked.vin, "reason": checked.reason}
    vin = checked.vin
    decoded = Vin(vin)
    # A year letter repeats every 30 years; the most recent one not in the future is meant.
    latest = datetime.now().year + 1
    years = [year for year in decoded.years if year <= latest]
    return {
        "valid": True,
        "vin": vin,
        "manufacturer": decoded.manufacturer,
        "model_year": max(years) if years else None,
        "country": decoded.country,
        "region": decoded.region,
        "checksum_ok": True,
    }


async def get_vehicle_info(vin: str | None = None, vehicle_id: int | None = None) -> dict[str, Any]:
    """Decoded VIN facts and the vehicle's service history (past visits, newest first, and
    upcoming ones). Unknown vehicles are `found: false`, never an exception."""
    if vin is None and vehicle_id is None:
        return {"valid": False, "found": False, "reason": "give a VIN or a vehicle id"}
    if vin is not None:
        facts = decode_vin(vin)
        if not facts["valid"]:
            return {**facts, "found": False}
        where, key = "v.vin = %s", facts["vin"]
    else:
        facts, where, key = {}, "v.id = %s", vehicle_id
    async with db.connection() as conn:
        row = await (await conn.execute(_VEHICLE.format(where=where), (key,))).fetchone()
    if row is None:
        return {"valid": facts.get("valid", True), **facts, "found": False}
    if not facts and row["vin"]:
        facts = decode_vin(row["vin"])
    visits = row.pop("appointments")
    now = datetime.now().astimezone()
    history = [v for v in visits if datetime.fromisoformat(v["date"]) < now]
    upcoming = [v for v in reversed(visits) if datetime.fromisoformat(v["date"]) >= now]
    return {**facts, "found": True, "vehicle": row, "service_history": history, "upcoming": upcoming}


async def add_vehicle(customer_id: int, year: int, make: str, model: str, vin: str | None = None,
                      mileage: int | None = None) -> dict[str, Any]:
    """Put a vehicle on customer `customer_id`'s record: `added: true` and its `vehicle_id`.

    A VIN on file already is never moved: `added: false`, with `reason: "on_record"` and its
    `vehicle_id` when it is this customer's own vehicle, else `reason: "vin_on_file"` and nothing
    about whose it is. Without a VIN, the same year, make and model on the record (with no VIN
    either) is that vehicle, not a second one. `vin` must pass `crm.vin.read` (ValueError)."""
    checked = vins.read(vin) if vin is not None else None
    if checked is not None and not checked.valid:
        raise ValueError(f"not a valid VIN: {checked.reason}")
    number = checked.vin if checked is not None else None
    make, model = make.strip(), model.strip()
    async with db.connection() as conn:
        if number is None:
            same = await (await conn.execute(
                "SELECT id FROM vehicles WHERE customer_id = %s AND vin IS NULL AND year = %s"
                " AND lower(make) = lower(%s) AND lower(model) = lower(%s)",
                (customer_id, year, make, model))).fetchone()
            if same:
                return {"added": False, "reason": "on_record", "vehicle_id": same["id"]}
        row = await (await conn.execute(
            "INSERT INTO vehicles (customer_id, vin, year, make, model, mileage)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (vin) DO NOTHING RETURNING id",
            (customer_id, number, year, make, model, mileage))).fetchone()
        if row is None:
            holder = await (await conn.execute(
                "SELECT id, customer_id FROM vehicles WHERE vin = %s", (number,))).fetchone()
            if holder and holder["customer_id"] == customer_id:
                return {"added": False, "reason": "on_record", "vehicle_id": holder["id"]}
            return {"added": False, "reason": "vin_on_file"}
    await forget_customer(customer_id)
    return {"added": True, "vehicle_id": row["id"]}
