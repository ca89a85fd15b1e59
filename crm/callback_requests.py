"""Messages the agent takes for a service advisor to call back (name, number, what they need).

Written like the call log's entries (through `crm.journal` from a call), so a message left
while the database is down is stored once it is back. Advisors list the open ones and mark
each handled once they called back.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from crm import db


async def record_callback_request(call_sid: str, customer_id: int | None, name: str, phone: str,
                                  reason: str, at: str | None = None, *,
                                  conn: AsyncConnection | None = None) -> int:
    """Store a message taken on `call_sid`; `phone` is E.164, `at` (ISO) when it was left
    (default now). Returns its id."""
    async with db.within(conn) as conn:
        row = await (await conn.execute(
            "INSERT INTO callback_requests (call_sid, customer_id, name, phone, reason, created_at)"
            " VALUES (%s, %s, %s, %s, %s, coalesce(%s::timestamptz, now())) RETURNING id",
            (call_sid, customer_id, name, phone, reason, at))).fetchone()
    return row["id"]


async def open_callback_requests() -> list[dict[str, Any]]:
    """The messages nobody has called back yet, oldest first."""
    async with db.connection() as conn:
        return await (await conn.execute(
            "SELECT * FROM callback_requests WHERE handled_at IS NULL ORDER BY created_at, id")
        ).fetchall()


async def mark_callback_handled(request_id: int) -> bool:
    """An advisor called back; False when it was already marked (or does not exist)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "UPDATE callback_requests SET handled_at = now() WHERE id = %s AND handled_at IS NULL",
            (request_id,))
        return cur.rowcount == 1
