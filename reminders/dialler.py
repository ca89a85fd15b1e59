"""Placing one reminder call through Twilio's REST API, with bounded retries, never ringing twice.

A definite refusal placed no call: a 4xx answer (a 429 is retried, another 4xx is not), or no
connection at all (retried). Anything else (a 5xx, a timeout, a dropped connection) may have
placed the call anyway, so before any retry Twilio's list of calls is asked: a call from the shop
to the customer, created since the first attempt and not yet any reminder's, is this one's, and
the reminder counts as dialled with it. Only when the list shows none is the dial retried. When
the list cannot be read, or cannot rule such a call out, the reminder stays `dialling` and is
reported for a person: it is never dialled again blindly.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.response import Response

import crm
from reminders import claims, pacing
from reminders.policy import ReminderConfig
from reminders.selection import DueAppointment
from telephony.rest import ListedCall

log = logging.getLogger(__name__)

MACHINE_DETECTION = "DetectMessageEnd"  # Twilio fetches the Url after the greeting's beep
# Calls from the shop to one customer: one page this long holds every one Twilio keeps; when it
# is full and shows no call of ours, older ones may hide ours, so a person looks instead.
CALL_LIST_LIMIT = 100
# How far Twilio's clock may lag ours when it dates a new call (its dates are whole seconds too).
CLOCK_SKEW = timedelta(minutes=2)


class Dialler(Protocol):
    """What places calls and lists them: `telephony.rest.TwilioRest` in production."""

    async def place_call(self, **fields: Any) -> str: ...

    async def list_calls(self, *, to: str, from_: str, limit: int) -> list[ListedCall]: ...


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
    checked: bool = False  # Twilio's list of calls was read, after the back-off: retry at once


@dataclass(frozen=True)
class Placed:
    """A dial that placed a call."""

    call_sid: str
    doubt: str | None = None  # what went wrong with the request, when the list of calls showed it


class Undecided(Exception):
    """Nobody can tell whether the request placed a call."""


def describe(exc: BaseException) -> str:
    """What went wrong, for the attempt's record and the run's printout."""
    if isinstance(exc, TwilioRestException):
        text = f"Twilio answered HTTP {exc.status} (error {exc.code}): {exc.msg}"
    elif isinstance(exc, TwilioException) and exc.args and isinstance(exc.args[-1], Response):  # a page
        text = f"Twilio answered HTTP {exc.args[-1].status_code}"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        text = f"cannot connect to Twilio: {exc}"
    elif isinstance(exc, TimeoutError):
        text = "no answer from Twilio in time"
    elif isinstance(exc, Undecided):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:300]


def refusal(exc: Exception) -> Refusal | None:
    """The refusal `exc` proves, or None when the call may have been placed."""
    if isinstance(exc, TwilioRestException) and exc.status < 500:
        # 429 (and 408) may pass on a retry; another 4xx (bad number, bad credentials) will not.
        return Refusal(describe(exc), retryable=exc.status in (408, 429))
    if isinstance(exc, aiohttp.ClientConnectorError):  # no connection, so no request was sent
        return Refusal(describe(exc), retryable=True)
    return None  # a 5xx, a timeout, a dropped connection: Twilio may have acted on it


async def placed_call(config: ReminderConfig, dialler: Dialler, due: DueAppointment,
                      since: datetime) -> str | None:
    """The call Twilio created from the shop to the customer since `since` that no reminder has
    recorded: this reminder's, whose answer went astray. The list holds no `Url`, so the numbers
    and the time are all there is to match on. Raises when the list cannot be read, or is too
    long to rule such a call out."""
    async with asyncio.timeout(config.request_timeout):
        calls = await dialler.list_calls(to=due.phone, from_=config.shop_number, limit=CALL_LIST_LIMIT)
    unrecorded = await claims.unrecorded([call.sid for call in calls if call.created >= since])
    if unrecorded:
        return unrecorded[0]
    if len(calls) >= CALL_LIST_LIMIT:
        raise Undecided("Twilio lists more calls to this number than one page holds")
    return None


async def try_once(config: ReminderConfig, dialler: Dialler, due: DueAppointment, fields: dict[str, Any],
                   since: datetime, tries: int) -> Placed | Refusal:
    """One request to place the call, and what became of it; raises `Undecided` when nobody can
    tell."""
    try:
        async with asyncio.timeout(config.request_timeout):
            return Placed(await dialler.place_call(**fields))
    except Exception as exc:
        refused = refusal(exc)
        if refused is not None:
            return refused
        doubt = describe(exc)
    await asyncio.sleep(config.backoff(tries))  # a new call may show in the list a moment late
    try:
        found = await placed_call(config, dialler, due, since)
    except Exception as exc:
        raise Undecided(f"{doubt}; Twilio's list of calls could not tell: {describe(exc)}"[:300]) from exc
    if found is None:
        return Refusal(f"{doubt}; no such call in Twilio's list of calls"[:300], retryable=True, checked=True)
    log.info("appointment %s: %s, but Twilio placed call %s", due.appointment.id, doubt, found)
    return Placed(found, doubt)


@dataclass(frozen=True)
class DialResult:
    verdict: str  # claims.DIALLED, FAILED, NEEDS_ATTENTION or IN_PROGRESS_ELSEWHERE
    detail: str | None  # the call SID, or what went wrong
    attempts: int
    recovered: bool = False  # dialled, though only Twilio's list of calls said so


async def dial(
    config: ReminderConfig, dialler: Dialler, due: DueAppointment, reminder_id: int, run_id: int
) -> DialResult:
    """Dial a reminder this run has claimed; every attempt is recorded before it is sent."""
    fields = call_fields(config, due)
    since = datetime.now(UTC) - CLOCK_SKEW  # the wall clock, not the run's: Twilio dates by its own
    for tries in range(1, config.max_attempts + 1):
        await pacing.wait_turn(config.calls_per_second)
        attempt = await claims.begin_attempt(reminder_id, run_id)
        if attempt is None:  # another run took it over (it thought this one dead)
            return DialResult(claims.IN_PROGRESS_ELSEWHERE, None, tries - 1)
        try:
            outcome = await try_once(config, dialler, due, fields, since, tries)
        except Undecided as exc:
            log.warning("appointment %s: whether the call was placed is unknown: %s", due.appointment.id, exc)
            await claims.attempt_unknown(reminder_id, attempt, str(exc))
            return DialResult(claims.NEEDS_ATTENTION, str(exc), tries)
        if isinstance(outcome, Placed):
            return await _dialled(config, due, reminder_id, attempt, outcome, tries)
        final = not outcome.retryable or tries == config.max_attempts
        await claims.attempt_failed(reminder_id, attempt, outcome.error, final=final)
        if final:
            return DialResult(claims.FAILED, outcome.error, tries)
        if not outcome.checked:
            await asyncio.sleep(config.backoff(tries))
    raise AssertionError("max_attempts must be at least 1")


async def _dialled(config: ReminderConfig, due: DueAppointment, reminder_id: int, attempt: int,
                   placed: Placed, tries: int) -> DialResult:
    await claims.attempt_placed(reminder_id, attempt, placed.call_sid, placed.doubt)
    try:
        await crm.open_call_log(placed.call_sid, "outbound", config.shop_number, due.phone,
                                due.appointment.customer_id)
    except crm.DatabaseUnavailable:  # POST /twilio/reminder opens it too
        log.warning("call %s: call log not opened yet", placed.call_sid)
    if placed.doubt is None:
        return DialResult(claims.DIALLED, placed.call_sid, tries)
    detail = f"{placed.call_sid}, found in Twilio's list of calls after: {placed.doubt}"
    return DialResult(claims.DIALLED, detail, tries, recovered=True)
