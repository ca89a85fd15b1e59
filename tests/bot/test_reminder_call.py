"""A reminder call carried end to end: the script dials through Twilio's REST API, the person
answers, the agent in reminder mode talks over the media stream, and the customer confirms."""

from __future__ import annotations

from datetime import datetime, timedelta

import calendar_adapter
import crm
from config.settings import get_settings
from reminders.policy import ReminderConfig
from reminders.run import run
from telephony.rest import TwilioRest
from tests.audio import TEXTS, load
from tests.bot.conftest import SHOP_NUMBER, Launcher
from tests.bot.test_calls import MARIA, _maria_with_civic, closed_log
from tests.fakes.openai import Call, ChatRequest, ToolCalls
from tests.fakes.twilio_caller import TwilioCaller


async def test_customer_confirms_on_the_reminder_call(launcher: Launcher, database_url: str,
                                                       monkeypatch) -> None:
    customer_id, vehicle_id = await _maria_with_civic(database_url)
    settings = get_settings()
    now = datetime.now(settings.tz)
    tomorrow = now.date() + timedelta(days=1)
    # Book through the calendar as the agent would, pinning "now" so tomorrow is always bookable.
    booked = await calendar_adapter.book_appointment(
        f"{tomorrow.isoformat()}T10:00", "oil change", customer_id, vehicle_id,
        now=datetime.combine(now.date(), datetime.min.time(), settings.tz) + timedelta(hours=8))
    if not booked["success"]:  # tomorrow is a closed day: remind about the next open one
        day = datetime.fromisoformat(booked["alternatives"][0])
        booked = await calendar_adapter.book_appointment(day.isoformat(), "oil change",
                                                         customer_id, vehicle_id)
        tomorrow = day.date()
    appointment_id = booked["appointment_id"]

    monkeypatch.setenv("REMINDER_ALLOWLIST", MARIA)
    get_settings.cache_clear()
    config = ReminderConfig.from_settings(get_settings())
    dialler = TwilioRest(get_settings())
    try:
        summary = await run(config, dialler, day=tomorrow,
                            clock=lambda: datetime.combine(now.date(), datetime.min.time(),
                                                           settings.tz) + timedelta(hours=12))
    finally:
        await dialler.close()
    assert summary.exit_code() == 0
    (create,) = launcher.twilio.created_calls
    assert (create.get("To"), create.get("From")) == (MARIA, SHOP_NUMBER)
    assert create.get("MachineDetection") == "DetectMessageEnd"
    call_sid = create.response["sid"]

    def confirm(request: ChatRequest) -> ToolCalls:
        assert "reminder call" in request.messages[0]["content"]
        return ToolCalls([Call("confirm_appointment", {"appointment_id": appointment_id})])

    launcher.deepgram.add_script(TEXTS["yes_thats_right"])
    launcher.policy.add(confirm, ToolCalls([Call("end_call", {"reason": "confirmed"})],
                                           text="Great, see you then."))
    status, twiml = await launcher.twilio.fetch_twiml(call_sid, AnsweredBy="human")
    assert status == 200
    caller = TwilioCaller.from_twiml(twiml, call_sid=call_sid,
                                     account_sid=launcher.twilio.account_sid)
    assert caller.custom_parameters["direction"] == "outbound"
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.say(load("yes_thats_right"))
        await caller.wait_closed(timeout=30)

    greeting = launcher.deepgram.spoken[0]
    assert greeting.startswith("Hi Maria, this is Lakeside Motors Service with a reminder of your "
                               "oil change for your 2019 Honda Civic on")
    record = await crm.lookup_customer(MARIA)
    assert [(a["id"], a["status"]) for a in record["upcoming_appointments"]] == [
        (appointment_id, "confirmed")]
    log = await closed_log(call_sid)
    assert (log["direction"], log["from_number"], log["to_number"], log["outcome"]) == (
        "outbound", SHOP_NUMBER, MARIA, "confirmed")
    await launcher.twilio.wait_for_hangup(call_sid, timeout=5)
