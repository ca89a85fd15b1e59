"""Purging old call-log transcripts: `crm.purge_transcripts` and `python -m crm purge`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import crm
from crm import db


async def _call(call_sid: str, days_ago: float) -> None:
    """A finished call with a transcript and timings, started `days_ago` days ago."""
    await crm.open_call_log(call_sid, "inbound", "+12125550123", "+13125550100")
    await crm.append_turn(call_sid, "agent", "Hi Maria, calling about the Civic?")
    await crm.append_turn(call_sid, "caller", "Yes, I need an oil change")
    await crm.append_metrics(call_sid, {"turn": 1, "latency_ms": 640})
    await crm.close_call_log(call_sid, "booked")
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE call_logs SET started_at = now() - make_interval(days => %s),"
            " ended_at = now() - make_interval(days => %s) + interval '3 minutes' WHERE call_sid = %s",
            (days_ago, days_ago, call_sid))


async def _log(call_sid: str) -> dict[str, Any]:
    log = await crm.get_call_log(call_sid)
    assert log is not None
    return log


async def test_transcripts_past_the_limit_go_and_the_rows_stay(clean_db) -> None:
    await _call("CA-old", days_ago=91)
    await _call("CA-recent", days_ago=89)
    before = await _log("CA-old")

    assert await crm.purge_transcripts() == 1  # CALL_LOG_RETENTION_DAYS: 90 by default

    old = await _log("CA-old")
    assert old["transcript"] == []
    kept = ("direction", "from_number", "to_number", "started_at", "ended_at", "outcome", "metrics")
    assert {k: old[k] for k in kept} == {k: before[k] for k in kept}
    assert [t["text"] for t in (await _log("CA-recent"))["transcript"]] == [
        "Hi Maria, calling about the Civic?", "Yes, I need an oil change"]


async def test_a_second_run_purges_nothing(clean_db) -> None:
    await _call("CA-old", days_ago=200)
    assert await crm.purge_transcripts() == 1
    assert await crm.purge_transcripts() == 0


async def test_runs_at_the_same_time_purge_each_transcript_once(clean_db) -> None:
    for n in range(30):
        await _call(f"CA-{n}", days_ago=100 + n)

    counts = await asyncio.gather(*(crm.purge_transcripts() for _ in range(3)))

    assert sum(counts) == 30
    async with db.connection() as conn:
        left = await (await conn.execute(
            "SELECT count(*) AS n FROM call_logs WHERE transcript <> '[]'::jsonb")).fetchone()
    assert left["n"] == 0


async def test_the_limit_can_be_given(clean_db) -> None:
    await _call("CA-week", days_ago=8)
    assert await crm.purge_transcripts(older_than_days=30) == 0
    assert await crm.purge_transcripts(older_than_days=7) == 1


async def crm_cli(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crm", *args, env={**os.environ, **env}, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_the_command_purges_and_says_how_many(clean_db, tmp_path) -> None:
    await _call("CA-old", days_ago=40)
    await _call("CA-older", days_ago=50)
    await _call("CA-recent", days_ago=10)

    code, out, err = await crm_cli(tmp_path, "purge", CALL_LOG_RETENTION_DAYS="30")

    assert (code, out, err) == (0, "purged the transcripts of 2 call logs older than 30 days\n", "")
    assert (await _log("CA-older"))["transcript"] == []
    assert len((await _log("CA-recent"))["transcript"]) == 2
    code, out, _ = await crm_cli(tmp_path, "purge", CALL_LOG_RETENTION_DAYS="30")
    assert (code, out) == (0, "purged the transcripts of 0 call logs older than 30 days\n")


async def test_the_command_has_help(tmp_path) -> None:
    code, out, _ = await crm_cli(tmp_path, "purge", "--help")
    assert code == 0
    assert "usage: python -m crm purge" in out and "CALL_LOG_RETENTION_DAYS" in out
    code, out, _ = await crm_cli(tmp_path, "--help")
    assert code == 0 and "purge" in out


async def test_a_bad_retention_setting_names_it_and_exits_2(clean_db, tmp_path) -> None:
    await _call("CA-old", days_ago=400)

    code, out, err = await crm_cli(tmp_path, "purge", CALL_LOG_RETENTION_DAYS="0")

    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "CALL_LOG_RETENTION_DAYS" in lines[0], err
    assert len((await _log("CA-old"))["transcript"]) == 2
