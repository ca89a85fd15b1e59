"""get_vehicle_info: VIN decoding (valid and invalid) and the service history."""

from __future__ import annotations

import psycopg
import pytest

import crm


@pytest.mark.parametrize(
    ("vin", "maker", "year", "country"),
    [("1HGCM82633A004352", "Honda", 2003, "United States"),
     ("5YJ3E1EAXJF000001", "Tesla", 2018, "United States"),
     ("1hg cm826-33a004352", "Honda", 2003, "United States")],
)
def test_valid_vins_decode(vin: str, maker: str, year: int, country: str) -> None:
    facts = crm.decode_vin(vin)
    assert facts["valid"] is True
    assert (facts["manufacturer"], facts["model_year"], facts["country"]) == (maker, year, country)


@pytest.mark.parametrize(
    ("vin", "reason"),
    [("1HGCM82633A00435", "17 characters"),
     ("1HGCM82633A0043521", "17 characters"),
     ("1HGCM82633A00435O", "except I, O and Q"),
     ("5YJ3E1EA7JF000001", "check digit"),
     ("", "17 characters")],
)
def test_invalid_vins_say_why(vin: str, reason: str) -> None:
    facts = crm.decode_vin(vin)
    assert facts["valid"] is False
    assert reason in facts["reason"]


async def test_history_by_vin_and_by_id(clean_db, database_url) -> None:
    customer = (await crm.create_customer("+12125550123", "Maria"))["customer"]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        vehicle_id = (await (await conn.execute(
            "INSERT INTO vehicles (customer_id, vin, year, make, model, mileage)"
            " VALUES (%s, '1HGCM82633A004352', 2003, 'Honda', 'Accord', 180000) RETURNING id",
            (customer["id"],))).fetchone())[0]
        await conn.execute(
            "INSERT INTO appointments (customer_id, vehicle_id, service_type, scheduled_at,"
            " duration_minutes, status, bay) VALUES"
            " (%(c)s, %(v)s, 'oil change', now() - interval '200 days', 30, 'completed', 1),"
            " (%(c)s, %(v)s, 'brake service', now() - interval '20 days', 90, 'completed', 1),"
            " (%(c)s, %(v)s, 'diagnostics', now() + interval '5 days', 60, 'scheduled', 1)",
            {"c": customer["id"], "v": vehicle_id},
        )
    by_vin = await crm.get_vehicle_info(vin="1HGCM82633A004352")
    assert by_vin["found"] is True and by_vin["manufacturer"] == "Honda"
    assert by_vin["vehicle"]["model"] == "Accord"
    assert [v["service_type"] for v in by_vin["service_history"]] == ["brake service", "oil change"]
    assert [v["service_type"] for v in by_vin["upcoming"]] == ["diagnostics"]
    assert await crm.get_vehicle_info(vehicle_id=vehicle_id) == by_vin


async def test_unknown_and_invalid_lookups_answer_without_raising(clean_db) -> None:
    unknown = await crm.get_vehicle_info(vin="1HGCM82633A004352")
    assert unknown["valid"] is True and unknown["found"] is False
    assert unknown["manufacturer"] == "Honda"  # still decoded for the agent
    assert (await crm.get_vehicle_info(vehicle_id=999_999))["found"] is False
    invalid = await crm.get_vehicle_info(vin="NOT A VIN")
    assert invalid["valid"] is False and invalid["found"] is False
    assert (await crm.get_vehicle_info())["reason"] == "give a VIN or a vehicle id"
