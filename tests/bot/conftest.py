"""End-to-end rig: the real launcher under uvicorn on a loopback port, the real Pipecat
services pointed at local fakes of Deepgram, OpenAI and Twilio's REST API, and simulated
Twilio callers speaking the Media Streams protocol with recorded speech."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from config.settings import get_settings
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.openai import FakeOpenAI, ScriptedPolicy
from tests.fakes.twilio_caller import TwilioCaller, inbound_call_params, new_sid, twilio_signature
from tests.fakes.twilio_rest import FakeTwilioRest

AUTH_TOKEN = "twilio-test-token"
SHOP_NUMBER = "+13125550100"
DESK_NUMBER = "+13125550111"
DESK_ALWAYS_OPEN = json.dumps({day: [["00:00", "23:59:59.999999"]]
                               for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})


@dataclass
class Launcher:
    base_url: str
    deepgram: FakeDeepgram
    openai: FakeOpenAI
    twilio: FakeTwilioRest
    policy: ScriptedPolicy

    def signed(self, path: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
        return {"X-Twilio-Signature": twilio_signature(token, self.base_url + path, form)}

    async def post(self, path: str, form: dict[str, str], token: str = AUTH_TOKEN) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            return await client.post(path, data=form, headers=self.signed(path, form, token))

    async def ring(self, from_number: str, to_number: str = SHOP_NUMBER, **extra: str) -> TwilioCaller:
        """Twilio's side of an incoming call: the voice webhook (its form plus `extra`, e.g.
        `StirVerstat`), then the media stream."""
        call_sid = new_sid("CA")
        self.twilio.register_call(call_sid, from_=from_number, to=to_number)
        form = inbound_call_params(call_sid, from_number, to_number, self.twilio.account_sid, **extra)
        answer = await self.post("/twilio/voice", form)
        assert answer.status_code == 200, answer.text
        return TwilioCaller.from_twiml(answer.text, call_sid=call_sid,
                                       account_sid=self.twilio.account_sid,
                                       from_number=from_number, to_number=to_number)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def launcher(clean_db: None, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Launcher]:
    from bot.app import create_app
    from telephony.serializer import MAX_MESSAGE_BYTES

    policy = ScriptedPolicy()
    async with (
        # A voice twice as quick as speech: calls wait on it in real time.
        FakeDeepgram(api_key="deepgram-test-key", tts_ms_per_char=30) as deepgram,
        FakeOpenAI(policy, api_key="openai-test-key") as openai,
        FakeTwilioRest(auth_token=AUTH_TOKEN) as twilio,
    ):
        sock = _free_socket()
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        for name, value in {
            "PUBLIC_BASE_URL": base_url,
            "DEEPGRAM_API_KEY": "deepgram-test-key",
            "DEEPGRAM_BASE_URL": deepgram.ws_base_url,
            "OPENAI_API_KEY": "openai-test-key",
            "OPENAI_BASE_URL": openai.api_base,
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_PHONE_NUMBER": SHOP_NUMBER,
            "TWILIO_API_BASE_URL": twilio.base_url,
            "SERVICE_DESK_NUMBER": DESK_NUMBER,
            "SERVICE_DESK_HOURS": DESK_ALWAYS_OPEN,  # a transfer rings the desk whenever the test runs
            "SHOP_NAME": "Lakeside Motors Service",
            # A fixed pause ends turns deterministically with synthetic speech.
            "TURN_DETECTION": "silence",
            "IDLE_REPROMPT_SECONDS": "30",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        config = uvicorn.Config(create_app(), log_level="warning", ws="websockets-sansio", lifespan="on",
                                ws_max_size=MAX_MESSAGE_BYTES)  # as `python -m bot` passes it
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.01)
        try:
            yield Launcher(base_url, deepgram, openai, twilio, policy)
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 30)
            sock.close()
    get_settings.cache_clear()
