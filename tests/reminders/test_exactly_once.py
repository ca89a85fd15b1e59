"""Exactly once: concurrent runs, crashes and re-runs, retries, answers that went astray, and
pacing, against the fake Twilio REST API over HTTP (every fault injected by the fake)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from reminders import run
from reminders.dialler import CALL_LIST_LIMIT
from tests.fakes.twilio_rest import FakeTwilioRest
from tests.reminders.conftest import telephony_for
from tests.reminders.support import DAY, SHOP, config, eventually, pinned, reminders, rows, seed

RECOVERED = "1 found in Twilio's list of calls after an unclear answer"


def stored_as(expected: list[tuple[str, int]]) -> Callable[[], Awaitable[bool]]:
    """A check that the reminders are in these (state, attempts)."""

    async def check() -> bool:
        return [(r["state"], r["attempts"]) for r in await reminders()] == expected

    return check


async def attempts() -> list[dict[str, Any]]:
    return await rows("SELECT a.*, r.appointment_id FROM reminder_attempts a"
                      " JOIN reminders r ON r.id = a.reminder_id ORDER BY a.id")


async def test_two_concurrent_runs_dial_each_allowlisted_appointment_once(fresh, twilio) -> None:
    made = await seed(200)
    allowed = {m["phone"] for i, m in enumerate(made) if i % 4 != 3}  # 150 of the 200
    assert len(allowed) == 150
    first, second = telephony_for(twilio), telephony_for(twilio)
    try:
        a, b = await asyncio.gather(
            run(config(allowlist=allowed), first, clock=pinned()),
            run(config(allowlist=allowed), second, clock=pinned()),
        )
    finally:
        await first.close()
        await second.close()

    assert len(twilio.creates) == 150
    assert Counter(r.get("To") for r in twilio.creates) == Counter(allowed)
    assert len(a.dialled) + len(b.dialled) == 150
    assert a.dialled and b.dialled, "both runs should have dialled some: they ran side by side"
    assert a.exit_code() == b.exit_code() == 0
    for summary in (a, b):
        assert summary.selected == 200 and not summary.failed and not summary.needs_attention
        assert summary.skipped["not_allowlisted"] == 50
        # What the other run dialled shows up as already reminded or (while it dialled) in progress.
        assert (summary.skipped["already_reminded"] + summary.skipped["in_progress_elsewhere"]
                + len(summary.dialled)) == 150
    states = Counter(r["state"] for r in await reminders())
    assert states == {"dialled": 150, "skipped": 50}
    tried = await attempts()
    assert len(tried) == 150 and {t["result"] for t in tried} == {"placed"}
    assert {t["call_sid"] for t in tried} == {r.response["sid"] for r in twilio.creates}
    logs = await rows("SELECT count(*) AS n FROM call_logs WHERE direction = 'outbound'")
    assert logs[0]["n"] == 150


async def test_a_rerun_after_a_crash_mid_request_never_redials(fresh, twilio, telephony) -> None:
    made = await seed(6)
    everyone = {m["phone"] for m in made}
    twilio.create_then("stall", to=made[2]["phone"])
    crashed = asyncio.create_task(run(config(allowlist=everyone), telephony, clock=pinned()))
    await eventually(lambda: len(twilio.calls_to(made[2]["phone"])) == 1, timeout=10)
    crashed.cancel()  # the process dies while Twilio has just placed call number 3
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    assert [r["state"] for r in await reminders()] == ["dialled", "dialled", "dialling"]

    preview = await run(config(allowlist=everyone), None, dry_run=True, clock=pinned())
    assert [e.verdict for e in preview.entries] == ["already_reminded"] * 2 + ["needs_attention"] + [
        "dialled"] * 3
    assert preview.exit_code() == 1 and len(twilio.creates) == 3

    lines: list[str] = []
    summary = await run(config(allowlist=everyone), telephony, clock=pinned(), report=lines.append)

    assert Counter(r.get("To") for r in twilio.creates) == Counter(everyone)  # each exactly once
    assert [e.due.appointment.id for e in summary.dialled] == [m["id"] for m in made[3:]]
    assert summary.skipped == {"already_reminded": 2}
    (stuck,) = summary.needs_attention
    assert stuck.due.appointment.id == made[2]["id"]
    assert "died while dialling" in stuck.detail
    assert summary.exit_code() == 1
    assert any(line.startswith("NEEDS ATTENTION") for line in lines)
    assert "check Twilio's call log" in summary.render()
    # The crashed attempt stays on record as sent-but-unanswered.
    assert [t["result"] for t in await attempts() if t["appointment_id"] == made[2]["id"]] == ["pending"]

    # And it stays that way, run after run, until a person decides.
    again = await run(config(allowlist=everyone), telephony, clock=pinned())
    assert len(twilio.creates) == 6 and len(again.needs_attention) == 1


async def test_a_claim_left_by_a_crashed_run_is_taken_over(fresh, twilio, telephony) -> None:
    """Crashed between a refused attempt and its retry: nothing is in flight, so the next run
    may dial it (once)."""
    (made,) = await seed(1)
    twilio.fail_next(1, 429)
    crashed = asyncio.create_task(
        run(config(allowlist={made["phone"]}, backoff_seconds=60), telephony, clock=pinned()))
    await eventually(lambda: len(twilio.creates) == 1)
    await eventually(stored_as([("claimed", 1)]))
    crashed.cancel()  # dies during the back-off
    with contextlib.suppress(asyncio.CancelledError):
        await crashed

    summary = await run(config(allowlist={made["phone"]}), telephony, clock=pinned())

    assert len(summary.dialled) == 1 and summary.exit_code() == 0
    assert [r.status for r in twilio.creates] == [429, 201]
    (reminder,) = await reminders()
    assert (reminder["state"], reminder["attempts"]) == ("dialled", 2)
    assert [t["result"] for t in await attempts()] == ["failed", "placed"]
    assert len({t["run_id"] for t in await attempts()}) == 2


async def test_a_live_runs_claim_is_left_alone(fresh, twilio, telephony) -> None:
    """While a run is between a refused attempt and its retry, a second run keeps off."""
    (made,) = await seed(1)
    twilio.fail_next(1, 429)
    first = asyncio.create_task(
        run(config(allowlist={made["phone"]}, backoff_seconds=0.5), telephony, clock=pinned()))
    await eventually(lambda: len(twilio.creates) == 1)
    await eventually(stored_as([("claimed", 1)]))

    second = await run(config(allowlist={made["phone"]}), telephony, clock=pinned())
    done = await first

    assert second.skipped == {"in_progress_elsewhere": 1} and second.exit_code() == 0
    assert len(done.dialled) == 1
    assert [r.status for r in twilio.creates] == [429, 201]


async def test_refused_dials_are_retried_with_backoff_and_recorded(fresh, twilio, telephony) -> None:
    (made,) = await seed(1)
    twilio.fail_next(2, 429)

    summary = await run(config(allowlist={made["phone"]}, backoff_seconds=0.1), telephony, clock=pinned())

    assert summary.exit_code() == 0 and len(summary.dialled) == 1
    assert [r.status for r in twilio.creates] == [429, 429, 201]
    assert twilio.lists == []  # a 429 placed nothing: no need to look
    gaps = [b.at - a.at for a, b in pairwise(twilio.creates)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19  # 0.1 s, then 0.2 s
    tried = await attempts()
    assert [(t["attempt"], t["result"]) for t in tried] == [(1, "failed"), (2, "failed"), (3, "placed")]
    assert "HTTP 429 (error 20429)" in tried[0]["error"]
    assert tried[2]["call_sid"] == twilio.creates[2].response["sid"]
    (reminder,) = await reminders()
    assert (reminder["state"], reminder["attempts"], reminder["call_sid"]) == (
        "dialled", 3, tried[2]["call_sid"])


async def test_a_dial_refused_every_time_fails_after_max_attempts(fresh, twilio, telephony) -> None:
    made = await seed(3)
    everyone = {m["phone"] for m in made}
    twilio.fail_number(made[0]["phone"], status=503, code=20503)  # Twilio down for this one
    twilio.fail_number(made[1]["phone"])  # 400, invalid number: retrying cannot help

    summary = await run(config(allowlist=everyone), telephony, clock=pinned())

    sent = Counter(r.get("To") for r in twilio.creates)
    assert sent == {made[0]["phone"]: 3, made[1]["phone"]: 1, made[2]["phone"]: 1}
    # Each 503 might have placed the call: the list showed none each time, so it was retried.
    assert [r.get("To") for r in twilio.lists] == [made[0]["phone"]] * 3
    assert [e.due.appointment.id for e in summary.failed] == [made[0]["id"], made[1]["id"]]
    assert summary.exit_code() == 1
    assert "2 failed, 0 need a person" in summary.render()
    assert made[1]["phone"] not in summary.render()  # though Twilio's error quotes it
    stored = {r["appointment_id"]: r for r in await reminders()}
    assert (stored[made[0]["id"]]["state"], stored[made[0]["id"]]["attempts"]) == ("failed", 3)
    assert "HTTP 503" in stored[made[0]["id"]]["reason"]
    assert (stored[made[1]["id"]]["state"], stored[made[1]["id"]]["attempts"]) == ("failed", 1)
    assert "HTTP 400 (error 21211)" in stored[made[1]["id"]]["reason"]
    results = [t["result"] for t in await attempts() if t["appointment_id"] == made[0]["id"]]
    assert results == ["failed"] * 3


async def test_a_failed_reminder_is_retried_by_the_next_run(fresh, twilio, telephony) -> None:
    (made,) = await seed(1)
    twilio.fail_next(2, 429)
    first = await run(config(allowlist={made["phone"]}, max_attempts=2), telephony, clock=pinned())
    assert first.exit_code() == 1 and len(first.failed) == 1

    second = await run(config(allowlist={made["phone"]}, max_attempts=2), telephony, clock=pinned())

    assert second.exit_code() == 0 and len(second.dialled) == 1
    assert [r.status for r in twilio.creates] == [429, 429, 201]
    assert [t["attempt"] for t in await attempts()] == [1, 2, 3]


async def test_no_connection_to_twilio_is_a_refusal_and_retried(fresh, twilio) -> None:
    (made,) = await seed(1)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    unreachable = telephony_for(twilio, base_url=closed)
    try:
        summary = await run(config(allowlist={made["phone"]}), unreachable, clock=pinned())
    finally:
        await unreachable.close()

    assert summary.exit_code() == 1 and len(summary.failed) == 1
    tried = await attempts()
    assert [t["result"] for t in tried] == ["failed"] * 3
    assert tried[0]["error"].startswith("cannot connect to Twilio")


@pytest.mark.parametrize(("fault", "doubt"), [
    ("error", "Twilio answered HTTP 500 (error 20500)"),
    ("stall", "no answer from Twilio in time"),
    ("drop", "ServerDisconnectedError"),
])
async def test_a_call_created_whatever_the_answer_counts_as_dialled_once(
    fresh, twilio, telephony, fault, doubt
) -> None:
    """Twilio created the call, then answered 500, nothing in time, or closed the connection: the
    list of calls shows it, so the reminder is dialled with its SID and nobody rings again."""
    (made,) = await seed(1)
    twilio.create_then(fault)
    lines: list[str] = []

    summary = await run(config(allowlist={made["phone"]}, request_timeout=0.3), telephony, clock=pinned(),
                        report=lines.append)

    (sid,) = twilio.calls_to(made["phone"])  # one call rang the customer
    assert len(twilio.creates) == 1
    (listed,) = twilio.lists
    assert listed.form == {"To": [made["phone"]], "From": [SHOP], "PageSize": [str(CALL_LIST_LIMIT)]}
    (reminder,) = await reminders()
    assert (reminder["state"], reminder["call_sid"], reminder["attempts"]) == ("dialled", sid, 1)
    (tried,) = await attempts()
    assert (tried["result"], tried["call_sid"]) == ("placed", sid) and doubt in tried["error"]
    (log,) = await rows("SELECT to_number FROM call_logs WHERE call_sid = %s", (sid,))
    assert log["to_number"] == made["phone"]
    (line,) = lines
    assert line.startswith("dialled") and f"{sid}, found in Twilio's list of calls after: {doubt}" in line
    assert summary.exit_code() == 0
    assert f"  dialled              1   {RECOVERED}" in summary.render()

    again = await run(config(allowlist={made["phone"]}), telephony, clock=pinned())
    assert twilio.calls_to(made["phone"]) == [sid] and len(twilio.creates) == 1
    assert again.skipped == {"already_reminded": 1} and again.exit_code() == 0


async def test_a_500_without_a_call_is_checked_then_retried_once(fresh, twilio, telephony) -> None:
    (made,) = await seed(1)
    twilio.fail_next(1, 500)

    summary = await run(config(allowlist={made["phone"]}), telephony, clock=pinned())

    assert [r.status for r in twilio.creates] == [500, 201]
    assert len(twilio.lists) == 1  # looked before the retry
    assert twilio.lists[0].at < twilio.creates[1].at
    (sid,) = twilio.calls_to(made["phone"])
    assert sid == twilio.creates[1].response["sid"]
    tried = await attempts()
    assert [t["result"] for t in tried] == ["failed", "placed"]
    assert tried[0]["error"].startswith("Twilio answered HTTP 500 (error 20500)")
    assert tried[0]["error"].endswith("; no such call in Twilio's list of calls")
    assert summary.exit_code() == 0 and len(summary.dialled) == 1 and not summary.recovered

    again = await run(config(allowlist={made["phone"]}), telephony, clock=pinned())
    assert len(twilio.creates) == 2 and again.skipped == {"already_reminded": 1}


async def test_when_the_list_of_calls_cannot_be_read_a_person_decides(fresh, twilio, telephony) -> None:
    (made,) = await seed(1)
    twilio.create_then("error")
    twilio.fail_next(1, 503, endpoint="list")
    lines: list[str] = []

    summary = await run(config(allowlist={made["phone"]}), telephony, clock=pinned(), report=lines.append)

    assert len(twilio.creates) == 1 and len(twilio.lists) == 1  # and no blind retry
    (stuck,) = summary.needs_attention
    assert stuck.detail.startswith("Twilio answered HTTP 500 (error 20500)")
    assert stuck.detail.endswith("; Twilio's list of calls could not tell: Twilio answered HTTP 503")
    assert summary.exit_code() == 1
    assert lines[0].startswith("NEEDS ATTENTION") and "0 failed, 1 need a person" in summary.render()
    assert [(r["state"], r["call_sid"]) for r in await reminders()] == [("dialling", None)]
    assert [t["result"] for t in await attempts()] == ["unknown"]

    again = await run(config(allowlist={made["phone"]}), telephony, clock=pinned())
    assert len(twilio.creates) == 1 and len(twilio.calls_to(made["phone"])) == 1
    (still,) = again.needs_attention
    assert still.detail.startswith(f"run {summary.run_id} could not tell whether Twilio placed the call: ")
    assert again.exit_code() == 1


async def test_a_call_dated_by_a_clock_behind_ours_is_still_found(fresh, twilio, telephony) -> None:
    (made,) = await seed(1)
    twilio.clock_offset = -60.0
    twilio.create_then("error")

    summary = await run(config(allowlist={made["phone"]}), telephony, clock=pinned())

    (sid,) = twilio.calls_to(made["phone"])
    assert [e.detail.split(",")[0] for e in summary.recovered] == [sid]
    assert len(twilio.creates) == 1


async def test_older_calls_and_other_reminders_calls_are_not_taken_for_this_one(
    fresh, twilio, telephony
) -> None:
    (today,) = await seed(1)
    phone = today["phone"]
    (tomorrow,) = await seed(1, day=DAY + timedelta(days=1), first=1, phones=[phone])  # same customer
    twilio.clock_offset = -3600.0
    older = twilio.register_call(from_=SHOP, to=phone, status="completed", direction="outbound-api")
    twilio.clock_offset = 0.0
    await run(config(allowlist={phone}), telephony, clock=pinned())
    (earlier,) = [sid for sid in twilio.calls_to(phone) if sid != older]  # the first day's reminder
    twilio.fail_next(1, 500)

    summary = await run(config(allowlist={phone}), telephony, day=tomorrow["scheduled_at"].date(),
                        clock=pinned())

    assert [r.status for r in twilio.creates] == [201, 500, 201]  # the list showed nothing new: retried
    latest = twilio.creates[2].response["sid"]
    assert [e.detail for e in summary.dialled] == [latest] and not summary.recovered
    assert {r["appointment_id"]: r["call_sid"] for r in await reminders()} == {
        today["id"]: earlier, tomorrow["id"]: latest}


async def test_a_list_too_long_to_rule_the_call_out_leaves_it_for_a_person(fresh, twilio, telephony) -> None:
    (made,) = await seed(1)
    twilio.clock_offset = -86400.0
    for _ in range(CALL_LIST_LIMIT):
        twilio.register_call(from_=SHOP, to=made["phone"], status="completed", direction="outbound-api")
    twilio.clock_offset = 0.0
    twilio.fail_next(1, 500)

    summary = await run(config(allowlist={made["phone"]}), telephony, clock=pinned())

    assert len(twilio.creates) == 1
    (stuck,) = summary.needs_attention
    assert "more calls to this number than one page holds" in stuck.detail
    assert summary.exit_code() == 1


async def test_calls_are_paced_across_concurrent_runs(fresh, twilio: FakeTwilioRest) -> None:
    made = await seed(8)
    everyone = {m["phone"] for m in made}
    first, second = telephony_for(twilio), telephony_for(twilio)
    try:
        await asyncio.gather(
            run(config(allowlist=everyone, calls_per_second=10), first, clock=pinned()),
            run(config(allowlist=everyone, calls_per_second=10), second, clock=pinned()),
        )
    finally:
        await first.close()
        await second.close()

    stamps = sorted(r.at for r in twilio.creates)
    assert len(stamps) == 8
    gaps = [b - a for a, b in pairwise(stamps)]
    assert min(gaps) >= 0.08, gaps  # 0.1 s apart, loosely: two runs together, one pace
    assert stamps[-1] - stamps[0] >= 0.6

