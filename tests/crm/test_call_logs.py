"""Call logs: opened once, transcript appended turn by turn, closed by whoever is first."""

from __future__ import annotations

import asyncio

import pytest

import crm


async def test_turns_are_kept_as_they_happen_and_first_close_wins(clean_db) -> None:
    first_id = await crm.open_call_log("CA1", "inbound", "+12125550123", "+13125550100")
    assert await crm.open_call_log("CA1", "inbound", "+12125550123", "+13125550100") == first_id
    await crm.append_turn("CA1", "agent", "Hi Maria, calling about the Civic?")
    await crm.append_turn("CA1", "caller", "Yes, I need an oil change")
    await crm.append_metrics("CA1", {"turn": 1, "latency_ms": 640})
    partial = await crm.get_call_log("CA1")
    assert [t["role"] for t in partial["transcript"]] == ["agent", "caller"]
    assert partial["ended_at"] is None  # still live, yet what was said is stored

    closers = await asyncio.gather(
        crm.close_call_log("CA1", "caller_hung_up"),
        crm.close_call_log("CA1", "completed"),
        crm.close_call_log("CA1", "error"),
    )
    assert sorted(closers) == [False, False, True]
    closed = await crm.get_call_log("CA1")
    assert closed["ended_at"] is not None
    assert closed["outcome"] == ("caller_hung_up", "completed", "error")[closers.index(True)]
    assert closed["metrics"] == [{"turn": 1, "latency_ms": 640}]
    assert closed["transcript"][1]["text"] == "Yes, I need an oil change"


async def test_unknown_outcome_is_refused(clean_db) -> None:
    await crm.open_call_log("CA2", "outbound", "+13125550100", "+12125550123")
    with pytest.raises(ValueError):
        await crm.close_call_log("CA2", "exploded")
    assert await crm.close_call_log("CA-never-opened", "completed") is False


async def test_outcome_recorded_during_the_call_survives_any_closer(clean_db) -> None:
    await crm.open_call_log("CA3", "inbound", "+12125550123", "+13125550100")
    await crm.record_outcome("CA3", "booked")
    assert await crm.close_call_log("CA3", "caller_hung_up") is True
    assert (await crm.get_call_log("CA3"))["outcome"] == "booked"
    await crm.record_outcome("CA3", "cancelled")  # too late: the log is closed
    assert (await crm.get_call_log("CA3"))["outcome"] == "booked"


async def test_a_call_opens_one_stream_only(clean_db) -> None:
    assert await crm.claim_stream("CA4") is False  # no such call
    await crm.open_call_log("CA4", "inbound", "+12125550123", "+13125550100")
    claims = await asyncio.gather(*(crm.claim_stream("CA4") for _ in range(5)))
    assert sorted(claims) == [False] * 4 + [True]
