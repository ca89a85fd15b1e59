"""Warm transfers over the wire: the caller holds with the agent while the desk leg rings (the
fake Twilio plays the desk's phone: answering through the leg's signed `Url`, busy, or ringing
on), the advisor hears the summary and meets the caller in a conference, or the agent offers a
call-back. (A desk leg that cannot be placed, the cold <Dial>: tests/bot/test_calls.py.)"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from typing import Any

import psycopg
import pytest

import crm
from config import lines
from config.settings import get_settings
from pipeline.handover import HOLD_EVERY_SECONDS
from telephony.webhooks import ATTESTED_VERSTAT
from tests.audio import TEXTS, load
from tests.bot.conftest import DESK_NUMBER, SHOP_NUMBER, Launcher
from tests.bot.test_calls import closed_log
from tests.fakes.openai import Call, ChatRequest, Reply, ToolCalls
from tests.fakes.twilio_caller import TwilioCaller

MARIA = "+12125550177"
STRANGER = "+16465550181"


async def _maria_with_civic(database_url: str) -> None:
    customer = (await crm.create_customer(MARIA, "Maria", "Lopez"))["customer"]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO vehicles (customer_id, vin, year, make, model, mileage)"
            " VALUES (%s, '2HGFC2F59KH000077', 2019, 'Honda', 'Civic', 41000)", (customer["id"],))
    await crm.forget_customer(customer["id"])


def _transfer_flags(log: dict[str, Any]) -> list[str]:
    return [flag["detail"] for flag in log["flags"] or [] if flag["name"] == "transfer"]


async def _asks_for_a_person(caller: TwilioCaller) -> None:
    await caller.wait_for_bot_silence(timeout=15)
    await caller.say(load("speak_to_person"))


def _last_tool_result(request: ChatRequest) -> dict[str, Any]:
    return next(reversed(request.tool_results().values()))


async def test_an_advisor_who_answers_hears_the_summary_and_the_caller_joins_them(
        launcher: Launcher, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await _maria_with_civic(database_url)
    # Past HOLD_EVERY_SECONDS: the caller hears that they are still on hold.
    launcher.twilio.callee(DESK_NUMBER, "answer", after=HOLD_EVERY_SECONDS + 1)
    launcher.deepgram.add_script(TEXTS["speak_to_person"])
    launcher.policy.add(ToolCalls([Call("transfer_to_human", {"reason": "a brake noise"})]))
    caller = await launcher.ring(MARIA, StirVerstat=ATTESTED_VERSTAT)
    async with caller:
        await _asks_for_a_person(caller)
        await caller.wait_closed(timeout=30)

    desk_leg = await launcher.twilio.wait_for_call_to(DESK_NUMBER)
    placed = next(r for r in launcher.twilio.created_calls if r.get("To") == DESK_NUMBER)
    assert placed.get("From") == SHOP_NUMBER
    assert (placed.get("Url") or "").startswith(f"{launcher.base_url}/twilio/desk?transfer=")
    status, whisper = launcher.twilio.answers[desk_leg]
    assert status == 200
    advisor = ET.fromstring(whisper)
    assert advisor.findtext("Say") == ("Phone assistant transfer: Maria, about the 2019 Honda Civic;"
                                       " reason: a brake noise; nothing was done on the call yet.")
    conference = advisor.findtext("Dial/Conference")
    assert conference
    # The caller's call went into the advisor's conference, and nowhere else.
    assert launcher.twilio.conference_redirects == [(caller.call_sid, conference)]
    assert [u for u in launcher.twilio.updates if u.call_sid == caller.call_sid and u.status == 200
            and "<Conference" not in (u.get("Twiml") or "")] == []
    assert launcher.twilio.hangups == []
    assert launcher.deepgram.spoken[1:] == [lines.TRANSFERRING, lines.STILL_HOLDING]
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "transferred"
    assert _transfer_flags(log) == ["answered"]
    assert "Maria" not in caplog.text and "brake noise" not in caplog.text


async def test_a_desk_that_does_not_answer_in_time_is_hung_up_and_a_call_back_is_taken(
        launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFER_TIMEOUT_SECONDS", "2")
    get_settings.cache_clear()
    launcher.twilio.callee(DESK_NUMBER, "ring")
    launcher.deepgram.add_script(TEXTS["speak_to_person"], TEXTS["yes"])
    launcher.policy.add(
        ToolCalls([Call("transfer_to_human", {"reason": "asked for a person"})]),
        ToolCalls([Call("take_message", {"name": "Sam Rivera", "reason": "wants an advisor to call"})]),
        Reply("Got it, an advisor will call you back."),
    )
    caller = await launcher.ring(STRANGER)
    async with caller:
        await _asks_for_a_person(caller)
        asked = time.monotonic()
        await launcher.deepgram.wait_for_spoken(3, timeout=15)
        waited = time.monotonic() - asked
        await caller.wait_for_bot_silence(timeout=15)
        assert not caller.closed  # still with the agent
        await caller.say(load("yes"))
        await launcher.deepgram.wait_for_spoken(4, timeout=15)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()

    assert launcher.deepgram.spoken[1:] == [lines.TRANSFERRING, lines.DESK_NO_ANSWER,
                                            "Got it, an advisor will call you back."]
    assert 2 <= waited < 10, waited
    desk_leg = launcher.twilio.calls_to(DESK_NUMBER)[0]
    assert launcher.twilio.hangups == [desk_leg]  # the desk stopped ringing
    assert launcher.twilio.conference_redirects == []
    assert not any(u.call_sid == caller.call_sid for u in launcher.twilio.updates)
    # What the model was told, and the call-back it took, as an advisor sees it.
    assert _last_tool_result(launcher.openai.requests[1])["transferred"] is False
    assert [(r["call_sid"], r["phone"], r["name"]) for r in await crm.open_callback_requests()] == [
        (caller.call_sid, STRANGER, "Sam Rivera")]
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "caller_hung_up"
    assert _transfer_flags(log) == ["no_answer"]
    # An advisor picking up now hears that the caller is gone, and no conference.
    status, late = await launcher.twilio.fetch_twiml(desk_leg)
    assert status == 200 and "<Hangup" in late and "Conference" not in late


async def test_a_busy_desk_has_the_agent_offer_a_call_back_at_once(launcher: Launcher) -> None:
    launcher.twilio.callee(DESK_NUMBER, "busy", after=0.3)
    launcher.deepgram.add_script(TEXTS["speak_to_person"])
    launcher.policy.add(ToolCalls([Call("transfer_to_human", {"reason": "asked for a person"})]))
    caller = await launcher.ring(STRANGER)
    async with caller:
        await _asks_for_a_person(caller)
        # Well before TRANSFER_TIMEOUT_SECONDS (25): the desk leg's status callback said busy.
        await launcher.deepgram.wait_for_spoken(3, timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()
    assert launcher.deepgram.spoken[1:] == [lines.TRANSFERRING, lines.DESK_NO_ANSWER]
    assert launcher.twilio.conference_redirects == []
    log = await closed_log(caller.call_sid)
    assert _transfer_flags(log) == ["busy"] and log["outcome"] == "caller_hung_up"


async def test_a_closed_desk_is_not_rung_and_the_agent_offers_a_call_back(
        launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_DESK_HOURS", "{}")  # closed every day
    get_settings.cache_clear()
    launcher.deepgram.add_script(TEXTS["speak_to_person"])
    launcher.policy.add(ToolCalls([Call("transfer_to_human", {"reason": "asked for a person"})]))
    caller = await launcher.ring(STRANGER)
    async with caller:
        await _asks_for_a_person(caller)
        await launcher.deepgram.wait_for_spoken(2, timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()
    assert launcher.deepgram.spoken[1:] == [lines.DESK_CLOSED]
    assert launcher.twilio.calls_to(DESK_NUMBER) == []
    assert launcher.twilio.updates == []
    log = await closed_log(caller.call_sid)
    assert _transfer_flags(log) == ["closed"] and log["outcome"] == "caller_hung_up"


@pytest.mark.parametrize("path", ["/twilio/desk", "/twilio/desk/status"])
async def test_the_desk_legs_webhooks_refuse_an_unsigned_request(launcher: Launcher, path: str) -> None:
    url = f"{path}?transfer={'ab' * 16}"
    form = {"CallSid": "CA" + "0" * 32, "CallStatus": "in-progress"}
    assert (await launcher.post(url, form, token="not-the-auth-token")).status_code == 403
    assert (await launcher.post(url, form)).status_code in (200, 204)  # signed: answered


async def test_a_caller_who_hangs_up_on_hold_stops_the_desk_ringing(launcher: Launcher) -> None:
    launcher.twilio.callee(DESK_NUMBER, "ring")
    launcher.deepgram.add_script(TEXTS["speak_to_person"])
    launcher.policy.add(ToolCalls([Call("transfer_to_human", {"reason": "asked for a person"})]))
    caller = await launcher.ring(STRANGER)
    async with caller:
        await _asks_for_a_person(caller)
        desk_leg = await launcher.twilio.wait_for_call_to(DESK_NUMBER)
        await caller.hang_up()
    await launcher.twilio.wait_for_hangup(desk_leg, timeout=5)
    log = await closed_log(caller.call_sid)
    assert _transfer_flags(log) == ["abandoned"] and log["outcome"] == "caller_hung_up"
    status, late = await launcher.twilio.fetch_twiml(desk_leg)
    assert status == 200 and "Conference" not in late
