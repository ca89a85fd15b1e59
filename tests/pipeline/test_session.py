"""CallSession.shielded: an action outlives the cancelled handler awaiting it (a barge-in, a
hang-up); when it then fails, the failure is logged once, not left for asyncio to report as
never retrieved, and the call log still closes after it."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

import crm
from crm.identity import CallerAccess, CallerId
from pipeline.opening import CallStart
from pipeline.session import CallSession

SID = "CA" + "5e" * 16


async def _session() -> CallSession:
    await crm.call_logs.open_call_log(SID, "inbound", None, None)
    start = CallStart(call_sid=SID, stream_sid="MZ" + "5e" * 16, account_sid=None, direction="inbound",
                      customer_number=None, shop_number=None)
    session = CallSession(start, CallerAccess.of(None, CallerId.WITHHELD), None)
    session.begin()
    return session


async def _refused_after(release: asyncio.Event) -> None:
    """A write the database side refuses, once `release` is set."""
    await release.wait()
    await crm.call_logs.record_outcome(SID, "double_booked")  # not an outcome: ValueError


async def _await(action: Any) -> Any:
    return await action


@pytest.fixture
async def unhandled() -> AsyncIterator[list[dict[str, Any]]]:
    """What reached the loop's exception handler (asyncio's "never retrieved" reports go there)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    yield seen
    loop.set_exception_handler(None)


def _session_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pipeline.session" and r.levelno >= logging.ERROR]


async def test_an_action_failing_after_its_handler_was_cancelled_is_logged_once(
        clean_db: None, unhandled: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="pipeline.session")
    session = await _session()
    release = asyncio.Event()
    handler = asyncio.create_task(_await(session.shielded(_refused_after(release))))
    await asyncio.sleep(0.01)
    handler.cancel()  # the caller barged in
    with pytest.raises(asyncio.CancelledError):
        await handler
    release.set()
    await session.finish()  # waits for the action before it closes the log
    del handler
    gc.collect()  # a failed task nobody retrieved reports itself as it is collected

    assert unhandled == []
    errors = _session_errors(caplog)
    assert len(errors) == 1 and SID in errors[0].getMessage()
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is ValueError
    log = await crm.get_call_log(SID)
    assert log is not None and log["ended_at"] is not None and log["outcome"] == "caller_hung_up"


async def test_a_failure_its_handler_sees_is_left_to_the_handler(
        clean_db: None, unhandled: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="pipeline.session")
    session = await _session()
    release = asyncio.Event()
    release.set()
    with pytest.raises(ValueError, match="unknown call outcome"):
        await session.shielded(_refused_after(release))
    await session.finish()
    gc.collect()
    assert unhandled == [] and _session_errors(caplog) == []


@pytest.mark.parametrize(("caller_id", "proven", "named"), [
    (CallerId.ATTESTED, False, True),
    (CallerId.UNATTESTED, True, True),  # the caller proved the record on the call
    (CallerId.UNATTESTED, False, False),  # anyone can send this caller ID
])
async def test_a_message_names_the_callers_record_only_when_the_call_may_act_on_it(
        clean_db: None, caller_id: CallerId, proven: bool, named: bool) -> None:
    number = "+16465550190"
    customer = await crm.create_customer(number, "Maria", "Lopez")
    record = await crm.customer_record(number)
    await crm.call_logs.open_call_log(SID, "inbound", number, None)
    start = CallStart(call_sid=SID, stream_sid="MZ" + "5e" * 16, account_sid=None, direction="inbound",
                      customer_number=number, shop_number=None)
    access = CallerAccess.of(number, caller_id)
    if proven:
        access.proven.add(number)
    session = CallSession(start, access, record)
    session.begin()
    session.message("Maria", "+12125550123", "brakes squeak")
    await session.finish()
    (message,) = await crm.open_callback_requests()
    assert message["customer_id"] == (customer["customer"]["id"] if named else None)
    assert (message["name"], message["phone"]) == ("Maria", "+12125550123")
