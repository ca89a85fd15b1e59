"""LatencyMeter: one figure per answered caller turn, from the end of speech to the reply."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    InterruptionFrame,
    MetricsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import ProcessingMetricsData, TTFBMetricsData
from pipecat.tests.utils import SleepFrame, run_test

from processors.latency_meter import LatencyMeter

STOP_SECS = 0.2  # the VAD's stop_secs: the caller had been quiet that long already


def meter() -> tuple[LatencyMeter, list[dict[str, Any]]]:
    figures: list[dict[str, Any]] = []

    async def on_figures(turn: dict[str, Any]) -> None:
        figures.append(turn)

    return LatencyMeter(on_figures), figures


def ttfb(processor: str, secs: float) -> MetricsFrame:
    return MetricsFrame([TTFBMetricsData(processor=processor, value=secs)])


def passed_on(frames: list[Frame]) -> list[type[Frame]]:
    """The types of `frames` as they must come out: all of them, unchanged and in order."""
    return [type(frame) for frame in frames if not isinstance(frame, SleepFrame)]


def caller_says() -> list[Frame]:
    """A caller turn as the user aggregator reports it: speech, VAD stop, then turn end."""
    return [
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
        VADUserStartedSpeakingFrame(),
        SleepFrame(0.05),
        VADUserStoppedSpeakingFrame(stop_secs=STOP_SECS),
        ttfb("DeepgramSTTService#0", 0.15),
        SleepFrame(0.05),
        UserStoppedSpeakingFrame(),
    ]


async def test_reports_latency_and_ttfb_per_answered_turn() -> None:
    processor, figures = meter()
    frames = [
        ttfb("OpenAILLMService#0", 0.0),  # the worker's initial, empty figures
        BotStartedSpeakingFrame(),  # the greeting answers no caller turn
        *caller_says(),
        ttfb("OpenAILLMService#0", 0.412),
        MetricsFrame([ProcessingMetricsData(processor="OpenAILLMService#0", value=0.9)]),
        ttfb("OpenAILLMService#0", 0.5),  # second inference after a tool call
        ttfb("DeepgramTTSService#0", 0.12),
        SleepFrame(0.05),
        BotStartedSpeakingFrame(),
        *caller_says(),
        ttfb("OpenAILLMService#0", 0.3),
        SleepFrame(0.05),
        BotStartedSpeakingFrame(),
    ]
    await run_test(processor, frames_to_send=frames, expected_down_frames=passed_on(frames))
    assert [f["turn"] for f in figures] == [1, 2]
    assert figures[0]["ttfb_ms"] == {
        "DeepgramSTTService#0": 150.0,
        "OpenAILLMService#0": 412.0,
        "DeepgramTTSService#0": 120.0,
    }
    assert figures[1]["ttfb_ms"] == {"DeepgramSTTService#0": 150.0, "OpenAILLMService#0": 300.0}
    # Counted from when the caller went quiet, so the VAD's stop_secs are part of it.
    assert all(f["latency_ms"] > STOP_SECS * 1000 for f in figures)


async def test_a_turn_the_agent_never_answers_emits_nothing() -> None:
    processor, figures = meter()
    await run_test(processor, frames_to_send=[*caller_says(), ttfb("OpenAILLMService#0", 0.4)])
    assert figures == []


async def test_the_agent_talking_before_the_turn_ends_is_no_answer() -> None:
    processor, figures = meter()
    caller = caller_says()
    await run_test(
        processor,
        frames_to_send=[*caller[:-1], BotStartedSpeakingFrame(), caller[-1], SleepFrame(0.05),
                        BotStartedSpeakingFrame()],
    )
    assert [f["turn"] for f in figures] == [1]


async def test_speech_after_the_turn_ended_starts_the_wait_over() -> None:
    processor, figures = meter()
    await run_test(
        processor,
        frames_to_send=[*caller_says(), *caller_says(), SleepFrame(0.05),
                        BotStartedSpeakingFrame()],
    )
    assert [f["turn"] for f in figures] == [2]


async def test_a_turn_without_vad_counts_from_its_end() -> None:
    processor, figures = meter()
    await run_test(
        processor,
        frames_to_send=[UserStartedSpeakingFrame(), UserStoppedSpeakingFrame(),
                        SleepFrame(0.05), BotStartedSpeakingFrame()],
    )
    assert [f["turn"] for f in figures] == [1]
    assert figures[0]["latency_ms"] > 0
    assert figures[0]["ttfb_ms"] == {}


async def test_a_failing_on_figures_is_logged_and_the_frames_flow_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def on_figures(turn: dict[str, Any]) -> None:
        raise RuntimeError("queue full")

    with caplog.at_level(logging.ERROR, logger="processors.latency_meter"):
        down, _ = await run_test(
            LatencyMeter(on_figures),
            frames_to_send=[*caller_says(), BotStartedSpeakingFrame()],
        )
    assert isinstance(down[-1], BotStartedSpeakingFrame)
    assert "on_figures failed for turn 1" in caplog.text
