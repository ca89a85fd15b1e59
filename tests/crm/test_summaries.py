"""crm/summaries.py: which closed calls are due a summary, claims, retries and the last try."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

import crm
from config.settings import get_settings
from crm import summaries
from crm.summaries import CallSummary

SID = "CA" + "51" * 16
SUMMARY = CallSummary(reason="Wants an oil change.", vehicle="2019 Honda Civic", actions=[],
                      open_questions=["Is the shuttle running?"], callback_needed=True,
                      callback_reason="Asked about the shuttle.")


async def _sql(database_url: str, statement: str) -> Any:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        return await (await conn.execute(statement)).fetchone()


async def _settled(database_url: str) -> None:
    """As if the call had ended a minute ago: past the moments its last writes may still take."""
    await _sql(database_url, "UPDATE call_logs SET ended_at = ended_at - interval '1 minute' RETURNING id")


async def _due_now(database_url: str) -> None:
    """As if the wait before the next try were over."""
    await _sql(database_url, "UPDATE call_logs SET summary_due_at = now() WHERE summary_due_at IS NOT NULL"
                             " RETURNING id")


async def _closed_call(database_url: str, *turns: tuple[str, str]) -> None:
    await crm.open_call_log(SID, "inbound", "+12125550123", "+13125550100")
    for role, text in turns:
        await crm.append_turn(SID, role, text)  # type: ignore[arg-type]
    await crm.close_call_log(SID, "completed")
    await _settled(database_url)


async def test_a_call_the_caller_spoke_in_is_due_once_closed_and_claimed_once(
        clean_db: None, database_url: str) -> None:
    await crm.open_call_log(SID, "inbound", "+12125550123", "+13125550100")
    await crm.append_turn(SID, "caller", "I need an oil change.")
    assert await summaries.claim_due() is None  # still going
    await crm.close_call_log(SID, "completed")
    assert await summaries.claim_due() is None  # its last writes may still be on their way
    await _settled(database_url)
    claimed = await summaries.claim_due()
    assert claimed is not None
    assert (claimed.call_sid, claimed.outcome, claimed.attempts) == (SID, "completed", 1)
    assert [turn["text"] for turn in claimed.transcript] == ["I need an oil change."]
    assert await summaries.claim_due() is None  # this try's while it runs


async def test_a_call_without_a_caller_word_is_never_due(clean_db: None, database_url: str) -> None:
    await _closed_call(database_url, ("agent", "Thanks for calling, how can I help?"))
    assert await summaries.claim_due() is None
    assert (await crm.get_call_log(SID))["summary_due_at"] is None


async def test_a_stored_summary_ends_the_tries(clean_db: None, database_url: str) -> None:
    await _closed_call(database_url, ("caller", "I need an oil change."))
    claimed = await summaries.claim_due()
    assert claimed is not None
    await summaries.store(SID, SUMMARY)
    log = await crm.get_call_log(SID)
    assert log["summary"] == SUMMARY.model_dump(mode="json")
    assert log["summary_due_at"] is None
    await _due_now(database_url)
    assert await summaries.claim_due() is None


async def test_failed_tries_back_off_doubling_then_stop(clean_db: None, database_url: str) -> None:
    await _closed_call(database_url, ("caller", "I need an oil change."))
    first = get_settings().summary_retry_seconds
    waits = []
    for attempt in range(1, summaries.MAX_ATTEMPTS + 1):
        claimed = await summaries.claim_due()
        assert claimed is not None and claimed.attempts == attempt
        waits.append(await summaries.retry_later(claimed))
        if waits[-1] is not None:
            due_in = (await _sql(database_url, "SELECT summary_due_at - now() FROM call_logs"))[0]
            assert timedelta(seconds=waits[-1] - 5) < due_in <= timedelta(seconds=waits[-1])
        await _due_now(database_url)
    assert waits == [first, first * 2, first * 4, first * 8, None]
    log = await crm.get_call_log(SID)
    assert (log["summary"], log["summary_due_at"], log["summary_attempts"]) == (None, None, 5)
    assert await summaries.claim_due() is None
