"""The calendar outbox: Google Calendar events are written after the booking has committed.

A booking, move or cancellation writes its appointment and, in the same transaction, its row
in `calendar_outbox` (`queue`), and commits: the caller is answered at database speed, and a
Google outage delays the event, never the booking. `sync` (one pass, for scripts) and
`run_worker` (the launcher's background task) then bring each queued appointment's event in
line with its row, retrying with back-off while Google fails.

Several processes may run them at once. A worker claims one row at a time with
`FOR UPDATE SKIP LOCKED` and, in the same statement, leases it (moves its due time past the
longest a try can take), so no other worker takes it while the first talks to Google; the
row lock itself lasts only that statement, so a booking queueing a change never waits for
Google. A change queued meanwhile bumps the row's version, and the worker then leaves the row
due again instead of closing it. A worker that dies leaves its row to whoever claims it when
the lease runs out.

A new event is created under an id chosen before the request (the row's `event_id`): when
Google did the work but its answer was lost (a timeout), the next try finds the event by that
id instead of creating a second one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from psycopg import AsyncConnection

from calendar_adapter import store
from calendar_adapter.backends import EventCalendar, event_calendar
from calendar_adapter.errors import CalendarError
from calendar_adapter.store import Booking
from crm import db
from crm.appointments import CANCELLED

log = logging.getLogger(__name__)

BACKOFF_SECONDS = 5.0  # after the first failed try, doubling with each further one
MAX_BACKOFF_SECONDS = 300.0  # also how long events may lag once Google is back
LEASE_SECONDS = 120  # far longer than one try: a few requests, each cut off by the backend's timeout
POLL_SECONDS = 1.0
_MAX_ERROR_CHARS = 500

_NOW = "coalesce(%(now)s::timestamptz, now())"

# A row already queued keeps its due time: a worker holding it sees the new version when done.
_QUEUE = """
INSERT INTO calendar_outbox (appointment_id, event_id) VALUES (%(id)s, %(event_id)s)
ON CONFLICT (appointment_id) DO UPDATE SET version = calendar_outbox.version + 1, updated_at = now()
"""

_CLAIM = f"""
UPDATE calendar_outbox o
SET attempts = o.attempts + 1, updated_at = now(),
    next_attempt_at = {_NOW} + make_interval(secs => %(lease)s)
FROM (
    SELECT appointment_id FROM calendar_outbox WHERE next_attempt_at <= {_NOW}
    ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED
) due
WHERE o.appointment_id = due.appointment_id
RETURNING o.appointment_id, o.event_id, o.version, o.attempts
"""

_CLOSE = "DELETE FROM calendar_outbox WHERE appointment_id = %(id)s AND version = %(version)s"

# Changed while a worker was at it: due again at once, with a fresh id if it used the old one.
_AGAIN = f"""
UPDATE calendar_outbox SET attempts = 0, last_error = NULL, next_attempt_at = {_NOW}, updated_at = now(),
    event_id = CASE WHEN event_id = %(used)s THEN %(fresh)s ELSE event_id END
WHERE appointment_id = %(id)s
"""

_FAILED = f"""
UPDATE calendar_outbox SET last_error = %(error)s, updated_at = now(),
    next_attempt_at = {_NOW} + make_interval(secs => %(delay)s), event_id = coalesce(%(fresh)s, event_id)
WHERE appointment_id = %(id)s
"""


@dataclass(frozen=True)
class SyncPass:
    """What one pass did: how many appointments' events it brought in step, and whether it
    stopped at a failure (the rest then waits, so a failing Google is not asked about every
    row in turn)."""

    synced: int
    failed: bool


@dataclass(frozen=True)
class _Claim:
    appointment_id: int
    event_id: str
    version: int
    attempts: int  # counting this one


class _EventIdTaken(Exception):
    """The id chosen for a new event is that of an event deleted since: the next try needs another."""


def _new_event_id() -> str:
    # Google's event ids are base32hex (0-9, a-v), 5 to 1024 characters; hex is a subset.
    return secrets.token_hex(16)


def backoff(failures: int) -> float:
    """Seconds to wait after `failures` failed tries in a row."""
    return min(BACKOFF_SECONDS * 2 ** min(failures - 1, 16), MAX_BACKOFF_SECONDS)


async def queue(conn: AsyncConnection, appointment_id: int) -> None:
    """Have the appointment's event brought in line with its row once this transaction
    commits; nothing on a calendar without events."""
    if event_calendar() is not None:
        await conn.execute(_QUEUE, {"id": appointment_id, "event_id": _new_event_id()})


async def _in_step(events: EventCalendar, booking: Booking, claim: _Claim) -> str | None:
    """Make the appointment's event what its row says; the id of its event afterwards."""
    if booking.appointment.status == CANCELLED:
        doomed = [booking.calendar_event_id] if booking.calendar_event_id else []
        if claim.attempts > 1:  # an earlier try may have created the event without hearing so
            doomed.append(claim.event_id)
        for event_id in doomed:
            await events.delete_event(event_id)
        return None
    if booking.calendar_event_id is not None and await events.move_event(booking):
        return booking.calendar_event_id
    # No event yet, or someone deleted it by hand: the appointment needs one.
    if await events.create_event(booking, claim.event_id):
        return claim.event_id
    # The id is taken: an earlier try created the event without hearing so. It may have
    # been made with times the appointment no longer has.
    if await events.move_event(replace(booking, calendar_event_id=claim.event_id)):
        return claim.event_id
    raise _EventIdTaken(f"event id {claim.event_id} is that of a deleted event")


async def _failed(claim: _Claim, exc: Exception, now: datetime | None) -> None:
    delay = backoff(claim.attempts)
    if isinstance(exc, CalendarError | _EventIdTaken):  # the backend has logged what Google said
        log.warning(
            "appointment %s: calendar event not in step yet (try %d); next try in %.0f s",
            claim.appointment_id, claim.attempts, delay,
        )
    else:
        log.exception("appointment %s: calendar event sync failed", claim.appointment_id)
    cause = exc.__cause__ or exc
    async with db.connection() as conn:
        await conn.execute(_FAILED, {
            "id": claim.appointment_id,
            "error": f"{type(cause).__name__}: {cause}"[:_MAX_ERROR_CHARS],
            "delay": delay,
            "now": now,
            "fresh": _new_event_id() if isinstance(exc, _EventIdTaken) else None,
        })


async def _sync_one(events: EventCalendar, claim: _Claim, now: datetime | None) -> bool:
    """Bring one claimed appointment's event in step; False if the calendar failed."""
    async with db.connection() as conn:
        booking = await store.get(conn, claim.appointment_id)
    if booking is None:  # deleted, and its outbox row with it
        return True
    try:
        event_id = await _in_step(events, booking, claim)
    except Exception as exc:
        await _failed(claim, exc, now)
        return False
    async with db.connection() as conn, conn.transaction():
        if event_id != booking.calendar_event_id:
            await store.set_event(conn, claim.appointment_id, event_id)
        closed = await conn.execute(_CLOSE, {"id": claim.appointment_id, "version": claim.version})
        if closed.rowcount == 0:
            await conn.execute(_AGAIN, {
                "id": claim.appointment_id, "used": event_id, "fresh": _new_event_id(), "now": now,
            })
    return True


async def _claim(now: datetime | None) -> _Claim | None:
    async with db.connection() as conn:
        row = await (await conn.execute(_CLAIM, {"now": now, "lease": LEASE_SECONDS})).fetchone()
    return None if row is None else _Claim(**row)


async def sync(*, now: datetime | None = None) -> SyncPass:
    """One pass over the rows due by `now` (the database's clock when None)."""
    events = event_calendar()
    synced = 0
    while events is not None and (claim := await _claim(now)) is not None:
        if not await _sync_one(events, claim, now):
            return SyncPass(synced, failed=True)
        synced += 1
    return SyncPass(synced, failed=False)


async def run_worker() -> None:
    """`sync` for as long as the task runs (cancel it to stop): every `POLL_SECONDS`, and after
    a failing pass once its back-off has passed. Never raises; failures are logged."""
    failures = 0
    while True:
        try:
            failed = (await sync()).failed
        except Exception:  # the database is unreachable, say; the next pass tries again
            log.exception("calendar sync pass failed")
            failed = True
        failures = failures + 1 if failed else 0
        await asyncio.sleep(backoff(failures) if failures else POLL_SECONDS)
