"""Twilio's REST API for what a media stream cannot do: hang up, transfer, place a call (and
find it again in the list of calls when the answer to placing it went astray), send a text.

Requests go to `TWILIO_API_BASE_URL` (Twilio's own by default), through the official SDK's
async client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from config.settings import Settings

log = logging.getLogger(__name__)

CALL_GONE = 20404  # Twilio's "resource not found": the call already ended


class NoTwilioAccount(Exception):
    """No Twilio credentials are configured."""


@dataclass(frozen=True)
class ListedCall:
    """A call as Twilio's list of calls shows it; the list holds no `Url`, so nothing says what the
    call was for."""

    sid: str
    created: datetime  # by Twilio's clock


class TwilioRest:
    def __init__(self, settings: Settings) -> None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise NoTwilioAccount("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set")
        self._http = AsyncTwilioHttpClient()
        self._client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                              http_client=self._http)
        self._client.api.base_url = settings.twilio_api_base_url.rstrip("/")

    async def hang_up(self, call_sid: str) -> None:
        await self._update(call_sid, status="completed")

    async def transfer(self, call_sid: str, number: str) -> None:
        """Redirect the live call to `number`; Twilio ends our media stream as it does."""
        twiml = VoiceResponse()
        twiml.dial(number)
        await self._update(call_sid, twiml=str(twiml))

    async def follow(self, call_sid: str, twiml: VoiceResponse) -> None:
        """Have the live call follow `twiml` instead (say something, dial); Twilio ends our media
        stream as it does."""
        await self._update(call_sid, twiml=str(twiml))

    async def place_call(self, **fields: Any) -> str:
        """Create an outbound call (`to`, `from_`, `url`, ...); returns its SID."""
        call = await self._client.calls.create_async(**fields)
        return call.sid

    async def list_calls(self, *, to: str, from_: str, limit: int) -> list[ListedCall]:
        """Twilio's calls from `from_` to `to` (at most `limit`, in one request up to Twilio's page
        maximum), in Twilio's order: newest first."""
        calls = await self._client.calls.list_async(to=to, from_=from_, limit=limit)
        return [ListedCall(call.sid, call.date_created) for call in calls]

    async def send_text(self, *, to: str, from_: str, body: str) -> str:
        """Send an SMS (`POST .../Messages.json`); returns its SID."""
        message = await self._client.messages.create_async(to=to, from_=from_, body=body)
        return message.sid

    async def close(self) -> None:
        if self._http.session is not None:
            await self._http.session.close()

    async def _update(self, call_sid: str, **fields: Any) -> None:
        try:
            await self._client.calls(call_sid).update_async(**fields)
        except TwilioRestException as exc:
            if exc.code != CALL_GONE:
                raise
            log.info("call %s had already ended", call_sid)
