"""Texts to customers over the wire: the launcher's agent books, moves and cancels on a call and
the customer gets a text for each through the fake Twilio's Messages API; a reminder left on a
machine gets one too. STOP (texted to the launcher's signed webhook) stops them until START;
a number off the allowlist, or SMS_CONFIRMATIONS=off, gets none; a failing Messages API leaves
the call as it was."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest

import calendar_adapter
import crm
from config.settings import get_settings
from telephony.webhooks import ATTESTED_VERSTAT
from tests.audio import TEXTS, load
from tests.bot.conftest import SHOP_NUMBER, Launcher
from tests.bot.test_calls import MARIA, _maria_with_civic, _next_open_day, closed_log
from tests.fakes.openai import Call, ChatRequest, ToolCalls

ADDRESS = "1200 Lake Shore Dr, Chicago"
NEIGHBOUR = "+12125550188"  # a customer whose number is not on the allowlist


@pytest.fixture
def texting(launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> Launcher:
    """The launcher with the shop's address set and Maria on the allowlist (read at each use)."""
    monkeypatch.setenv("SHOP_ADDRESS", ADDRESS)
    monkeypatch.setenv("REMINDER_ALLOWLIST", MARIA)
    get_settings.cache_clear()
    return launcher


def written(start: str) -> str:
    """How the text should write an ISO start time: "Tue Dec 8 at 9:30 AM"."""
    moment = datetime.fromisoformat(start).astimezone(get_settings().tz)
    return f"{moment:%a %b} {moment.day} at {moment:%-I:%M %p}"


def _result(request: ChatRequest) -> dict[str, Any]:
    return next(reversed(request.tool_results().values()))


async def _books_on_a_call(launcher: Launcher, slot: str, vehicle_id: int, *then: Any) -> str:
    """Maria rings and asks for an oil change; the model books `slot`, does `then`, and ends the
    call. Returns the call's SID once it is over."""
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(
        ToolCalls([Call("book_appointment", {"start_time": slot, "service_type": "oil change",
                                             "vehicle_id": vehicle_id})]),
        *then,
        lambda request: ToolCalls([Call("end_call", {"reason": "done"})],
                                  text="All set." if _result(request)["success"] else "Sorry."),
    )
    caller = await launcher.ring(MARIA, StirVerstat=ATTESTED_VERSTAT)  # may move and cancel
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.say(load("book_oil_change"))
        await caller.wait_closed(timeout=30)
    return caller.call_sid


async def test_a_booking_a_move_and_a_cancellation_are_each_texted(texting: Launcher,
                                                                 database_url: str) -> None:
    _, vehicle_id = await _maria_with_civic(database_url)
    day, first = await _next_open_day()
    second = (await calendar_adapter.check_availability(day.isoformat(), "oil change"))["slots"][1]
    call_sid = await _books_on_a_call(
        texting, first, vehicle_id,
        lambda request: ToolCalls([Call("reschedule_appointment", {
            "appointment_id": _result(request)["appointment_id"], "start_time": second})]),
        lambda request: ToolCalls([Call("cancel_appointment", {
            "appointment_id": _result(request)["appointment_id"]})]),
        # The model asks to cancel again: the same change, so no second text.
        lambda request: ToolCalls([Call("cancel_appointment", {
            "appointment_id": _result(request)["appointment_id"]})]),
    )
    assert (await closed_log(call_sid))["outcome"] == "cancelled"
    await texting.twilio.wait_until(lambda: len(texting.twilio.texts_to(MARIA)) >= 3, timeout=10)

    end = f" Find us at {ADDRESS}. Reply STOP to opt out."
    shop = "Lakeside Motors Service"
    # Each is sent on its own: their order is not promised.
    assert sorted(texting.twilio.texts_to(MARIA)) == sorted([
        f"{shop}: your oil change is booked for {written(first)}.{end}",
        f"{shop}: your oil change has moved to {written(second)}.{end}",
        f"{shop}: your oil change on {written(second)} is cancelled.{end}",
    ])
    assert {r.get("From") for r in texting.twilio.messages} == {SHOP_NUMBER}


async def test_a_failing_messages_api_leaves_the_call_as_it_was(
        texting: Launcher, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="telephony.texts")
    _, vehicle_id = await _maria_with_civic(database_url)
    _, slot = await _next_open_day()
    texting.twilio.fail_next(endpoint="message", status=500)
    call_sid = await _books_on_a_call(texting, slot, vehicle_id)

    log = await closed_log(call_sid)
    assert log["outcome"] == "booked"
    assert ("agent", "All set.") in [(turn["role"], turn["text"]) for turn in log["transcript"]]
    await texting.twilio.wait_for_hangup(call_sid, timeout=5)  # ended by the agent, as usual
    record = await crm.lookup_customer(MARIA)
    assert [a["start_time"] for a in record["upcoming_appointments"]] == [slot]
    attempts = [r for r in texting.twilio.requests if r.endpoint == "message"]
    assert [r.status for r in attempts] == [500]
    failed = [r.getMessage() for r in caplog.records if r.name == "telephony.texts"]
    assert failed == ["booked text to +1******0123 not sent: Twilio answered 500 (code 20500)"]


async def _appointment(phone: str, first_name: str) -> dict[str, Any]:
    customer = (await crm.create_customer(phone, first_name, "Lopez"))["customer"]
    _, slot = await _next_open_day()
    booked = await calendar_adapter.book_appointment(slot, "tire rotation", customer["id"])
    assert booked["success"], booked
    return booked


async def _voicemail(launcher: Launcher, phone: str, appointment_id: int) -> None:
    """A reminder call to `phone` reached a machine: Twilio asks the reminder route what to do."""
    call_sid = launcher.twilio.register_call(from_=SHOP_NUMBER, to=phone, direction="outbound-api")
    answer = await launcher.post(f"/twilio/reminder?appointment_id={appointment_id}", {
        "CallSid": call_sid, "AccountSid": launcher.twilio.account_sid, "From": SHOP_NUMBER,
        "To": phone, "CallStatus": "in-progress", "Direction": "outbound-api",
        "AnsweredBy": "machine_end_beep"})
    assert answer.status_code == 200 and "<Say>" in answer.text and "<Hangup />" in answer.text


async def _texted(launcher: Launcher, body: str, sender: str = MARIA) -> None:
    """`sender` texts `body` to the shop; the launcher answers with empty TwiML."""
    status, answer = await launcher.twilio.text_in(f"{launcher.base_url}/twilio/sms", from_=sender,
                                                   to=SHOP_NUMBER, body=body)
    assert (status, answer) == (200, '<?xml version="1.0" encoding="UTF-8"?><Response />')


async def _opted_out_at(database_url: str, phone: str) -> datetime | None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute("SELECT sms_opt_out_at FROM customers WHERE phone = %s",
                                        (phone,))).fetchone()
    assert row is not None
    return row[0]


async def test_a_reminder_left_on_voicemail_is_texted_too(texting: Launcher) -> None:
    booked = await _appointment(MARIA, "Maria")
    await _voicemail(texting, MARIA, booked["appointment_id"])
    await texting.twilio.wait_until(lambda: bool(texting.twilio.texts_to(MARIA)), timeout=10)
    assert texting.twilio.texts_to(MARIA) == [
        f"Lakeside Motors Service: a reminder of your tire rotation on {written(booked['start_time'])}."
        f" Call this number to confirm, move or cancel it. Find us at {ADDRESS}. Reply STOP to opt out."]


async def test_stop_stops_the_texts_until_start(texting: Launcher, database_url: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="telephony.texts")
    booked = await _appointment(MARIA, "Maria")
    await _texted(texting, " stop ")  # Twilio's keywords: one word, any case
    assert await _opted_out_at(database_url, MARIA) is not None
    await _voicemail(texting, MARIA, booked["appointment_id"])
    await texting.twilio.wait_until(lambda: any("opted out" in r.getMessage() for r in caplog.records))

    await _texted(texting, "Thanks!")  # not a keyword: changes nothing
    assert await _opted_out_at(database_url, MARIA) is not None
    await _texted(texting, "START")
    assert await _opted_out_at(database_url, MARIA) is None
    await _voicemail(texting, MARIA, booked["appointment_id"])
    await texting.twilio.wait_until(lambda: bool(texting.twilio.texts_to(MARIA)), timeout=10)
    assert len(texting.twilio.texts_to(MARIA)) == 1  # the one after START
    assert [r for r in texting.twilio.requests if r.endpoint == "message"] == texting.twilio.messages


async def test_each_opt_out_word_opts_out_and_a_stranger_is_only_logged(
        texting: Launcher, database_url: str) -> None:
    await crm.create_customer(MARIA, "Maria", "Lopez")
    for word in ("STOPALL", "unsubscribe", "Cancel", "END", "quit"):
        await _texted(texting, word)
        assert await _opted_out_at(database_url, MARIA) is not None, word
        await _texted(texting, "unstop")
        assert await _opted_out_at(database_url, MARIA) is None
    await _texted(texting, "STOP", sender="+16465550199")  # no customer has that number


async def test_the_signature_of_a_text_is_checked(texting: Launcher) -> None:
    async with httpx.AsyncClient(base_url=texting.base_url) as client:
        forged = await client.post("/twilio/sms", data={"From": MARIA, "Body": "STOP"},
                                   headers={"X-Twilio-Signature": "forged"})
    assert forged.status_code == 403


async def test_no_text_off_the_allowlist_nor_when_texts_are_off(
        texting: Launcher, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="telephony.texts")
    neighbour = await _appointment(NEIGHBOUR, "Nora")
    await _voicemail(texting, NEIGHBOUR, neighbour["appointment_id"])
    await texting.twilio.wait_until(
        lambda: any("not on REMINDER_ALLOWLIST" in r.getMessage() for r in caplog.records))

    monkeypatch.setenv("SMS_CONFIRMATIONS", "off")
    get_settings.cache_clear()
    maria = await _appointment(MARIA, "Maria")
    await _voicemail(texting, MARIA, maria["appointment_id"])  # nothing to send: no task at all
    monkeypatch.setenv("SMS_CONFIRMATIONS", "on")
    get_settings.cache_clear()
    await _voicemail(texting, MARIA, maria["appointment_id"])
    await texting.twilio.wait_until(lambda: bool(texting.twilio.texts_to(MARIA)), timeout=10)
    assert [r.get("To") for r in texting.twilio.messages] == [MARIA]  # once: after turning them on
