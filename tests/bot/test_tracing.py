"""OTEL_TRACING=on: a real call's spans reach an OTLP/HTTP collector, with its timings and none
of the words said (nor the customer's record, which the model's instructions hold).

The launcher runs as its own process, as `python -m bot` is started: the tracer provider is
global to a process, so one set up in the test process would trace every later test's requests.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import crm
from tests.audio import TEXTS, load
from tests.bot.conftest import Launcher
from tests.bot.processes import COMMANDS, launcher_process
from tests.bot.test_calls import closed_log
from tests.fakes.openai import Reply
from tests.fakes.otlp_collector import FakeCollector

MARIA = "+12125550123"
REPLY = "Sure, an oil change it is."


async def test_a_traced_call_exports_its_spans_without_its_words(
        launcher: Launcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await crm.create_customer(MARIA, "Maria", "Lopez")
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Reply(REPLY))
    async with FakeCollector() as collector:
        # For the launcher process only (the fixture's own app was made without them).
        monkeypatch.setenv("OTEL_TRACING", "on")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.base_url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: export soon after a span ends
        command = COMMANDS["python -m bot"]
        async with launcher_process(launcher, tmp_path, command, drain_seconds=1) as running:
            caller = await running.launcher.ring(MARIA)
            async with caller:
                await caller.wait_for_bot_silence(timeout=15)
                await caller.say(load("book_oil_change"))
                await caller.silence(1.0)
                await caller.wait_for_bot_silence(timeout=15)
                await caller.hang_up()
            await closed_log(caller.call_sid)

            def conversation() -> list[str]:
                return [span.trace_id for span in collector.named("conversation")
                        if span.attribute("conversation.id") == caller.call_sid]

            await collector.wait_until(conversation, timeout=10)
            running.process.send_signal(signal.SIGTERM)
            await running.stopped()

    [trace_id] = conversation()
    spans = [span for span in collector.spans if span.trace_id == trace_id]
    names = {span.name for span in spans}
    assert {"conversation", "turn", "stt", "llm", "tts"} <= names, names
    assert spans[0].resource["service.name"] == {"stringValue": "service-desk-agent"}
    assert any(span.attribute("metrics.ttfb") is not None for span in spans)  # timings kept
    # Nothing anyone said, nor the record the model was told, in any span of the process.
    exported = str([span.attributes for span in collector.spans])
    for private in (TEXTS["book_oil_change"], REPLY, "Maria", "Lopez", MARIA, MARIA[2:]):
        assert private not in exported
