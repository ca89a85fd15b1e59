"""A drain waits for the streams this process answered a webhook for, unless the database says
another launcher process took the stream (or the call ended): with LAUNCHER_PROCESSES > 1 or
pods behind a load balancer, the webhook and the stream often land on different processes."""

from __future__ import annotations

import crm
from bot.calls import STREAM_TAKEN_SECONDS, STREAM_WAIT_SECONDS, ActiveCalls
from crm import db

SHOP = "+13125550100"


async def _answered(calls: ActiveCalls, call_sid: str) -> None:
    """This process answered the call's webhook: its log is open and a place is kept."""
    await crm.open_call_log(call_sid, "inbound", "+12125550123", SHOP)
    assert await calls.expect(call_sid, limit=10)


async def _claimed_ago(call_sid: str, seconds: float) -> None:
    async with db.connection() as conn:
        await conn.execute("UPDATE call_logs SET stream_claimed_at = now() - make_interval(secs => %s)"
                           " WHERE call_sid = %s", (seconds, call_sid))


async def test_a_stream_taken_by_another_process_is_not_waited_for(clean_db: None) -> None:
    calls = ActiveCalls(crm.streams_gone_elsewhere)
    await _answered(calls, "CA" + "1" * 32)
    assert await crm.claim_stream("CA" + "1" * 32)  # another process took it
    # Well before the place would expire by itself.
    assert await calls.until_idle(STREAM_TAKEN_SECONDS + 3)


async def test_an_ended_call_is_not_waited_for(clean_db: None) -> None:
    calls = ActiveCalls(crm.streams_gone_elsewhere)
    await _answered(calls, "CA" + "2" * 32)
    await crm.close_call_log("CA" + "2" * 32, "caller_hung_up")
    assert await calls.until_idle(2)


async def test_a_claim_just_made_may_be_this_process_s_own_on_its_way(clean_db: None) -> None:
    calls = ActiveCalls(crm.streams_gone_elsewhere)
    await _answered(calls, "CA" + "3" * 32)
    await _answered(calls, "CA" + "4" * 32)
    assert await crm.claim_stream("CA" + "3" * 32)
    assert not await calls.until_idle(STREAM_TAKEN_SECONDS / 4)  # taken just now
    await _claimed_ago("CA" + "4" * 32, STREAM_WAIT_SECONDS)
    assert not await calls.until_idle(0.1)  # one taken long ago, the other not yet
    assert calls.expecting("CA" + "3" * 32) and not calls.expecting("CA" + "4" * 32)


async def test_with_nothing_to_ask_the_places_are_kept_until_they_expire(clean_db: None) -> None:
    calls = ActiveCalls()
    await _answered(calls, "CA" + "5" * 32)
    assert await crm.claim_stream("CA" + "5" * 32)
    await _claimed_ago("CA" + "5" * 32, STREAM_WAIT_SECONDS)
    assert not await calls.until_idle(1)
    assert calls.expecting("CA" + "5" * 32)


async def test_a_place_whose_stream_went_elsewhere_goes_to_the_next_caller(clean_db: None) -> None:
    calls = ActiveCalls(crm.streams_gone_elsewhere)
    await _answered(calls, "CA" + "6" * 32)
    assert not await calls.expect("CA" + "7" * 32, limit=1)  # the one place is kept
    assert await crm.claim_stream("CA" + "6" * 32)
    await _claimed_ago("CA" + "6" * 32, STREAM_TAKEN_SECONDS + 1)  # by another process
    assert await calls.expect("CA" + "7" * 32, limit=1)
