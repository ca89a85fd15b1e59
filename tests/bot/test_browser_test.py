"""The browser test page: local only, and its calls take the production stream path."""

from __future__ import annotations

import httpx

import crm
from crm.settings import get_settings
from tests.bot.conftest import Launcher
from tests.fakes.twilio_caller import TwilioCaller


async def test_page_and_call_work_locally_only(launcher: Launcher) -> None:
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        page = await client.get("/test")
        assert page.status_code == 200 and "/twilio/stream" in page.text
        proxied = await client.get("/test", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 403
        tunnelled = await client.get("/test", headers={"Host": "shop.example.com"})
        assert tunnelled.status_code == 403
        assert (await client.post("/test/call", json={"caller": "banana"})).status_code == 422
        answer = (await client.post("/test/call", json={"caller": "(646) 555-0170"})).json()

    assert (await crm.get_call_log(answer["call_sid"]))["from_number"] == "+16465550170"
    caller = TwilioCaller(answer["url"], call_sid=answer["call_sid"],
                          stream_sid=answer["stream_sid"], custom_parameters=answer["parameters"])
    async with caller:
        await caller.wait_for_event("media", timeout=5)  # the agent greets the browser caller
        await caller.hang_up()
    assert launcher.deepgram.spoken[0].startswith("Thanks for calling")


async def test_no_test_call_without_the_service_keys(launcher: Launcher, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    get_settings.cache_clear()
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        refused = await client.post("/test/call", json={"caller": "+16465550171"})
    assert refused.status_code == 503 and "OPENAI_API_KEY" in refused.json()["detail"]
