"""crm.add_vehicle: a vehicle onto a customer's record; a VIN on file is never moved."""

from __future__ import annotations

import pytest

import crm

HONDA = "1HGCM82633A004352"
MARIA, LEE = "+12125550123", "+16465550149"


async def _customers() -> tuple[int, int]:
    maria = (await crm.create_customer(MARIA, "Maria", "Lopez"))["customer"]["id"]
    lee = (await crm.create_customer(LEE, "Lee", "O'Brien"))["customer"]["id"]
    return maria, lee


async def test_a_vehicle_is_added_and_the_record_shows_it_at_once(clean_db: None) -> None:
    maria, _ = await _customers()
    assert (await crm.lookup_customer(MARIA))["vehicles"] == []  # cached now
    added = await crm.add_vehicle(maria, 2003, " Honda ", "Accord", "1hg cm8 263 3a0 043 52", 180_000)
    assert added["added"] is True
    vehicles = (await crm.lookup_customer(MARIA))["vehicles"]
    assert vehicles == [{"id": added["vehicle_id"], "year": 2003, "make": "Honda", "model": "Accord",
                         "vin": HONDA, "mileage": 180_000}]


async def test_a_vin_on_another_record_stays_there_and_is_not_named(clean_db: None) -> None:
    maria, lee = await _customers()
    await crm.add_vehicle(lee, 2003, "Honda", "Accord", HONDA)
    assert await crm.add_vehicle(maria, 2019, "Honda", "Civic", HONDA, 5) == {
        "added": False, "reason": "vin_on_file"}
    assert (await crm.lookup_customer(MARIA))["vehicles"] == []
    [kept] = (await crm.lookup_customer(LEE))["vehicles"]
    assert (kept["model"], kept["mileage"]) == ("Accord", None)


async def test_the_same_vehicle_twice_is_the_one_on_record(clean_db: None) -> None:
    maria, _ = await _customers()
    with_vin = await crm.add_vehicle(maria, 2003, "Honda", "Accord", HONDA)
    without = await crm.add_vehicle(maria, 2021, "Toyota", "RAV4")
    assert await crm.add_vehicle(maria, 2003, "Honda", "Accord", HONDA) == {
        "added": False, "reason": "on_record", "vehicle_id": with_vin["vehicle_id"]}
    assert await crm.add_vehicle(maria, 2021, "toyota", "rav4") == {
        "added": False, "reason": "on_record", "vehicle_id": without["vehicle_id"]}
    vehicles = (await crm.lookup_customer(MARIA))["vehicles"]
    assert [(v["model"], v["vin"]) for v in vehicles] == [("Accord", HONDA), ("RAV4", None)]


async def test_an_invalid_vin_is_never_stored(clean_db: None) -> None:
    maria, _ = await _customers()
    with pytest.raises(ValueError, match="check digit"):
        await crm.add_vehicle(maria, 2003, "Honda", "Accord", "1HGCM82643A004352")
    assert (await crm.lookup_customer(MARIA))["vehicles"] == []


async def test_a_vehicle_without_a_vin_still_gets_its_history_by_id(clean_db: None) -> None:
    maria, _ = await _customers()
    added = await crm.add_vehicle(maria, 2021, "Toyota", "RAV4", mileage=12_000)
    info = await crm.get_vehicle_info(vehicle_id=added["vehicle_id"])
    assert info["found"] is True and info["vehicle"]["vin"] is None
    assert info["service_history"] == []
