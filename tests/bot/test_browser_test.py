"""The browser test page: a developer's tool, local, with the start-up token, on the production path."""

from __future__ import annotations

import httpx
import pytest

import crm
from bot.browser_test import page_token
from config.settings import get_settings
from tests.bot.conftest import Launcher
from tests.fakes.twilio_caller import TwilioCaller


def _token() -> dict[str, str]:
    return {"X-Test-Token": page_token()}


@pytest.fixture
def page_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test launcher has a PUBLIC_BASE_URL (Twilio must reach it), so the page is off by default.
    monkeypatch.setenv("TEST_PAGE", "true")
    get_settings.cache_clear()


async def test_page_and_call_work_locally_with_the_token(launcher: Launcher, page_on: None) -> None:
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        page = await client.get("/test", params={"token": page_token()})
        assert page.status_code == 200 and "/twilio/stream" in page.text and "X-Test-Token" in page.text
        banana = await client.post("/test/call", json={"caller": "banana"}, headers=_token())
        assert banana.status_code == 422
        answer = (await client.post("/test/call", json={"caller": "(646) 555-0170"}, headers=_token())).json()

    log = await crm.get_call_log(answer["call_sid"])
    assert (log["from_number"], log["caller_id"]) == ("+16465550170", "attested")
    caller = TwilioCaller(answer["url"], call_sid=answer["call_sid"],
                          stream_sid=answer["stream_sid"], custom_parameters=answer["parameters"])
    async with caller:
        await caller.wait_for_event("media", timeout=5)  # the agent greets the browser caller
        await caller.hang_up()
    assert launcher.deepgram.spoken[0].startswith("Thanks for calling")


@pytest.mark.parametrize("token", [None, "", "wrong", "é" * 8])
async def test_without_the_token_the_page_and_its_calls_are_refused(
        launcher: Launcher, page_on: None, token: str | None) -> None:
    params = {} if token is None else {"token": token}
    headers = {} if token is None else {"X-Test-Token": token.encode()}
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        assert (await client.get("/test", params=params)).status_code == 403
        call = await client.post("/test/call", json={"caller": "+16465550172"}, headers=headers)
    assert call.status_code == 403


@pytest.mark.parametrize("proxy_headers", [
    {"X-Forwarded-For": "203.0.113.9"},
    {"Forwarded": "for=203.0.113.9"},
    {"X-Real-IP": "203.0.113.9"},
    {"Host": "shop.example.com"},
])
async def test_through_a_proxy_or_tunnel_even_the_token_is_refused(
        launcher: Launcher, page_on: None, proxy_headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        assert (await client.get("/test", params={"token": page_token()},
                                 headers=proxy_headers)).status_code == 403
        call = await client.post("/test/call", json={"caller": "+16465550173"},
                                 headers=_token() | proxy_headers)
    assert call.status_code == 403


async def test_a_proxy_that_passes_host_127_0_0_1_on_still_needs_the_token(
        launcher: Launcher, page_on: None) -> None:
    # What a default reverse proxy or a TCP tunnel sends: loopback Host, no forwarding headers.
    async with httpx.AsyncClient(base_url=launcher.base_url, headers={"Host": "127.0.0.1"}) as client:
        assert (await client.get("/test")).status_code == 403
        assert (await client.post("/test/call", json={"caller": "+16465550174"})).status_code == 403


@pytest.mark.parametrize(("settings", "enabled"), [
    ({"TEST_PAGE": "false"}, False),
    ({}, False),  # a public address is configured (Twilio's), so off unless asked for
    ({"PUBLIC_BASE_URL": ""}, True),  # loopback only: a developer's machine
    ({"PUBLIC_BASE_URL": "", "HOST": "0.0.0.0"}, False),  # listening beyond this machine
])
async def test_the_page_is_served_only_when_enabled(
        launcher: Launcher, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str],
        enabled: bool) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        page = await client.get("/test", params={"token": page_token()})
    assert page.status_code == (200 if enabled else 403)


async def test_no_test_call_without_the_service_keys(
        launcher: Launcher, page_on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    get_settings.cache_clear()
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        refused = await client.post("/test/call", json={"caller": "+16465550171"}, headers=_token())
    assert refused.status_code == 503 and "OPENAI_API_KEY" in refused.json()["detail"]
