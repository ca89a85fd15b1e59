"""The reminder call as Twilio drives it: after the fake Twilio REST API placed the call, it
requests the call's Url (signed, with `AnsweredBy`) and posts the status callback, over HTTP
to our routes served by uvicorn."""

from __future__ import annotations

import asyncio
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

import calendar_adapter
import crm
from bot import reminder_webhooks, twilio_webhooks
from bot.calls import ActiveCalls
from config.settings import get_settings
from reminders import run
from reminders.summary import outcomes
from telephony.rest import TwilioRest
from telephony.streams import stream_token_problem
from tests.fakes.twilio_rest import FakeTwilioRest
from tests.reminders.support import DAY, NOW, SHOP, at, config, eventually, pinned, rows, seed


@dataclass
class Launcher:
    base_url: str
    calls: ActiveCalls


@pytest.fixture
async def launcher(fresh, twilio: FakeTwilioRest, monkeypatch) -> AsyncIterator[Launcher]:
    """Our routes (the inbound status callback and the reminder route) on a loopback port."""
    calls = ActiveCalls()
    app = FastAPI()
    app.include_router(twilio_webhooks.router(calls))
    app.include_router(reminder_webhooks.router(calls))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for name, value in {
        "PUBLIC_BASE_URL": base_url, "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token, "TWILIO_PHONE_NUMBER": SHOP,
        "SHOP_NAME": "Lakeside Motors", "SHOP_TIMEZONE": "America/New_York",
        "OPENAI_API_KEY": "test-key", "DEEPGRAM_API_KEY": "test-key",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started)
    try:
        yield Launcher(base_url, calls)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 30)
        sock.close()
        monkeypatch.undo()
        get_settings.cache_clear()


async def place(
    twilio: FakeTwilioRest, telephony: TwilioRest, launcher: Launcher, count: int = 1
) -> list[dict[str, Any]]:
    """Seed `count` appointments and run the reminders; each made dict gains its call's sid."""
    made = await seed(count)
    summary = await run(config(launcher.base_url, allowlist={m["phone"] for m in made}), telephony,
                        clock=pinned())
    assert len(summary.dialled) == count
    for m, call in zip(made, twilio.creates, strict=True):
        m["sid"] = call.response["sid"]
    return made


def parse(body: str) -> ET.Element:
    root = ET.fromstring(body)
    assert root.tag == "Response"
    return root


async def call_log(sid: str) -> dict[str, Any]:
    (log,) = await rows("SELECT * FROM call_logs WHERE call_sid = %s", (sid,))
    return log


@pytest.mark.parametrize("answered_by",
                         ["machine_end_beep", "machine_end_silence", "machine_end_other", "fax"])
async def test_a_machine_gets_a_short_voicemail(launcher, twilio, telephony, answered_by) -> None:
    (made,) = await place(twilio, telephony, launcher)

    status, body = await twilio.fetch_twiml(made["sid"], AnsweredBy=answered_by)

    assert status == 200
    root = parse(body)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    spoken = root[0].text
    assert spoken.startswith("Hello, this is Lakeside Motors with a reminder of your appointment"
                             " on Tuesday, March 3 at 9:00 AM.")
    assert "please call us at 3 1 2, 5 5 5, 0 1 9 9." in spoken  # TWILIO_PHONE_NUMBER, digit by digit
    assert "Pat0" not in spoken  # no name on a machine anyone may hear
    log = await call_log(made["sid"])
    assert (log["outcome"], log["ended_at"]) == ("voicemail", None)

    # Twilio's status callback closes the log; the voicemail outcome stays.
    status, _ = await twilio.send_status_callback(made["sid"], "completed")
    assert status == 204
    log = await call_log(made["sid"])
    assert log["outcome"] == "voicemail" and log["ended_at"] is not None
    assert (await outcomes(DAY))["voicemail"] == 1


@pytest.mark.parametrize("answered_by", ["human", "unknown"])
async def test_a_person_gets_the_agent_in_reminder_mode(launcher, twilio, telephony, answered_by) -> None:
    (made,) = await place(twilio, telephony, launcher)

    status, body = await twilio.fetch_twiml(made["sid"], AnsweredBy=answered_by)

    assert status == 200
    root = parse(body)
    (connect,) = root
    (stream,) = connect
    assert (connect.tag, stream.tag) == ("Connect", "Stream")
    assert stream.get("url") == launcher.base_url.replace("http://", "ws://") + "/twilio/stream"
    parameters = {p.get("name"): p.get("value") for p in stream}
    assert {k: v for k, v in parameters.items() if k != "token"} == {
        "customer": made["phone"], "shop": SHOP, "direction": "outbound",
        "appointment_id": str(made["id"]), "caller_id": "dialled"}  # we rang the number on file
    assert stream_token_problem(parameters, made["sid"]) is None
    log = await call_log(made["sid"])
    assert (log["direction"], log["from_number"], log["to_number"], log["outcome"], log["caller_id"]) == (
        "outbound", SHOP, made["phone"], None, "dialled")
    assert await crm.claim_stream(made["sid"])  # the media stream it leads to will be let in


def signed(url: str, form: dict[str, str], token: str) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


async def test_the_route_checks_twilios_signature_over_the_full_url(launcher, twilio) -> None:
    (made,) = await seed(1)
    url = f"{launcher.base_url}/twilio/reminder?appointment_id={made['id']}"
    form = {"CallSid": "CA" + "1" * 32, "From": SHOP, "To": made["phone"], "AnsweredBy": "human"}
    async with httpx.AsyncClient() as client:
        forged = await client.post(url, data=form, headers={"X-Twilio-Signature": "bm90IGEgc2ln"})
        wrong_key = await client.post(url, data=form, headers=signed(url, form, "not-the-token"))
        other_appointment = await client.post(  # a signature for appointment 1 does not fit 2
            url.replace(f"={made['id']}", f"={made['id'] + 1}"), data=form,
            headers=signed(url, form, twilio.auth_token))
        without_query = await client.post(
            url, data=form, headers=signed(url.split("?")[0], form, twilio.auth_token))
        assert await rows("SELECT * FROM call_logs") == []
        good = await client.post(url, data=form, headers=signed(url, form, twilio.auth_token))

    assert [r.status_code for r in (forged, wrong_key, other_appointment, without_query)] == [403] * 4
    assert good.status_code == 200 and "<Stream" in good.text


async def test_no_agent_to_hand_over_to_leaves_the_message(launcher, twilio, telephony, monkeypatch) -> None:
    first, second = await place(twilio, telephony, launcher, count=2)
    monkeypatch.delenv("OPENAI_API_KEY")
    get_settings.cache_clear()
    _, body = await twilio.fetch_twiml(first["sid"], AnsweredBy="human")
    assert [c.tag for c in parse(body)] == ["Say", "Hangup"]
    assert "on Tuesday, March 3 at 9:00 AM" in parse(body)[0].text

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    get_settings.cache_clear()
    launcher.calls.draining = True  # shutting down: no new pipelines
    _, body = await twilio.fetch_twiml(second["sid"], AnsweredBy="human")
    assert [c.tag for c in parse(body)] == ["Say", "Hangup"]
    assert "9:30 AM" in parse(body)[0].text


async def test_a_reminder_cancelled_before_the_answer_is_not_announced(launcher, twilio, telephony) -> None:
    first, second = await place(twilio, telephony, launcher, count=2)
    for m in (first, second):
        assert (await calendar_adapter.cancel_appointment(m["id"], now=NOW))["success"]

    _, machine = await twilio.fetch_twiml(first["sid"], AnsweredBy="machine_end_beep")
    _, person = await twilio.fetch_twiml(second["sid"], AnsweredBy="human")

    assert [c.tag for c in parse(machine)] == ["Hangup"]
    assert [c.tag for c in parse(person)] == ["Say", "Hangup"]
    assert "no longer needed" in parse(person)[0].text


async def test_the_summary_counts_what_reminded_customers_did(launcher, twilio, telephony) -> None:
    made = await place(twilio, telephony, launcher, count=5)
    assert (await calendar_adapter.confirm_appointment(made[0]["id"], now=NOW))["success"]
    moved = await calendar_adapter.reschedule_appointment(made[1]["id"], at(DAY, 14), now=NOW)
    assert moved["success"], moved
    assert (await calendar_adapter.cancel_appointment(made[2]["id"], now=NOW))["success"]
    await twilio.fetch_twiml(made[3]["sid"], AnsweredBy="machine_end_beep")

    rerun = await run(config(launcher.base_url, allowlist={m["phone"] for m in made}), telephony,
                      clock=pinned())

    assert rerun.outcomes == {"confirmed": 1, "rescheduled": 1, "cancelled": 1, "voicemail": 1}
    assert "confirmed 1, rescheduled 1, cancelled 1, voicemail 1" in rerun.render()
    # The confirmed one is no longer `scheduled`, so no longer selected; the rest were reminded.
    assert rerun.selected == 3 and rerun.skipped == {"already_reminded": 3}
    assert len(twilio.creates) == 5
