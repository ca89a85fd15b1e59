"""Who may reach the launcher: signed webhooks only, and streams of calls this server answered."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

import crm
from config.settings import get_settings
from telephony.streams import mint_stream_token
from tests.bot.conftest import Launcher
from tests.fakes.twilio_caller import TwilioCaller, inbound_call_params, new_sid

POLICY_VIOLATION = 1008


def _form(launcher: Launcher, call_sid: str | None = None) -> dict[str, str]:
    return inbound_call_params(call_sid or new_sid("CA"), "+16465550150", "+13125550100",
                               launcher.twilio.account_sid)


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/status"])
async def test_bad_or_missing_signature_is_403(launcher: Launcher, path: str) -> None:
    form = _form(launcher)
    forged = await launcher.post(path, form, token="not-the-auth-token")
    assert forged.status_code == 403
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        unsigned = await client.post(path, data=form)
        tampered = await client.post(path, data={**form, "From": "+19995550100"},
                                     headers=launcher.signed(path, form))
    assert unsigned.status_code == 403 and tampered.status_code == 403
    assert await crm.get_call_log(form["CallSid"]) is None  # nothing was opened


async def test_twiml_streams_with_caller_and_a_token(launcher: Launcher) -> None:
    form = _form(launcher)
    answer = await launcher.post("/twilio/voice", form)
    caller = TwilioCaller.from_twiml(answer.text)
    assert answer.headers["content-type"].startswith("application/xml")
    assert caller.url == launcher.base_url.replace("http://", "ws://") + "/twilio/stream"
    assert caller.custom_parameters["customer"] == "+16465550150"
    assert caller.custom_parameters["token"]


async def _refused(caller: TwilioCaller) -> None:
    async with caller:
        await caller.wait_closed(timeout=5)
    assert caller.closed_by_server and caller.close_code == POLICY_VIOLATION
    assert caller.media_events == []  # no pipeline ever spoke


async def test_forged_missing_and_expired_tokens_are_refused(launcher: Launcher) -> None:
    call_sid = new_sid("CA")
    assert (await launcher.post("/twilio/voice", _form(launcher, call_sid))).status_code == 200
    url = launcher.base_url.replace("http://", "ws://") + "/twilio/stream"
    other_calls_token = mint_stream_token(new_sid("CA"), {})
    expired = mint_stream_token(call_sid, {}, now=time.time() - 3600)
    for parameters in ({}, {"token": "123.forged"}, {"token": other_calls_token},
                       {"token": expired}):
        await _refused(TwilioCaller(url, call_sid=call_sid, custom_parameters=parameters))
    log = await crm.get_call_log(call_sid)
    assert log["stream_claimed_at"] is None  # none of them used up the call's one stream


async def test_one_token_opens_one_stream(launcher: Launcher) -> None:
    launcher.deepgram.add_script()
    first = await launcher.ring("+16465550151")
    replay = TwilioCaller(first.url, call_sid=first.call_sid,
                          custom_parameters=first.custom_parameters)
    async with first:
        await first.wait_for_event("media", timeout=5)
        await _refused(replay)
        await first.hang_up()


async def test_stream_for_a_call_never_answered_is_refused(launcher: Launcher) -> None:
    call_sid = new_sid("CA")  # valid token, but no call log: this server never answered it
    url = launcher.base_url.replace("http://", "ws://") + "/twilio/stream"
    await _refused(TwilioCaller(url, call_sid=call_sid,
                                custom_parameters={"token": mint_stream_token(call_sid, {})}))


TAMPERINGS: dict[str, Callable[[dict[str, str]], dict[str, str]]] = {
    "changed customer number": lambda p: {**p, "customer": "+16465550199"},
    "changed direction": lambda p: {**p, "direction": "outbound"},
    "added appointment_id": lambda p: {**p, "appointment_id": "1"},
    "removed shop": lambda p: {k: v for k, v in p.items() if k != "shop"},
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
async def test_a_stream_with_tampered_parameters_is_refused(
        launcher: Launcher, tampering: str, caplog: pytest.LogCaptureFixture) -> None:
    genuine = await launcher.ring("+16465550152")
    tampered = TAMPERINGS[tampering](genuine.custom_parameters)
    assert tampered != genuine.custom_parameters
    await _refused(TwilioCaller(genuine.url, call_sid=genuine.call_sid, custom_parameters=tampered))
    assert [r.getMessage() for r in caplog.records if r.name == "bot.media_stream"] == [
        f"refusing media stream for {genuine.call_sid}: forged stream token or tampered parameters"]
    assert (await crm.get_call_log(genuine.call_sid))["stream_claimed_at"] is None
    async with genuine:  # the call's one stream is still there for Twilio's genuine one
        await genuine.wait_for_event("media", timeout=5)
        await genuine.hang_up()


async def test_health_reports_dependencies_and_calls(launcher: Launcher) -> None:
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok", "active_calls": 0,
                               "max_concurrent_calls": get_settings().max_concurrent_calls}
