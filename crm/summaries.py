"""The service advisor's summary of a call: its shape (`call_logs.summary`), and the calls due one.

A closed call log in which the caller said something is due (`close_call_log` sets
`summary_due_at`). A summariser (bot/summaries.py) claims one due call at a time: SKIP LOCKED, so
launchers share the work, and its due time put off by `LEASE_SECONDS`, so one a launcher dropped
mid-try (a crash, a shutdown) is taken up again later. Then it stores the summary, or puts the
next try off, doubling SUMMARY_RETRY_SECONDS, for up to `MAX_ATTEMPTS` tries in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from config.settings import get_settings
from crm import db

MAX_ATTEMPTS = 5
LEASE_SECONDS = 120  # longer than a try may take (bot/summaries.py: REQUEST_SECONDS)
# Twilio's status callback may close a log just before the call's own last writes are in (its
# last words, the outcome): they follow within moments, so a log is summarised this much later.
SETTLE_SECONDS = 3


class Action(BaseModel):
    """Something done on the call."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["booked", "rescheduled", "cancelled", "confirmed", "vehicle_added", "message_taken",
                  "transferred"]
    detail: str = Field(description="What and when, e.g. 'oil change, Tuesday March 3 at 10 AM'")


class CallSummary(BaseModel):
    """What an advisor needs to know of a call, at a glance."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="Why the customer called, in one sentence")
    vehicle: str | None = Field(description="The vehicle the call was about, e.g. '2019 Honda Civic'")
    actions: list[Action] = Field(description="What was booked, moved, cancelled or otherwise done")
    open_questions: list[str] = Field(description="What the customer asked that is still unanswered")
    callback_needed: bool = Field(description="Whether a person should call the customer back")
    callback_reason: str | None = Field(description="Why a call back is needed; null when it is not")


@dataclass(frozen=True)
class DueCall:
    """A closed call waiting for its summary."""

    call_sid: str
    direction: str
    outcome: str
    transcript: list[dict[str, Any]]
    attempts: int  # this try included


async def claim_due() -> DueCall | None:
    """The call longest due for its summary, now this process's for `LEASE_SECONDS`; None: none."""
    async with db.connection() as conn:
        row = await (await conn.execute(
            "UPDATE call_logs SET summary_attempts = summary_attempts + 1,"
            "  summary_due_at = now() + make_interval(secs => %s)"
            " WHERE id = (SELECT id FROM call_logs WHERE summary_due_at <= now() AND summary IS NULL"
            "  AND ended_at <= now() - make_interval(secs => %s)"
            "  ORDER BY summary_due_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
            " RETURNING call_sid, direction, outcome, transcript, summary_attempts",
            (LEASE_SECONDS, SETTLE_SECONDS))).fetchone()
    if row is None:
        return None
    return DueCall(row["call_sid"], row["direction"], row["outcome"], row["transcript"],
                   row["summary_attempts"])


async def store(call_sid: str, summary: CallSummary) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE call_logs SET summary = %s, summary_due_at = NULL WHERE call_sid = %s",
            (Jsonb(summary.model_dump(mode="json")), call_sid))


async def retry_later(call: DueCall) -> float | None:
    """After a failed try: seconds until the next one, or None when it was the last."""
    retry = (get_settings().summary_retry_seconds * 2 ** (call.attempts - 1)
             if call.attempts < MAX_ATTEMPTS else None)
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE call_logs SET summary_due_at = now() + make_interval(secs => %s)"
            " WHERE call_sid = %s AND summary IS NULL",
            (retry, call.call_sid))
    return retry
