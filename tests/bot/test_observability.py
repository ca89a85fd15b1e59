"""Every call visible: after a real call over the wire (the caller talks over the greeting, the agent
answers, the caller hangs up), `GET /metrics` counts it and `python -m bot calls` shows it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.phones import masked
from tests.audio import TEXTS, load
from tests.bot.conftest import Launcher
from tests.bot.test_calls import closed_log
from tests.fakes.openai import Fail, Reply

CALLER = "+16465550187"
REPO = Path(__file__).resolve().parents[2]


async def _samples(launcher: Launcher) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def _bot(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ...` as an operator runs it, on the suite's database."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


async def _barge_in_call(launcher: Launcher) -> str:
    launcher.deepgram.tts_chunk_delay = 0.04  # the greeting keeps streaming, like a real voice
    launcher.deepgram.add_script(TEXTS["actually_wait"])
    launcher.policy.add(Reply("Of course, go ahead."))
    caller = await launcher.ring(CALLER)
    async with caller:
        await caller.wait_for_event("media", timeout=5)
        await caller.silence(0.5)
        before = caller.position()
        await caller.say(load("actually_wait"))  # over the greeting
        await caller.wait_for_event("clear", timeout=5, after=before)
        await caller.silence(1.0)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()
    return caller.call_sid


async def test_a_call_shows_in_metrics_and_in_the_calls_commands(launcher: Launcher) -> None:
    before = await _samples(launcher)
    call_sid = await _barge_in_call(launcher)
    log = await closed_log(call_sid)
    assert log["outcome"] == "caller_hung_up"

    # The call's one answered turn: it cut the agent off, and its wait has every stage in order.
    [turn] = [figures for figures in log["metrics"] if "latency_ms" in figures]
    stages = turn["stages_ms"]
    assert {"turn_end", "first_token", "first_audio"} <= set(stages)
    assert 0 < stages["turn_end"] < stages["first_token"] < stages["first_audio"] == turn["latency_ms"]
    assert 0 < turn["barge_in_ms"] < 1000

    async with asyncio.timeout(5):  # the gauge drops once the call's task has finished
        # Polling the route is the point: what a scraper sees.
        while (after := await _samples(launcher))[("service_desk_calls_active", ())] != 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after[(name, labels)] - before[(name, labels)]

    assert grew("service_desk_calls_total", (("outcome", "caller_hung_up"),)) == 1
    assert grew("service_desk_calls_total", (("outcome", "booked"),)) == 0
    assert grew("service_desk_reply_latency_seconds_count") == 1
    assert grew("service_desk_reply_latency_seconds_sum") == pytest.approx(turn["latency_ms"] / 1000)
    assert grew("service_desk_barge_in_seconds_count") == 1
    assert all(grew("service_desk_service_errors_total", (("kind", kind),)) == 0
               for kind in ("stt", "llm", "tts", "tool"))
    assert CALLER not in str(after)

    listing = await asyncio.to_thread(_bot, "calls")
    assert listing.returncode == 0, listing.stderr
    [line] = [line for line in listing.stdout.splitlines() if call_sid in line]
    assert masked(CALLER) in line and CALLER not in listing.stdout
    assert line.split()[-5:] == ["inbound", "caller_hung_up", "1", f"{turn['latency_ms'] / 1000:.2f}", "s"]

    shown = await asyncio.to_thread(_bot, "calls", "show", call_sid)
    assert shown.returncode == 0, shown.stderr
    assert CALLER not in shown.stdout and masked(CALLER) in shown.stdout
    assert f"caller  {TEXTS['actually_wait']}" in shown.stdout
    table = shown.stdout.split("turns, in ms")[1]
    assert f"{stages['first_audio']:.0f}" in table and f"{turn['barge_in_ms']:.0f}" in table
    assert "waterfall" in shown.stdout and "|#" in shown.stdout  # the stages from the end of speech

    unknown = await asyncio.to_thread(_bot, "calls", "show", "CA0000")
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == "no call with SID 'CA0000' in the call log\n"


async def test_a_model_failing_counts_as_a_model_error(launcher: Launcher) -> None:
    before = await _samples(launcher)
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Fail(500), Fail(503))  # the attempt and its one retry: the apology
    caller = await launcher.ring("+16465550188")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.say(load("book_oil_change"))
        await caller.silence(1.0)
        await launcher.deepgram.wait_for_spoken(2, timeout=10)
        await caller.hang_up()
    await closed_log(caller.call_sid)
    after = await _samples(launcher)
    errors = {kind: after[("service_desk_service_errors_total", (("kind", kind),))]
              - before[("service_desk_service_errors_total", (("kind", kind),))]
              for kind in ("stt", "llm", "tts", "tool")}
    assert errors == {"stt": 0, "llm": 1, "tts": 0, "tool": 0}
