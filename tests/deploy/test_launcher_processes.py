"""LAUNCHER_PROCESSES=2: one `python -m bot`, two processes taking calls on one port, and one
`/metrics` that counts the calls of both whichever process answers the scrape."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

import crm
from tests.bot.conftest import Launcher
from tests.bot.processes import COMMANDS, Running, launcher_process
from tests.reminders.support import eventually

SCRAPES = 8  # each on its own connection, so both processes answer some of them


async def _scraped(running: Running, name: str, **labels: str) -> list[float]:
    """One metric's value in each of SCRAPES scrapes."""
    values = []
    for _ in range(SCRAPES):
        async with httpx.AsyncClient(base_url=running.launcher.base_url) as client:
            answer = await client.get("/metrics")
        values.append(next(sample.value for family in text_string_to_metric_families(answer.text)
                           for sample in family.samples if sample.name == name and sample.labels == labels))
    return values


def _workers(running: Running) -> list[psutil.Process]:
    return [child for child in psutil.Process(running.process.pid).children()
            if "spawn_main" in " ".join(child.cmdline())]


def _lines(running: Running, text: str) -> int:
    return sum(text in line for line in running.output.read_text().splitlines())


async def test_two_processes_share_the_port_and_their_metrics(
        launcher: Launcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCHER_PROCESSES", "2")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    launcher.deepgram.add_script()
    async with launcher_process(launcher, tmp_path, COMMANDS["python -m bot"], drain_seconds=1) as running:
        assert len(_workers(running)) == 2
        callers = [await running.launcher.ring(f"+1646555019{n}") for n in range(2)]
        async with contextlib.AsyncExitStack() as stack:
            for caller in callers:
                await stack.enter_async_context(caller)
            await asyncio.gather(*(caller.wait_for_event("media", timeout=20) for caller in callers))
            assert await _scraped(running, "service_desk_calls_active") == [2.0] * SCRAPES
            for caller in callers:
                await caller.hang_up()

        async def both_counted() -> bool:
            hung_up = await _scraped(running, "service_desk_calls_total", outcome="caller_hung_up")
            return hung_up == [2.0] * SCRAPES

        await eventually(both_counted, timeout=15)
        assert await _scraped(running, "service_desk_calls_active") == [0.0] * SCRAPES
        running.process.send_signal(signal.SIGTERM)  # the supervisor stops both
        await running.stopped()
    assert _lines(running, "Application startup complete") == 2
    for caller in callers:
        log = await crm.get_call_log(caller.call_sid)
        assert log is not None and log["outcome"] == "caller_hung_up" and log["ended_at"] is not None
