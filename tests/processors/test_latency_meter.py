"""LatencyMeter: one figure per answered caller turn, from the end of speech to the reply."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
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
START_SECS = 0.064  # the VAD's start_secs: the caller had been talking that long already
STT, LLM = "DeepgramSTTService#0", "OpenAILLMService#0"


def meter() -> tuple[LatencyMeter, list[dict[str, Any]]]:
    figures: list[dict[str, Any]] = []

    async def on_figures(turn: dict[str, Any]) -> None:
        figures.append(turn)

    return LatencyMeter(on_figures, stt=STT, llm=LLM), figures


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


async def test_stages_follow_each_other_from_the_end_of_speech() -> None:
    processor, figures = meter()
    await run_test(processor, frames_to_send=[
        *caller_says(), SleepFrame(0.1), ttfb(LLM, 0.08), SleepFrame(0.05), BotStartedSpeakingFrame()])
    stages = figures[0]["stages_ms"]
    assert list(stages) == ["turn_end", "stt_final", "first_token", "first_audio"]
    # The turn ended 50 ms after the VAD's stop, itself STOP_SECS after the speech.
    assert STOP_SECS * 1000 + 40 <= stages["turn_end"] < stages["first_token"] < stages["first_audio"]
    assert stages["first_token"] - stages["turn_end"] >= 90  # the model answered 100 ms later
    assert stages["stt_final"] == 150.0  # Pipecat's own figure, from the end of speech
    assert stages["first_audio"] == figures[0]["latency_ms"]


async def test_a_stage_not_seen_is_left_out() -> None:
    processor, figures = meter()
    await run_test(processor, frames_to_send=[
        UserStartedSpeakingFrame(), UserStoppedSpeakingFrame(), SleepFrame(0.05), BotStartedSpeakingFrame()])
    assert figures[0]["stages_ms"] == {"turn_end": 0.0, "first_audio": figures[0]["latency_ms"]}


def barge_in(*, vad_first: bool, heard_at: float | None = None) -> list[Frame]:
    """The caller talking over the agent: the turn starts, the agent is interrupted, and the
    VAD's frame (its onset START_SECS before `heard_at`) comes before or after the interruption."""
    vad = VADUserStartedSpeakingFrame(start_secs=START_SECS, **({"timestamp": heard_at} if heard_at else {}))
    turn = [UserStartedSpeakingFrame(), InterruptionFrame()]
    return [
        BotStartedSpeakingFrame(),  # the greeting
        SleepFrame(0.05),
        *([vad, *turn] if vad_first else [*turn, vad]),
        BotStoppedSpeakingFrame(),  # the transport stops the agent's audio
        SleepFrame(0.05),
        VADUserStoppedSpeakingFrame(stop_secs=STOP_SECS),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.05),
        BotStartedSpeakingFrame(),  # the reply
    ]


@pytest.mark.parametrize("vad_first", [True, False])
async def test_a_turn_that_cut_the_agent_off_has_its_barge_in(vad_first: bool) -> None:
    processor, figures = meter()
    await run_test(processor, frames_to_send=barge_in(vad_first=vad_first))
    assert [f["turn"] for f in figures] == [1]
    # From the onset (START_SECS before the VAD's frame) to the interruption, 50 ms or more later.
    assert START_SECS * 1000 + 40 <= figures[0]["barge_in_ms"] < 1000


async def test_speech_while_the_agent_is_quiet_is_no_barge_in() -> None:
    processor, figures = meter()
    await run_test(processor, frames_to_send=[
        BotStartedSpeakingFrame(), BotStoppedSpeakingFrame(), *caller_says(), BotStartedSpeakingFrame()])
    assert [f["turn"] for f in figures] == [1]
    assert "barge_in_ms" not in figures[0]


async def test_speech_heard_after_the_interruption_did_not_cause_it() -> None:
    processor, figures = meter()
    await run_test(processor, frames_to_send=barge_in(vad_first=False, heard_at=time.time() + 5))
    assert [f["turn"] for f in figures] == [1]
    assert "barge_in_ms" not in figures[0]


async def test_speech_over_the_agent_judged_before_it_cuts_in_is_a_barge_in_from_its_onset() -> None:
    # The agent's voice is paused at once, and the turn starts once the words are in.
    processor, figures = meter()
    await run_test(processor, frames_to_send=[
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(start_secs=START_SECS),
        BotStoppedSpeakingFrame(),  # paused
        SleepFrame(0.1),
        VADUserStoppedSpeakingFrame(stop_secs=STOP_SECS),
        UserStartedSpeakingFrame(), InterruptionFrame(),  # more than "mm-hmm": the turn starts
        UserStoppedSpeakingFrame(),
        SleepFrame(0.05),
        BotStartedSpeakingFrame(),
    ])
    assert [f["turn"] for f in figures] == [1]
    assert START_SECS * 1000 + 90 <= figures[0]["barge_in_ms"] < 1000


async def test_a_backchannel_then_an_interruption_of_no_caller_turn_is_no_barge_in() -> None:
    processor, figures = meter()
    await run_test(processor, frames_to_send=[
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(start_secs=START_SECS),  # "mm-hmm": the agent goes on
        VADUserStoppedSpeakingFrame(stop_secs=STOP_SECS),
        InterruptionFrame(),  # the agent's own (words said again), not the caller's turn
        BotStoppedSpeakingFrame(),
        *caller_says(),
        BotStartedSpeakingFrame(),
    ])
    assert [f["turn"] for f in figures] == [1]
    assert "barge_in_ms" not in figures[0]
