"""Keys on a reminder call, over the wire: the person who answers hears which keys do what, and
the fake Twilio caller's `dtmf` events act: 1 confirms the appointment, 2 has the agent ask for
another day, 3 puts them through to an advisor; a number keyed in (digits, then #) reaches the
model as text."""

from __future__ import annotations

from typing import Any

import calendar_adapter
import crm
from config import lines
from tests.bot.conftest import DESK_NUMBER, SHOP_NUMBER, Launcher
from tests.bot.test_calls import MARIA, _maria_with_civic, _next_open_day, closed_log
from tests.fakes.openai import ChatRequest, Reply
from tests.fakes.twilio_caller import TwilioCaller

KEYS = "You can also press 1 to confirm, 2 to move it, or 3 to speak with someone."


async def _reminded(launcher: Launcher, database_url: str) -> tuple[int, TwilioCaller]:
    """Maria's appointment, and the reminder call about it answered by her (not a machine)."""
    customer_id, vehicle_id = await _maria_with_civic(database_url)
    _, slot = await _next_open_day()
    booked = await calendar_adapter.book_appointment(slot, "oil change", customer_id, vehicle_id)
    call_sid = launcher.twilio.register_call(from_=SHOP_NUMBER, to=MARIA, direction="outbound-api")
    answer = await launcher.post(f"/twilio/reminder?appointment_id={booked['appointment_id']}", {
        "CallSid": call_sid, "AccountSid": launcher.twilio.account_sid, "From": SHOP_NUMBER, "To": MARIA,
        "CallStatus": "in-progress", "Direction": "outbound-api", "AnsweredBy": "human"})
    assert answer.status_code == 200, answer.text
    caller = TwilioCaller.from_twiml(answer.text, call_sid=call_sid, account_sid=launcher.twilio.account_sid)
    return booked["appointment_id"], caller


async def _heard(launcher: Launcher, words: str) -> None:
    await launcher.deepgram.wait_until(lambda: words in launcher.deepgram.spoken, timeout=15)


def _last(request: ChatRequest) -> dict[str, Any]:
    return request.messages[-1]


async def _status(appointment_id: int) -> str:
    record = await crm.lookup_customer(MARIA)
    return next(a["status"] for a in record["upcoming_appointments"] if a["id"] == appointment_id)


async def test_pressing_1_confirms_the_appointment(launcher: Launcher, database_url: str) -> None:
    appointment_id, caller = await _reminded(launcher, database_url)
    launcher.policy.add(lambda request: Reply(
        "Thanks, you're confirmed." if '"success": true' in _last(request)["content"] else "Sorry."))
    async with caller:
        await caller.wait_for_event("media", timeout=5)
        await caller.press("1")  # while the greeting plays: it stops, and the key acts
        await _heard(launcher, "Thanks, you're confirmed.")

    assert launcher.deepgram.spoken[0].endswith(KEYS)
    assert await _status(appointment_id) == "confirmed"
    (request,) = launcher.openai.requests
    assert _last(request)["role"] == "tool"  # the key ran the tool, as if the model had called it
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "confirmed"
    assert ("caller", "[keypad] 1") in [(turn["role"], turn["text"]) for turn in log["transcript"]]


async def test_pressing_2_has_the_agent_ask_for_another_day(launcher: Launcher, database_url: str) -> None:
    appointment_id, caller = await _reminded(launcher, database_url)
    launcher.policy.add(lambda request: Reply(
        "Sure, which day works better?" if "pressed 2" in _last(request)["content"] else "Sorry?"))
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.press("2")
        await _heard(launcher, "Sure, which day works better?")

    (request,) = launcher.openai.requests
    assert _last(request)["role"] == "user"
    assert await _status(appointment_id) == "scheduled"  # nothing changed yet


async def test_pressing_3_puts_the_caller_through(launcher: Launcher, database_url: str) -> None:
    _, caller = await _reminded(launcher, database_url)
    launcher.twilio.callee(DESK_NUMBER, "answer", after=0.3)
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.press("3")
        await caller.wait_closed(timeout=30)

    assert launcher.openai.requests == []  # no model needed: the key ran transfer_to_human
    assert lines.TRANSFERRING in launcher.deepgram.spoken
    assert launcher.twilio.calls_to(DESK_NUMBER)
    assert (await closed_log(caller.call_sid))["outcome"] == "transferred"


async def test_a_number_keyed_in_reaches_the_model_as_text(launcher: Launcher, database_url: str) -> None:
    _, caller = await _reminded(launcher, database_url)
    launcher.policy.add(Reply("Thanks, I have that number."))
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        for key in "3125550142#":  # starts with a menu key, but is a number
            await caller.press(key)
        await _heard(launcher, "Thanks, I have that number.")

    (request,) = launcher.openai.requests
    assert _last(request) == {"role": "user",
                              "content": "The caller keyed in on the phone's keypad: 3125550142"}
    assert launcher.twilio.calls_to(DESK_NUMBER) == []
