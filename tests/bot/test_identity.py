"""Who a caller may see and change, over the wire: the tools enforce it, whatever the model asks."""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import pytest

import calendar_adapter
import crm
from telephony.webhooks import ATTESTED_VERSTAT
from tests.audio import TEXTS, load
from tests.bot.conftest import Launcher
from tests.bot.test_calls import MARIA, _maria_with_civic, _next_open_day, _tool_result, closed_log
from tests.fakes.openai import Call, ChatRequest, ToolCalls

LEE = "+16465550149"
LEE_VIN = "1HGCM82633A004352"
LEE_MILEAGE = 58213
ATTESTED = {"StirVerstat": ATTESTED_VERSTAT}


async def _lee_with_malibu(database_url: str) -> dict[str, Any]:
    """Another customer, with an upcoming appointment: what Maria's calls must not reveal."""
    customer = (await crm.create_customer(LEE, "Lee", "O'Brien", "lee.obrien@example.com"))["customer"]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        vehicle_id = (await (await conn.execute(
            "INSERT INTO vehicles (customer_id, vin, year, make, model, mileage)"
            " VALUES (%s, %s, 2021, 'Chevrolet', 'Malibu', %s) RETURNING id",
            (customer["id"], LEE_VIN, LEE_MILEAGE))).fetchone())[0]
    _, slot = await _next_open_day()
    booked = await calendar_adapter.book_appointment(slot, "brake service", customer["id"], vehicle_id)
    return {"customer_id": customer["id"], "vehicle_id": vehicle_id,
            "appointment_id": booked["appointment_id"], "start_time": booked["start_time"]}


def _secrets_of_lee(lee: dict[str, Any]) -> list[str]:
    return ["Lee", "O'Brien", "lee.obrien@example.com", str(LEE_MILEAGE), "Malibu", lee["start_time"],
            "brake service"]


def _model_saw(launcher: Launcher) -> str:
    return json.dumps([request.messages for request in launcher.openai.requests])


async def _call(launcher: Launcher, number: str, *steps: Any, **form: str) -> str:
    """One call: the caller says one sentence, the model plays `steps`; returns the call SID."""
    launcher.deepgram.add_script(TEXTS["cancel"])
    launcher.policy.add(*steps, ToolCalls([Call("end_call", {"reason": "done"})]))
    caller = await launcher.ring(number, **form)
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.say(load("cancel"))
        await caller.wait_closed(timeout=30)
    assert launcher.policy.overruns == []
    return caller.call_sid


async def test_a_known_caller_hears_nothing_of_another_customer(
        launcher: Launcher, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    await _maria_with_civic(database_url)
    lee = await _lee_with_malibu(database_url)
    caplog.set_level(logging.DEBUG)
    call_sid = await _call(
        launcher, MARIA,
        ToolCalls([Call("lookup_customer", {"phone": "646-555-0149"})]),
        ToolCalls([Call("get_vehicle_info", {"vehicle_id": lee["vehicle_id"]})]),
        ToolCalls([Call("get_vehicle_info", {"vin": LEE_VIN})]),
        ToolCalls([Call("cancel_appointment", {"appointment_id": lee["appointment_id"]})]),
        ToolCalls([Call("reschedule_appointment", {"appointment_id": lee["appointment_id"],
                                                   "start_time": "2030-01-07T10:00"})]),
        **ATTESTED)

    results = [_tool_result(request) for request in launcher.openai.requests[1:6]]
    assert results[0]["found"] is False
    assert results[1] == {"found": False, "reason": "That vehicle is not on the caller's record."}
    assert results[2]["valid"] is True and results[2]["found"] is False  # decoded, no history
    assert results[3]["success"] is False and results[4]["success"] is False
    seen = _model_saw(launcher)
    log = await closed_log(call_sid)
    for secret in _secrets_of_lee(lee):
        assert secret not in seen, secret
        assert secret not in json.dumps(log["transcript"]), secret
        assert secret not in caplog.text, secret
    assert (await crm.lookup_customer(LEE))["upcoming_appointments"][0]["status"] == "scheduled"


async def test_the_right_last_name_and_make_open_the_reduced_record(
        launcher: Launcher, database_url: str) -> None:
    await _maria_with_civic(database_url)
    lee = await _lee_with_malibu(database_url)
    call_sid = await _call(
        launcher, MARIA,
        ToolCalls([Call("lookup_customer", {"phone": LEE, "last_name": "O'Brien",
                                            "vehicle_make": "Chevy"})]),
        **ATTESTED)
    answer = _tool_result(launcher.openai.requests[1])
    assert answer["verified"] is True
    assert answer["customer"]["last_name"] == "O'Brien"
    assert [v["model"] for v in answer["vehicles"]] == ["Malibu"]
    assert [a["id"] for a in answer["upcoming_appointments"]] == [lee["appointment_id"]]
    seen = _model_saw(launcher)
    for hidden in (LEE_VIN, str(LEE_MILEAGE), "lee.obrien@example.com"):
        assert hidden not in seen, hidden
    assert (await closed_log(call_sid))["verified_customer_ids"] == [lee["customer_id"]]


async def test_an_unattested_caller_id_must_prove_itself_before_cancelling(
        launcher: Launcher, database_url: str) -> None:
    customer_id, vehicle_id = await _maria_with_civic(database_url)
    _, slot = await _next_open_day()
    mine = (await calendar_adapter.book_appointment(slot, "oil change", customer_id, vehicle_id))
    cancel = ToolCalls([Call("cancel_appointment", {"appointment_id": mine["appointment_id"]})])

    def still_booked(request: ChatRequest) -> ToolCalls:
        assert _tool_result(request)["success"] is False
        return ToolCalls([Call("lookup_customer", {"phone": MARIA, "last_name": "lopez",
                                                   "vehicle_make": "Honda"})])

    call_sid = await _call(launcher, MARIA, cancel, still_booked, cancel)  # no StirVerstat

    first, proof, second = (_tool_result(r) for r in launcher.openai.requests[1:4])
    assert "last name" in first["reason"]
    assert proof["verified"] is True
    assert second["success"] is True
    assert (await crm.lookup_customer(MARIA))["upcoming_appointments"] == []
    system = launcher.openai.requests[0].messages[0]["content"]
    assert "Lopez" not in system and "2HGFC2F59KH000001" not in system  # the proof stays unknown
    log = await closed_log(call_sid)
    assert (log["caller_id"], log["customer_id"], log["outcome"]) == ("unattested", customer_id, "cancelled")
    assert log["verified_customer_ids"] == [customer_id]


async def test_wrong_answers_are_counted_and_change_nothing(launcher: Launcher, database_url: str) -> None:
    customer_id, vehicle_id = await _maria_with_civic(database_url)
    _, slot = await _next_open_day()
    mine = (await calendar_adapter.book_appointment(slot, "oil change", customer_id, vehicle_id))
    call_sid = await _call(
        launcher, MARIA,
        ToolCalls([Call("lookup_customer", {"phone": MARIA, "last_name": "Smith", "vehicle_make": "Honda"})]),
        ToolCalls([Call("cancel_appointment", {"appointment_id": mine["appointment_id"]})]),
        StirVerstat="TN-Validation-Passed-C")
    assert _tool_result(launcher.openai.requests[1])["verified"] is False
    assert _tool_result(launcher.openai.requests[2])["success"] is False
    assert len((await crm.lookup_customer(MARIA))["upcoming_appointments"]) == 1
    log = await closed_log(call_sid)
    assert (log["caller_id"], log["failed_verifications"], log["verified_customer_ids"]) == (
        "unattested", 1, [])


@pytest.mark.parametrize("withheld", ["anonymous", "+266696687"])
async def test_a_withheld_number_books_as_a_new_customer_with_a_callback_number(
        launcher: Launcher, database_url: str, withheld: str) -> None:
    await _maria_with_civic(database_url)
    _, slot = await _next_open_day()
    book = {"start_time": slot, "service_type": "oil change", "customer_name": "Sam Rivera"}
    call_sid = await _call(
        launcher, withheld,
        ToolCalls([Call("book_appointment", book)]),
        ToolCalls([Call("book_appointment", {**book, "callback_number": MARIA})]),  # someone else's
        ToolCalls([Call("book_appointment", {**book, "callback_number": "(646) 555-0142"})]))
    no_number, taken, booked = (_tool_result(r) for r in launcher.openai.requests[1:4])
    assert no_number["success"] is False and "callback_number" in no_number["reason"]
    assert taken["success"] is False and "on file" in taken["reason"]
    assert booked["success"] is True
    assert "withheld" in launcher.openai.requests[0].messages[0]["content"]
    assert (await crm.lookup_customer(MARIA))["upcoming_appointments"] == []  # not booked on Maria
    sam = await crm.lookup_customer("+16465550142")
    assert sam["customer"]["last_name"] == "Rivera"
    assert [a["start_time"] for a in sam["upcoming_appointments"]] == [slot]
    log = await closed_log(call_sid)
    assert (log["caller_id"], log["customer_id"], log["outcome"]) == (
        "withheld", sam["customer"]["id"], "booked")
