"""Exactly once: an appointment's reminder is claimed in the database before anyone dials.

The claim runs in one short transaction (insert the reminder if new, lock it with
`FOR UPDATE SKIP LOCKED`, judge its state), and `dialling` is committed before the request to
Twilio leaves. So two runs at the same time, or a run after a crash, never dial it twice:

- `claimed` belongs to a run that has sent nothing yet, or whose attempts definitely failed;
  if that run is dead, the next run may take it over.
- `dialling` while its run is alive is that run's business. If its run died, or its run could
  not tell from Twilio's list of calls whether the call was placed, it is never dialled again:
  it needs a person.
- `dialled` is done; `failed` (every attempt definitely refused) and `skipped` may be claimed
  again, because no call went out.

A run is alive while it holds the advisory lock (REMINDER_RUNS, run id) on a connection of its
own, which the server releases the moment the process or its connection dies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from crm import db
from crm.errors import DatabaseUnavailable
from crm.locks import REMINDER_RUNS
from reminders.selection import DueAppointment

# Verdicts: what became of an appointment in a run.
OURS = "ours"  # claimed by this run: dial it
DIALLED = "dialled"
FAILED = "failed"
NEEDS_ATTENTION = "needs_attention"
# ... and the reasons it was deliberately not dialled.
NOT_ALLOWLISTED = "not_allowlisted"
OUTSIDE_CALLING_HOURS = "outside_calling_hours"
APPOINTMENT_PASSED = "appointment_passed"
ALREADY_REMINDED = "already_reminded"
IN_PROGRESS_ELSEWHERE = "in_progress_elsewhere"
NUMBER_ALREADY_CALLED = "number_already_called"

LIVE_STATES = ("claimed", "dialling", "dialled")  # the states that hold the number for the day


def verdict(state: str, mine: bool, owner_alive: bool) -> str | None:
    """What an existing reminder in `state` means for a run; None when the run may claim it."""
    if state == "dialled":
        return ALREADY_REMINDED
    if state == "dialling":
        return IN_PROGRESS_ELSEWHERE if owner_alive and not mine else NEEDS_ATTENTION
    if state == "claimed" and owner_alive and not mine:
        return IN_PROGRESS_ELSEWHERE
    return None  # claimed by us or by a dead run, failed, skipped: nothing is in flight


def explain(refused: str, run_id: int, call_sid: str | None, reason: str | None) -> str | None:
    if refused == NEEDS_ATTENTION:
        if reason:  # written by a run that lived to find out it could not tell
            return f"run {run_id} could not tell whether Twilio placed the call: {reason}"
        return f"run {run_id} died while dialling: it is unknown whether Twilio placed the call"
    return call_sid  # the call that already reminded them, if any


@dataclass(frozen=True)
class Reminder:
    """A reminder row as a run sees it."""

    id: int
    appointment_id: int
    state: str
    to_number: str
    run_id: int
    owner_alive: bool
    attempts: int
    call_sid: str | None
    reason: str | None


@dataclass(frozen=True)
class Claim:
    verdict: str  # OURS, or why not
    reminder_id: int | None = None
    detail: str | None = None


_LIVE_RUNS = """
SELECT objid::bigint AS run_id FROM pg_locks
WHERE locktype = 'advisory' AND granted AND classid::bigint = %s AND objsubid = 2
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def live_runs(conn: psycopg.AsyncConnection) -> set[int]:
    rows = await (await conn.execute(_LIVE_RUNS, (REMINDER_RUNS,))).fetchall()
    return {row["run_id"] for row in rows}


@asynccontextmanager
async def run_record(day: date) -> AsyncIterator[int]:
    """A new run's id, held alive (advisory lock on a connection of its own) while inside."""
    async with db.connection() as conn:
        row = await (await conn.execute(
            "INSERT INTO reminder_runs (day) VALUES (%s) RETURNING id", (day,)
        )).fetchone()
    run_id = row["id"]
    try:
        lock = await psycopg.AsyncConnection.connect(await db.database_url(), autocommit=True,
                                                     connect_timeout=3)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(str(exc).splitlines()[0] if str(exc) else "database error") from exc
    try:
        await lock.execute("SELECT pg_advisory_lock(%s::int4, %s::int4)", (REMINDER_RUNS, run_id))
        yield run_id
    finally:
        await lock.close()  # releases the lock: from now on the run counts as dead


async def finish_run(run_id: int, summary: dict[str, Any]) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE reminder_runs SET finished_at = now(), summary = %s WHERE id = %s",
            (Jsonb(summary), run_id),
        )


async def day_reminders(day: date) -> dict[int, Reminder]:
    """Every reminder of `day` by appointment id (read only: for dry runs and reports)."""
    async with db.connection() as conn:
        alive = await live_runs(conn)
        rows = await (await conn.execute(
            "SELECT id, appointment_id, state, to_number, run_id, attempts, call_sid, reason"
            " FROM reminders WHERE day = %s", (day,)
        )).fetchall()
    return {row["appointment_id"]: Reminder(**row, owner_alive=row["run_id"] in alive)
            for row in rows}


_UPSERT_SKIP = """
INSERT INTO reminders (appointment_id, day, to_number, scheduled_at, state, reason, run_id)
VALUES (%(appointment)s, %(day)s, %(phone)s, %(at)s, 'skipped', %(reason)s, %(run)s)
ON CONFLICT (appointment_id) DO UPDATE SET
    reason = EXCLUDED.reason, to_number = EXCLUDED.to_number,
    scheduled_at = EXCLUDED.scheduled_at, run_id = EXCLUDED.run_id, updated_at = now()
WHERE reminders.state = 'skipped'
"""


def _values(due: DueAppointment, day: date, run_id: int, **extra: Any) -> dict[str, Any]:
    return {"appointment": due.appointment.id, "day": day, "phone": due.phone,
            "at": due.appointment.start_time, "run": run_id, **extra}


async def record_skip(due: DueAppointment, day: date, run_id: int, reason: str) -> None:
    """Remember a deliberate skip, so re-runs report it too (a claimed or dialled reminder
    keeps its state)."""
    async with db.connection() as conn:
        await conn.execute(_UPSERT_SKIP, _values(due, day, run_id, reason=reason))


async def claim(due: DueAppointment, day: date, run_id: int) -> Claim:
    """Make the appointment's reminder this run's, or say why not. Commits before returning."""
    values = _values(due, day, run_id)
    async with db.connection() as conn, conn.transaction():
        # No target: a clash with the one-call-per-number index is "nothing inserted" too.
        await conn.execute(
            "INSERT INTO reminders (appointment_id, day, to_number, scheduled_at, state, run_id)"
            " VALUES (%(appointment)s, %(day)s, %(phone)s, %(at)s, 'claimed', %(run)s)"
            " ON CONFLICT DO NOTHING", values)
        row = await (await conn.execute(
            "SELECT id, state, run_id, call_sid, reason FROM reminders WHERE appointment_id = %s"
            " FOR UPDATE SKIP LOCKED", (due.appointment.id,)
        )).fetchone()
        if row is None:
            exists = await (await conn.execute(
                "SELECT 1 FROM reminders WHERE appointment_id = %s", (due.appointment.id,)
            )).fetchone()
            if exists:  # another run is claiming it at this very moment
                return Claim(IN_PROGRESS_ELSEWHERE)
            return await _number_taken(conn, values)
        mine = row["run_id"] == run_id
        alive = mine or row["run_id"] in await live_runs(conn)
        refused = verdict(row["state"], mine, alive)
        if refused is not None:
            return Claim(refused, row["id"], explain(refused, row["run_id"], row["call_sid"], row["reason"]))
        if mine and row["state"] == "claimed":
            return Claim(OURS, row["id"])  # inserted just now
        try:
            async with conn.transaction():  # savepoint: the number may be taken meanwhile
                await conn.execute(
                    "UPDATE reminders SET state = 'claimed', run_id = %(run)s, reason = NULL,"
                    " to_number = %(phone)s, scheduled_at = %(at)s, updated_at = now()"
                    " WHERE id = %(id)s", {**values, "id": row["id"]})
        except psycopg.errors.UniqueViolation:
            await conn.execute(
                "UPDATE reminders SET state = 'skipped', reason = %s, updated_at = now()"
                " WHERE id = %s AND state IN ('failed', 'skipped')",
                (NUMBER_ALREADY_CALLED, row["id"]))
            return Claim(NUMBER_ALREADY_CALLED, row["id"])
        return Claim(OURS, row["id"])


async def _number_taken(conn: psycopg.AsyncConnection, values: dict[str, Any]) -> Claim:
    """The insert clashed with another appointment's live reminder for the same number."""
    row = await (await conn.execute(
        "INSERT INTO reminders (appointment_id, day, to_number, scheduled_at, state, reason, run_id)"
        " VALUES (%(appointment)s, %(day)s, %(phone)s, %(at)s, 'skipped', %(reason)s, %(run)s)"
        " ON CONFLICT DO NOTHING RETURNING id", {**values, "reason": NUMBER_ALREADY_CALLED}
    )).fetchone()
    other = await (await conn.execute(
        "SELECT appointment_id FROM reminders WHERE day = %(day)s AND to_number = %(phone)s"
        " AND state IN ('claimed', 'dialling', 'dialled')", values
    )).fetchone()
    detail = f"called for appointment {other['appointment_id']}" if other else None
    return Claim(NUMBER_ALREADY_CALLED, row["id"] if row else None, detail)


async def begin_attempt(reminder_id: int, run_id: int) -> int | None:
    """Mark the reminder `dialling` and write a `pending` attempt, committed before the request
    leaves; the attempt's number, or None when the reminder is no longer this run's. The reason
    is cleared: while `dialling`, it says only what this attempt met."""
    async with db.connection() as conn, conn.transaction():
        row = await (await conn.execute(
            "UPDATE reminders SET state = 'dialling', attempts = attempts + 1, reason = NULL,"
            " updated_at = now()"
            " WHERE id = %s AND state = 'claimed' AND run_id = %s RETURNING attempts",
            (reminder_id, run_id),
        )).fetchone()
        if row is None:
            return None
        await conn.execute(
            "INSERT INTO reminder_attempts (reminder_id, attempt, run_id) VALUES (%s, %s, %s)",
            (reminder_id, row["attempts"], run_id),
        )
    return row["attempts"]


async def attempt_placed(reminder_id: int, attempt: int, call_sid: str, doubt: str | None = None) -> None:
    """`doubt`: what went wrong with a request whose call Twilio's list of calls then showed."""
    async with db.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE reminder_attempts SET result = 'placed', call_sid = %s, error = %s"
            " WHERE reminder_id = %s AND attempt = %s", (call_sid, doubt, reminder_id, attempt))
        await conn.execute(
            "UPDATE reminders SET state = 'dialled', call_sid = %s, reason = NULL, updated_at = now()"
            " WHERE id = %s", (call_sid, reminder_id))


async def attempt_failed(reminder_id: int, attempt: int, error: str, *, final: bool) -> None:
    """Twilio definitely did not place the call: back to `claimed` for a retry, or `failed`."""
    async with db.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE reminder_attempts SET result = 'failed', error = %s"
            " WHERE reminder_id = %s AND attempt = %s", (error, reminder_id, attempt))
        await conn.execute(
            "UPDATE reminders SET state = %s, reason = %s, updated_at = now() WHERE id = %s",
            ("failed" if final else "claimed", error, reminder_id))


async def attempt_unknown(reminder_id: int, attempt: int, error: str) -> None:
    """Nobody can tell whether the request placed a call: the reminder stays `dialling`."""
    async with db.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE reminder_attempts SET result = 'unknown', error = %s"
            " WHERE reminder_id = %s AND attempt = %s", (error, reminder_id, attempt))
        await conn.execute(
            "UPDATE reminders SET reason = %s, updated_at = now() WHERE id = %s", (error, reminder_id))


_RECORDED = """
SELECT call_sid FROM reminders WHERE call_sid = ANY(%(sids)s)
UNION SELECT call_sid FROM reminder_attempts WHERE call_sid = ANY(%(sids)s)
"""


async def unrecorded(call_sids: list[str]) -> list[str]:
    """Those of `call_sids` (in their order) that no reminder or attempt has recorded: a call
    another reminder placed is not one whose answer went astray."""
    if not call_sids:
        return []
    async with db.connection() as conn:
        rows = await (await conn.execute(_RECORDED, {"sids": call_sids})).fetchall()
    recorded = {row["call_sid"] for row in rows}
    return [sid for sid in call_sids if sid not in recorded]
