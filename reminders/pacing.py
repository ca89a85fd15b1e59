"""Calls per second across every run at once: each dial takes the next slot from one row."""

from __future__ import annotations

import asyncio

from crm import db

# The slot after the last one handed out, or now if that is later; the wait is until it.
_NEXT_SLOT = """
INSERT INTO reminder_pacing (id, last_at) VALUES (true, clock_timestamp())
ON CONFLICT (id) DO UPDATE SET
    last_at = greatest(reminder_pacing.last_at + make_interval(secs => %s), clock_timestamp())
RETURNING extract(epoch FROM last_at - clock_timestamp())::float8 AS wait
"""


async def wait_turn(calls_per_second: float) -> None:
    """Return when this process may send its next call request."""
    async with db.connection() as conn:
        row = await (await conn.execute(_NEXT_SLOT, (1.0 / calls_per_second,))).fetchone()
    if row["wait"] > 0:
        await asyncio.sleep(row["wait"])
