"""MAX_CONCURRENT_CALLS: past it a caller hears a clear busy message instead of a slow agent."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import crm
from config.settings import get_settings
from tests.bot.conftest import DESK_NUMBER, Launcher
from tests.bot.test_calls import closed_log
from tests.fakes.twilio_caller import inbound_call_params, new_sid


async def _health(launcher: Launcher) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        return (await client.get("/health")).json()


def _limit(monkeypatch: pytest.MonkeyPatch, calls: int, **settings: str) -> None:
    for name, value in {"MAX_CONCURRENT_CALLS": str(calls), **settings}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


async def test_over_capacity_callers_get_the_busy_message_and_the_desk(
        launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    _limit(monkeypatch, 2)
    launcher.deepgram.add_script()
    first = await launcher.ring("+16465550181")
    answered = await launcher.ring("+16465550182")  # its stream is on its way: it counts already
    assert (await _health(launcher))["max_concurrent_calls"] == 2

    call_sid = new_sid("CA")
    form = inbound_call_params(call_sid, "+16465550183", "+13125550100", launcher.twilio.account_sid)
    busy = await launcher.post("/twilio/voice", form)
    assert busy.status_code == 200
    assert "<Stream" not in busy.text
    assert "lines are busy" in busy.text and f"<Dial>{DESK_NUMBER}</Dial>" in busy.text
    log = await crm.get_call_log(call_sid)
    assert log["outcome"] == "transferred"
    assert [t["role"] for t in log["transcript"]] == ["agent"]  # what it heard is on record

    async with first:
        await first.wait_for_event("media", timeout=5)
        assert (await _health(launcher))["active_calls"] == 1
    # The answered call's stream never came: Twilio's status callback gives its place back.
    ended = inbound_call_params(answered.call_sid, "+16465550182", "+13125550100",
                                launcher.twilio.account_sid, call_status="completed")
    assert (await launcher.post("/twilio/status", ended)).status_code == 204
    await closed_log(first.call_sid)
    async with asyncio.timeout(10):
        while (await _health(launcher))["active_calls"]:  # noqa: ASYNC110 - the launcher's own count
            await asyncio.sleep(0.05)
    assert "<Stream" in (await launcher.post("/twilio/voice", form | {"CallSid": new_sid("CA")})).text


async def test_without_a_service_desk_the_busy_message_asks_to_call_back(
        launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    _limit(monkeypatch, 1)
    monkeypatch.delenv("SERVICE_DESK_NUMBER")
    get_settings.cache_clear()
    await launcher.ring("+16465550184")
    form = inbound_call_params(new_sid("CA"), "+16465550185", "+13125550100", launcher.twilio.account_sid)
    busy = (await launcher.post("/twilio/voice", form)).text
    assert "<Stream" not in busy and "<Dial" not in busy
    assert "call us back" in busy and "<Hangup" in busy
    assert (await crm.get_call_log(form["CallSid"]))["outcome"] == "completed"
