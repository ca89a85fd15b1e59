"""Placing one reminder call through Twilio's REST API, with bounded retries.

Only a definite refusal is retried: an HTTP error answer from Twilio, or no connection at all.
Anything else (a timeout, a dropped connection, an unexpected error) may have placed the call,
so the reminder stays `dialling` and is reported for a person instead of being dialled again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioRestException

import crm
from reminders import claims, pacing
from reminders.policy import ReminderConfig
from reminders.selection import DueAppointment

log = logging.getLogger(__name__)

MACHINE_DETECTION = "DetectMessageEnd"  # Twilio fetches the Url after the greeting's beep


class Dialler(Protocol):
    """What places a call: `telephony.rest.TwilioRest` in production."""

    async def place_call(self, **fields: Any) -> str: ...


def call_fields(config: ReminderConfig, due: DueAppointment) -> dict[str, Any]:
    """The `Calls.json` request: answered by POST /twilio/reminder, status to /twilio/status."""
    query = urlencode({"appointment_id": due.appointment.id})
    return {
        "to": due.phone,
        "from_": config.shop_number,
        "url": f"{config.base_url}/twilio/reminder?{query}",
        "method": "POST",
        "status_callback": f"{config.base_url}/twilio/status",
        "status_callback_method": "POST",
        "machine_detection": MACHINE_DETECTION,
    }


@dataclass(frozen=True)
class Refusal:
    """A dial that certainly placed no call."""

    error: str
    retryable: bool


def refusal(exc: Exception) -> Refusal | None:
    """The refusal `exc` proves, or None when the call may have been placed."""
    if isinstance(exc, TwilioRestException):
        # 429 and 5xx may pass on a retry; another 4xx (bad number, bad credentials) will not.
        retryable = exc.status in (408, 429) or exc.status >= 500
        return Refusal(f"Twilio answered HTTP {exc.status} (error {exc.code}): {exc.msg}"[:300],
                       retryable)
    if isinstance(exc, aiohttp.ClientConnectorError):  # no connection, so no request was sent
        return Refusal(f"cannot connect to Twilio: {exc}"[:300], retryable=True)
    return None


@dataclass(frozen=True)
class DialResult:
    verdict: str  # claims.DIALLED, FAILED, NEEDS_ATTENTION or IN_PROGRESS_ELSEWHERE
    detail: str | None  # the call SID, or what went wrong
    attempts: int


async def dial(
    config: ReminderConfig, dialler: Dialler, due: DueAppointment, reminder_id: int, run_id: int
) -> DialResult:
    """Dial a reminder this run has claimed; every attempt is recorded before it is sent."""
    fields = call_fields(config, due)
    for tries in range(1, config.max_attempts + 1):
        await pacing.wait_turn(config.calls_per_second)
        attempt = await claims.begin_attempt(reminder_id, run_id)
        if attempt is None:  # another run took it over (it thought this one dead)
            return DialResult(claims.IN_PROGRESS_ELSEWHERE, None, tries - 1)
        try:
            async with asyncio.timeout(config.request_timeout):
                call_sid = await dialler.place_call(**fields)
        except Exception as exc:
            refused = refusal(exc)
            if refused is None:
                error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("appointment %s: outcome of the call request unknown: %s",
                            due.appointment.id, error)
                await claims.attempt_unknown(reminder_id, attempt, error)
                return DialResult(claims.NEEDS_ATTENTION, error, tries)
            final = not refused.retryable or tries == config.max_attempts
            await claims.attempt_failed(reminder_id, attempt, refused.error, final=final)
            if final:
                return DialResult(claims.FAILED, refused.error, tries)
            await asyncio.sleep(config.backoff(tries))
            continue
        await claims.attempt_placed(reminder_id, attempt, call_sid)
        try:
            await crm.open_call_log(call_sid, "outbound", config.shop_number, due.phone,
                                    due.appointment.customer_id)
        except crm.DatabaseUnavailable:  # POST /twilio/reminder opens it too
            log.warning("call %s: call log not opened yet", call_sid)
        return DialResult(claims.DIALLED, call_sid, tries)
    raise AssertionError("max_attempts must be at least 1")
