"""A warm transfer's desk leg, on Twilio's side: the call placed to the service desk while the
caller holds with the agent, the TwiML that whispers the caller's summary to the advisor and
puts them in a conference, and the TwiML that brings the caller into that conference.

Each transfer has one outcome, set once (Redis `SET NX`): the advisor answering (the desk leg's
`Url` webhook), the desk leg ending unanswered (its status callback), or the agent's side giving
up first (the wait ran out, the caller left). So an advisor who picks up after the caller was
told that nobody answered hears that the caller is gone, never an empty conference. The state
is in Redis, not in this process, because Twilio may send the desk leg's webhooks to any
launcher behind `PUBLIC_BASE_URL`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from enum import StrEnum

import redis.asyncio as aioredis
from twilio.twiml.voice_response import Dial, VoiceResponse

from config import lines
from config.settings import Settings, get_settings
from crm import embedded
from telephony.rest import TwilioRest

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
# How long a transfer's state outlives its wait, so that a late webhook still finds it.
KEEP_SECONDS = 300
MIN_RING_SECONDS = 5  # Twilio's smallest `Timeout`


class Outcome(StrEnum):
    """How a transfer ended, as the call log's `transfer` flag records it."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CLOSED = "closed"  # outside the desk's hours: no desk leg placed
    COLD = "cold_fallback"  # the desk leg could not be placed: a plain <Dial> instead
    ABANDONED = "abandoned"  # the caller's side gave up while the desk rang (the caller left)


# The final CallStatus of a desk leg our webhook never answered.
_UNANSWERED = {"busy": Outcome.BUSY, "no-answer": Outcome.NO_ANSWER, "canceled": Outcome.NO_ANSWER,
               "failed": Outcome.FAILED, "completed": Outcome.FAILED}


def _conference(response: VoiceResponse, transfer: str) -> VoiceResponse:
    # Either side leaving ends it: no one is left alone in a conference.
    dial = Dial()
    dial.conference(f"transfer-{transfer}", start_conference_on_enter=True,
                    end_conference_on_exit=True, beep=False)
    response.append(dial)
    return response


def into_conference(transfer: str) -> VoiceResponse:
    """What the caller's call follows once the advisor has answered."""
    return _conference(VoiceResponse(), transfer)


class DeskLegs:
    """Places desk legs through Twilio's REST API and answers their webhooks."""

    def __init__(self, twilio: TwilioRest) -> None:
        self._twilio = twilio
        self._redis: aioredis.Redis | None = None

    async def connect(self, settings: Settings, caller_sid: str, summary: str) -> tuple[Outcome, str]:
        """Ring the service desk for `caller_sid` and wait up to TRANSFER_TIMEOUT_SECONDS for an
        advisor to answer (they hear `summary` first). Returns the outcome and the transfer's id
        (ANSWERED: `into_conference(id)` joins them). A desk leg that cannot be placed (no shop
        number, Twilio or Redis refusing) is COLD; one left unanswered is hung up."""
        transfer = secrets.token_hex(16)
        try:
            placed = await self._place(settings, transfer, summary)
        except Exception:
            log.exception("call %s: the desk leg could not be placed", caller_sid)
            return Outcome.COLD, transfer
        if placed is None:
            log.warning("call %s: no shop number (TWILIO_PHONE_NUMBER) to ring the desk from", caller_sid)
            return Outcome.COLD, transfer
        log.info("call %s: desk leg %s ringing", caller_sid, placed)
        try:
            outcome = await self._until_decided(transfer, settings.transfer_timeout_seconds)
        except asyncio.CancelledError:
            await asyncio.shield(self._give_up(transfer, placed, Outcome.ABANDONED))
            raise
        except Exception:
            log.exception("call %s: lost track of desk leg %s", caller_sid, placed)
            outcome = await self._give_up(transfer, placed, Outcome.COLD)
        if outcome is None:
            outcome = await self._give_up(transfer, placed, Outcome.NO_ANSWER)
        log.info("call %s: desk leg %s: %s", caller_sid, placed, outcome)
        return outcome, transfer

    async def answered(self, transfer: str) -> VoiceResponse:
        """The desk leg's `Url`: the advisor picked up. They hear the summary and join the
        conference, unless the transfer was already decided otherwise."""
        redis = await self._client()
        summary = await redis.get(_key(transfer))
        response = VoiceResponse()
        if summary is None or not await redis.set(_outcome_key(transfer), Outcome.ANSWERED, nx=True,
                                                ex=KEEP_SECONDS):
            response.say(lines.DESK_CALLER_GONE)
            response.hangup()
            return response
        response.say(summary)
        return _conference(response, transfer)

    async def ended(self, transfer: str, status: str) -> None:
        """The desk leg's status callback: a final status before any answer decides the transfer."""
        if status in _UNANSWERED:
            await (await self._client()).set(_outcome_key(transfer), _UNANSWERED[status], nx=True,
                                             ex=KEEP_SECONDS)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def _place(self, settings: Settings, transfer: str, summary: str) -> str | None:
        """Keep the summary for the desk leg's webhook, then create the desk leg; its SID, None
        without a shop number to call from."""
        if not settings.twilio_phone_number:
            return None
        await (await self._client()).set(_key(transfer), summary,
                                         ex=math.ceil(settings.transfer_timeout_seconds) + KEEP_SECONDS)
        webhook = f"{settings.base_url}/twilio/desk"
        return await self._twilio.place_call(
            to=settings.service_desk_number, from_=settings.twilio_phone_number,
            url=f"{webhook}?transfer={transfer}", method="POST",
            status_callback=f"{webhook}/status?transfer={transfer}", status_callback_method="POST",
            timeout=max(MIN_RING_SECONDS, math.ceil(settings.transfer_timeout_seconds)))

    async def _until_decided(self, transfer: str, seconds: float) -> Outcome | None:
        """The transfer's outcome once a webhook set it; None when `seconds` passed first."""
        redis = await self._client()
        try:
            async with asyncio.timeout(seconds):
                # Polled: the webhook that sets it may reach another launcher process.
                while (outcome := await redis.get(_outcome_key(transfer))) is None:  # noqa: ASYNC110
                    await asyncio.sleep(POLL_SECONDS)
        except TimeoutError:
            return None
        return Outcome(outcome)

    async def _give_up(self, transfer: str, desk_sid: str, why: Outcome) -> Outcome:
        """Decide the transfer as `why` and hang the desk leg up; if the advisor answered at the
        last instant, the transfer goes on instead (unless the caller has left)."""
        decided = await self._decide(transfer, why)
        if decided is Outcome.ANSWERED and why is not Outcome.ABANDONED:
            return decided
        try:
            await self._twilio.hang_up(desk_sid)
        except Exception:
            log.exception("desk leg %s could not be hung up", desk_sid)
        return decided

    async def _decide(self, transfer: str, outcome: Outcome) -> Outcome:
        """Set the transfer's outcome unless one is set already; the one that stands."""
        try:
            redis = await self._client()
            if await redis.set(_outcome_key(transfer), outcome, nx=True, ex=KEEP_SECONDS):
                return outcome
            return Outcome(await redis.get(_outcome_key(transfer)))
        except Exception:
            log.exception("transfer %s: its outcome could not be kept", transfer)
            return outcome

    async def _client(self) -> aioredis.Redis:
        if self._redis is None:
            url = get_settings().redis_url or await asyncio.to_thread(embedded.redis_url)
            self._redis = aioredis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1,
                                                  decode_responses=True)
        return self._redis


def _key(transfer: str) -> str:
    return f"warm-transfer:{transfer}"


def _outcome_key(transfer: str) -> str:
    return f"warm-transfer:{transfer}:outcome"
