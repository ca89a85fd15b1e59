"""Who a call may see and change, against real PostgreSQL and Redis (crm.identity)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

import calendar_adapter
import crm
from config.settings import get_settings
from crm.identity import MAX_FAILED_PROOFS, CallerAccess, CallerId, Proof

MARIA, LEE, STRANGER = "+12125550123", "+16465550149", "+16465550142"
MARIA_VIN, LEE_VIN = "2HGFC2F59KH000001", "1HGCM82633A004352"


async def _customer(database_url: str, phone: str, first: str, last: str, vin: str,
                    make: str, model: str) -> tuple[int, int]:
    customer = (await crm.create_customer(phone, first, last, f"{first.lower()}@example.com"))["customer"]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row = await (await conn.execute(
            "INSERT INTO vehicles (customer_id, vin, year, make, model, mileage)"
            " VALUES (%s, %s, 2019, %s, %s, 41000) RETURNING id",
            (customer["id"], vin, make, model))).fetchone()
    await crm.forget_customer(customer["id"])
    return customer["id"], row[0]


@pytest.fixture
async def two_customers(clean_db: None, database_url: str) -> dict[str, tuple[int, int]]:
    return {"maria": await _customer(database_url, MARIA, "Maria", "Lopez", MARIA_VIN, "Honda", "Civic"),
            "lee": await _customer(database_url, LEE, "Lee", "O'Brien", LEE_VIN, "Chevrolet", "Malibu")}


async def _appointment(customer_id: int, vehicle_id: int) -> int:
    """An upcoming oil change for the customer, at the first open slot from tomorrow."""
    today = datetime.now(get_settings().tz).date()
    for offset in range(1, 15):
        day = (today + timedelta(days=offset)).isoformat()
        slots = (await calendar_adapter.check_availability(day, "oil change"))["slots"]
        if slots:
            booked = await calendar_adapter.book_appointment(slots[0], "oil change", customer_id, vehicle_id)
            return booked["appointment_id"]
    raise AssertionError("no open slot in two weeks")


def _mentions(answer: dict[str, Any], *values: object) -> list[object]:
    text = json.dumps(answer, default=str)
    return [value for value in values if str(value) in text]


async def test_attested_caller_reads_their_own_record_in_full(two_customers) -> None:
    access = CallerAccess.of("(212) 555-0123", CallerId.ATTESTED)
    own = await access.lookup("212-555-0123")
    assert own == await crm.lookup_customer(MARIA)
    assert access.view(await access.own_record()) == own


async def test_another_customers_number_finds_nothing_of_them(two_customers) -> None:
    access = CallerAccess.of(MARIA, CallerId.ATTESTED)
    answer = await access.lookup(LEE)
    assert answer["found"] is False
    assert _mentions(answer, "Lee", "O'Brien", LEE_VIN, "Chevrolet", "Malibu", "41000",
                     "lee@example.com", two_customers["lee"][0]) == []
    # An unknown number gets the very same answer: nothing says whether a record exists.
    unknown = await access.lookup(STRANGER)
    assert {k: v for k, v in unknown.items() if k != "phone"} == {
        k: v for k, v in answer.items() if k != "phone"}


async def test_the_right_last_name_and_make_open_a_reduced_record(two_customers) -> None:
    access = CallerAccess.of(MARIA, CallerId.ATTESTED)
    answer = await access.lookup(LEE, Proof(last_name="obrien", vehicle_make="Chevy"))
    assert answer["found"] is True and answer["verified"] is True
    assert answer["customer"]["last_name"] == "O'Brien"
    assert "email" not in answer["customer"]
    assert answer["vehicles"] == [{"id": two_customers["lee"][1], "year": 2019, "make": "Chevrolet",
                                   "model": "Malibu"}]
    assert _mentions(answer, LEE_VIN, "41000", "lee@example.com") == []
    # Once proven, an id-only lookup of that number answers the same reduced record.
    assert (await access.lookup(LEE))["vehicles"] == answer["vehicles"]


async def test_vin_last_four_proves_a_record_too(two_customers) -> None:
    access = CallerAccess.of(STRANGER, CallerId.ATTESTED)
    answer = await access.lookup(LEE, Proof(last_name="O'BRIEN", vin_last4="4352"))
    assert answer["verified"] is True


@pytest.mark.parametrize("proof", [
    Proof(last_name="O'Brien"),  # the last name alone is not enough
    Proof(vehicle_make="Chevrolet", vin_last4="4352"),  # nor facts without the last name
    Proof(last_name="Brien", vehicle_make="Chevrolet"),
    Proof(last_name="O'Brien", vehicle_make="Honda"),
    Proof(last_name="O'Brien", vin_last4="0001"),
])
async def test_a_wrong_or_partial_proof_opens_nothing(two_customers, proof: Proof) -> None:
    access = CallerAccess.of(MARIA, CallerId.ATTESTED)
    answer = await access.lookup(LEE, proof)
    assert answer["found"] is False and answer["verified"] is False
    assert _mentions(answer, "Lee", "O'Brien", LEE_VIN, "Chevrolet") == []
    assert access.failed_proofs == 1


async def test_proofs_stop_after_too_many_wrong_answers(two_customers) -> None:
    access = CallerAccess.of(MARIA, CallerId.ATTESTED)
    for make in ["Ford", "Toyota", "Kia"][:MAX_FAILED_PROOFS]:
        assert (await access.lookup(LEE, Proof("O'Brien", make)))["verified"] is False
    right = await access.lookup(LEE, Proof("O'Brien", "Chevrolet"))
    assert right["found"] is False and "Too many" in right["reason"]


async def test_unattested_caller_id_reads_without_what_proves_it_and_changes_nothing(
        two_customers) -> None:
    maria_id, civic = two_customers["maria"]
    appointment = await _appointment(maria_id, civic)
    access = CallerAccess.of(MARIA, CallerId.UNATTESTED)
    own = access.view(await access.own_record())
    assert own["customer"]["first_name"] == "Maria"
    assert _mentions(own, "Lopez", MARIA_VIN, "41000", "maria@example.com") == []
    assert [a["id"] for a in own["upcoming_appointments"]] == [appointment]
    assert "last name" in (await access.changeable(appointment) or "")

    proven = await access.lookup(MARIA, Proof(last_name="López", vehicle_make="honda"))
    assert proven["verified"] is True
    assert proven == {**await crm.lookup_customer(MARIA), "verified": True}  # in full now
    assert await access.changeable(appointment) is None


async def test_appointments_of_records_the_call_may_not_see_are_refused(two_customers) -> None:
    lee_id, malibu = two_customers["lee"]
    theirs = await _appointment(lee_id, malibu)
    access = CallerAccess.of(MARIA, CallerId.ATTESTED)
    assert "can't find" in (await access.changeable(theirs) or "")
    assert "can't find" in (await access.changeable(999_999) or "")
    await access.lookup(LEE, Proof("O'Brien", "Chevrolet"))
    assert await access.changeable(theirs) is None  # proven on the call: theirs to change


async def test_vehicle_info_only_for_vehicles_the_call_may_see(two_customers) -> None:
    civic = two_customers["maria"][1]
    lee_id, malibu = two_customers["lee"]
    await _appointment(lee_id, malibu)
    access = CallerAccess.of(MARIA, CallerId.ATTESTED)

    mine = await access.vehicle_info(vehicle_id=civic)
    assert mine["found"] is True and mine["vehicle"]["vin"] == MARIA_VIN

    by_id = await access.vehicle_info(vehicle_id=malibu)
    unknown_id = await access.vehicle_info(vehicle_id=999_999)
    assert by_id == unknown_id == {"found": False, "reason": "That vehicle is not on the caller's record."}

    by_vin = await access.vehicle_info(vin=LEE_VIN)
    assert by_vin["valid"] is True and by_vin["found"] is False  # decoded, nobody's history
    assert "vehicle" not in by_vin and "service_history" not in by_vin and "upcoming" not in by_vin
    assert by_vin == {**crm.decode_vin(LEE_VIN), "found": False}

    await access.lookup(LEE, Proof("O'Brien", "Chevrolet"))
    proven = await access.vehicle_info(vehicle_id=malibu)
    assert proven["found"] is True and len(proven["upcoming"]) == 1
    assert _mentions(proven, LEE_VIN, "41000") == []  # reduced: no VIN, no mileage


async def test_withheld_caller_sees_no_record_and_can_be_adopted(two_customers) -> None:
    access = CallerAccess.of("anonymous", CallerId.WITHHELD)
    assert access.number is None
    assert await access.own_record() is None
    assert (await access.lookup(MARIA))["found"] is False
    await crm.create_customer(STRANGER, "Sam", "Rivera")
    access.adopt(STRANGER)
    assert access.may_change(STRANGER)
    assert (await access.lookup(STRANGER))["customer"]["first_name"] == "Sam"
