"""A vehicle by VIN or id: what the VIN says about it, and its service history."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from vininfo import Vin

from crm import db

_VIN_CHARS = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")

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
    """VIN facts (maker, model year, country, check digit); `valid: false` with a reason."""
    vin = re.sub(r"[\s-]", "", raw or "").upper()
    if len(vin) != 17:
        return {"valid": False, "vin": vin, "reason": f"a VIN has 17 characters, this one has {len(vin)}"}
    if not _VIN_CHARS.match(vin):
        return {"valid": False, "vin": vin,
                "reason": "a VIN uses digits and letters except I, O and Q"}
    decoded = Vin(vin)
    if not decoded.verify_checksum():
        return {"valid": False, "vin": vin,
                "reason": "the check digit (9th character) does not match; a character is likely misheard"}
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
    if not facts:
        facts = decode_vin(row["vin"])
    visits = row.pop("appointments")
    now = datetime.now().astimezone()
    history = [v for v in visits if datetime.fromisoformat(v["date"]) < now]
    upcoming = [v for v in reversed(visits) if datetime.fromisoformat(v["date"]) >= now]
    return {**facts, "found": True, "vehicle": row, "service_history": history, "upcoming": upcoming}
