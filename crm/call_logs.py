"""Call logs written as the call happens, so a dropped call keeps what was said.

Opening is idempotent per call SID; closing is first-writer-wins, because the stream's stop,
a dropped socket and Twilio's status callback race to say the call is over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from config.settings import get_settings
from crm import db

Role = Literal["caller", "agent"]
OUTCOMES = frozenset({
    "booked", "rescheduled", "cancelled", "confirmed", "transferred",
    "caller_hung_up", "no_input", "voicemail", "completed", "error",
})


async def open_call_log(
    call_sid: str,
    direction: Literal["inbound", "outbound"],
    from_number: str | None,
    to_number: str | None,
    customer_id: int | None = None,
    *,
    caller_id: str | None = None,
    conn: AsyncConnection | None = None,
) -> int:
    """The call log's id, creating the row on the first call for this SID. `caller_id` says
    how far the customer's number could be believed (see `crm.identity.CallerId`).

    The writes here take `conn` to run in a caller's transaction (the journal's, `crm/journal.py`)."""
    async with db.within(conn) as conn:
        row = await (
            await conn.execute(
                "INSERT INTO call_logs (call_sid, direction, from_number, to_number, customer_id,"
                " caller_id) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (call_sid) DO UPDATE SET"
                "  customer_id = coalesce(call_logs.customer_id, EXCLUDED.customer_id),"
                "  caller_id = coalesce(call_logs.caller_id, EXCLUDED.caller_id)"
                " RETURNING id",
                (call_sid, direction, from_number, to_number, customer_id,
                 str(caller_id) if caller_id else None),
            )
        ).fetchone()
    return row["id"]


async def identify_caller(call_sid: str, customer_id: int, *,
                          conn: AsyncConnection | None = None) -> None:
    """The customer the call is with, once known (by caller ID, or as a new customer)."""
    async with db.within(conn) as conn:
        await conn.execute(
            "UPDATE call_logs SET customer_id = coalesce(customer_id, %s) WHERE call_sid = %s",
            (customer_id, call_sid),
        )


async def record_proof(call_sid: str, customer_id: int | None, *,
                       conn: AsyncConnection | None = None) -> None:
    """The caller proved they belong to `customer_id`'s record; None: a proof that failed."""
    async with db.within(conn) as conn:
        if customer_id is None:
            await conn.execute(
                "UPDATE call_logs SET failed_verifications = failed_verifications + 1"
                " WHERE call_sid = %s", (call_sid,))
        else:
            await conn.execute(
                "UPDATE call_logs SET verified_customer_ids = array_append(verified_customer_ids, %s)"
                " WHERE call_sid = %s AND NOT %s = ANY (verified_customer_ids)",
                (customer_id, call_sid, customer_id))


async def append_turn(call_sid: str, role: Role, text: str, at: datetime | str | None = None, *,
                      conn: AsyncConnection | None = None) -> None:
    """One turn of the transcript; `at` (a datetime or its ISO text) is when it was said."""
    said = at if isinstance(at, str) else (at or datetime.now().astimezone()).isoformat()
    entry = {"role": role, "text": text, "at": said}
    async with db.within(conn) as conn:
        await conn.execute(
            "UPDATE call_logs SET transcript = transcript || jsonb_build_array(%s::jsonb)"
            " WHERE call_sid = %s",
            (Jsonb(entry), call_sid),
        )


async def append_metrics(call_sid: str, figures: dict[str, Any], *,
                         conn: AsyncConnection | None = None) -> None:
    """Latency/TTFB figures for one turn or service, kept beside the transcript."""
    async with db.within(conn) as conn:
        await conn.execute(
            "UPDATE call_logs SET metrics = metrics || jsonb_build_array(%s::jsonb)"
            " WHERE call_sid = %s",
            (Jsonb(figures), call_sid),
        )


async def record_flag(call_sid: str, name: str, detail: str, at: datetime | str | None = None, *,
                      conn: AsyncConnection | None = None) -> None:
    """Something noticed during the call for a person to look at (`name`, e.g. "upset_caller",
    and a short `detail`); `at` as for `append_turn`. Flags outlive the transcript's retention,
    like the outcome: a detail must not quote the caller."""
    noticed = at if isinstance(at, str) else (at or datetime.now().astimezone()).isoformat()
    async with db.within(conn) as conn:
        await conn.execute(
            "UPDATE call_logs SET flags = flags || jsonb_build_array(%s::jsonb) WHERE call_sid = %s",
            (Jsonb({"name": name, "detail": detail, "at": noticed}), call_sid),
        )


def _known(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown call outcome {outcome!r}")
    return outcome


async def record_outcome(call_sid: str, outcome: str, *,
                         conn: AsyncConnection | None = None) -> None:
    """Note what the call achieved (booked, transferred, ...) the moment it happens, so
    whichever path closes the log later, on whichever instance, keeps it."""
    async with db.within(conn) as conn:
        await conn.execute(
            "UPDATE call_logs SET outcome = %s WHERE call_sid = %s AND ended_at IS NULL",
            (_known(outcome), call_sid),
        )


async def close_call_log(call_sid: str, outcome: str, *,
                         conn: AsyncConnection | None = None) -> bool:
    """Close the log; `outcome` applies unless one was recorded during the call.
    False when it was already closed (or never opened): the first closer wins. A call in which
    the caller said something is due for its summary (`crm.summaries`), made after this."""
    async with db.within(conn) as conn:
        cur = await conn.execute(
            "UPDATE call_logs SET ended_at = now(), outcome = coalesce(outcome, %s),"
            "  summary_due_at = CASE WHEN transcript @> '[{\"role\": \"caller\"}]' THEN now() END"
            " WHERE call_sid = %s AND ended_at IS NULL",
            (_known(outcome), call_sid),
        )
        return cur.rowcount == 1


async def get_call_log(call_sid: str) -> dict[str, Any] | None:
    async with db.connection() as conn:
        return await (
            await conn.execute("SELECT * FROM call_logs WHERE call_sid = %s", (call_sid,))
        ).fetchone()


async def recent_call_logs(limit: int) -> list[dict[str, Any]]:
    """The `limit` calls started last, newest first, with their per-turn figures (no transcript)."""
    async with db.connection() as conn:
        return await (
            await conn.execute(
                "SELECT call_sid, direction, from_number, to_number, started_at, ended_at, outcome,"
                " metrics FROM call_logs ORDER BY started_at DESC, id DESC LIMIT %s", (limit,))
        ).fetchall()


async def claim_stream(call_sid: str) -> bool:
    """True for the first media stream of a call whose log exists; False for any other."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "UPDATE call_logs SET stream_claimed_at = now()"
            " WHERE call_sid = %s AND stream_claimed_at IS NULL AND ended_at IS NULL",
            (call_sid,),
        )
        return cur.rowcount == 1


async def streams_gone_elsewhere(call_sids: list[str], seconds: float) -> set[str]:
    """Those of `call_sids` whose one stream was taken more than `seconds` ago (by whichever
    launcher process took it), or whose call has ended."""
    async with db.connection() as conn:
        rows = await (await conn.execute(
            "SELECT call_sid FROM call_logs WHERE call_sid = ANY(%s) AND (ended_at IS NOT NULL"
            " OR stream_claimed_at < now() - make_interval(secs => %s))", (call_sids, seconds),
        )).fetchall()
    return {row["call_sid"] for row in rows}


async def purge_transcripts(older_than_days: int | None = None) -> int:
    """Empty the transcripts of calls started more than `older_than_days` (default
    CALL_LOG_RETENTION_DAYS) days ago; how many were purged. The rows stay, with direction,
    times, outcome and per-turn timings, for the shop's statistics.

    Safe to run at any time and concurrently: runs at once share the rows out (SKIP LOCKED,
    so they neither wait for nor deadlock on each other), and a later run finds nothing left.
    """
    days = get_settings().call_log_retention_days if older_than_days is None else older_than_days
    async with db.connection() as conn:
        cur = await conn.execute(
            "UPDATE call_logs SET transcript = '[]'::jsonb WHERE id IN ("
            " SELECT id FROM call_logs"
            " WHERE started_at < now() - make_interval(days => %s) AND transcript <> '[]'::jsonb"
            " FOR UPDATE SKIP LOCKED)",
            (days,),
        )
        return cur.rowcount
