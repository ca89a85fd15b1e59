"""SilenceWatcher: re-prompts after silence, then goodbye and the end of the call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    EndWorkerFrame,
    Frame,
    FunctionCallFromLLM,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import SleepFrame, run_test

from processors.silence_watcher import SilenceWatcher
from tests.processors.support import PlayOut, Reflect, Upstream, settle, with_upstream

TIMEOUT = 0.1
REPROMPTS = ["Are you still there?", "Can you hear me?"]
GOODBYE = "I'll let you go. Goodbye."


def watcher(reprompts: list[str] = REPROMPTS) -> tuple[SilenceWatcher, list[str]]:
    gave_up: list[str] = []

    async def on_give_up() -> None:
        gave_up.append("no_input")

    return SilenceWatcher(TIMEOUT, reprompts, GOODBYE, on_give_up), gave_up


def agent_spoke() -> list[Frame]:
    """The output transport's broadcast around an utterance, as it reaches the watcher."""
    return [Upstream(BotStartedSpeakingFrame()), settle(), Upstream(BotStoppedSpeakingFrame())]


def caller_spoke() -> list[Frame]:
    """The user aggregator's frames around a caller turn, as they reach the watcher."""
    return [UserStartedSpeakingFrame(), settle(), UserStoppedSpeakingFrame(), settle()]


def silence() -> SleepFrame:
    return SleepFrame(TIMEOUT * 3)


def spoken(down: Sequence[Frame]) -> list[str]:
    return [frame.text for frame in down if isinstance(frame, TTSSpeakFrame)]


async def test_reprompts_then_says_goodbye_and_ends_the_call() -> None:
    processor, gave_up = watcher()
    down, up = await run_test(
        with_upstream(processor),
        frames_to_send=[
            *agent_spoke(), silence(),  # first re-prompt
            *agent_spoke(), silence(),  # second re-prompt
            *agent_spoke(), silence(),  # goodbye
        ],
        # No EndFrame sent: the worker makes one of the EndWorkerFrame, after the goodbye.
        send_end_frame=False,
        expected_down_frames=[TTSSpeakFrame, TTSSpeakFrame, TTSSpeakFrame, EndWorkerFrame, EndFrame],
    )
    assert spoken(down) == [*REPROMPTS, GOODBYE]
    assert isinstance(up[-1], EndWorkerFrame)  # sent back up from the end of the pipeline
    assert gave_up == ["no_input"]


async def test_a_caller_who_answers_is_not_reprompted() -> None:
    processor, gave_up = watcher()
    await run_test(
        with_upstream(processor),
        frames_to_send=[*agent_spoke(), settle(), UserStartedSpeakingFrame(), silence()],
        expected_down_frames=[UserStartedSpeakingFrame],
    )
    assert gave_up == []


async def test_a_barge_in_is_not_silence_until_the_caller_stops() -> None:
    processor, _ = watcher()
    down, _ = await run_test(
        with_upstream(processor),
        frames_to_send=[
            Upstream(BotStartedSpeakingFrame()), settle(),
            UserStartedSpeakingFrame(), settle(),
            Upstream(BotStoppedSpeakingFrame()), silence(),  # interrupted; the caller talks on
            UserStoppedSpeakingFrame(), silence(),  # an empty turn: nothing to answer
        ],
        expected_down_frames=[UserStartedSpeakingFrame, UserStoppedSpeakingFrame, TTSSpeakFrame],
    )
    assert spoken(down) == [REPROMPTS[0]]


async def test_a_caller_turn_while_the_agent_talks_on_is_not_silence() -> None:
    processor, _ = watcher()
    await run_test(
        with_upstream(processor),
        frames_to_send=[
            Upstream(BotStartedSpeakingFrame()), settle(),
            *caller_spoke(), silence(),  # e.g. too short to interrupt the agent
        ],
        expected_down_frames=[UserStartedSpeakingFrame, UserStoppedSpeakingFrame],
    )


async def test_the_agent_speaking_again_is_not_silence() -> None:
    processor, _ = watcher()
    await run_test(
        with_upstream(processor),
        frames_to_send=[
            Upstream(BotStoppedSpeakingFrame()), settle(), Upstream(BotStartedSpeakingFrame()),
            silence(),
        ],
        expected_down_frames=[],
    )


async def test_caller_speech_resets_the_count() -> None:
    processor, gave_up = watcher()
    down, _ = await run_test(
        with_upstream(processor),
        frames_to_send=[
            *agent_spoke(), silence(),  # first re-prompt
            *agent_spoke(), settle(), *caller_spoke(),
            *agent_spoke(), silence(),  # the agent answered; silence again: first re-prompt
        ],
    )
    assert spoken(down) == [REPROMPTS[0], REPROMPTS[0]]
    assert gave_up == []


async def test_no_reprompt_while_a_function_call_runs() -> None:
    processor, _ = watcher()
    call = FunctionCallFromLLM("check_availability", "call_1", {}, None)
    result = FunctionCallResultFrame("check_availability", "call_1", {}, {"slots": []})
    down, _ = await run_test(
        with_upstream(processor),
        frames_to_send=[
            FunctionCallsStartedFrame([call]), settle(),
            *agent_spoke(), silence(),  # a filler played while the tool ran
            result, settle(),
            *agent_spoke(), silence(),  # the answer; now silence counts
        ],
        expected_down_frames=[FunctionCallsStartedFrame, FunctionCallResultFrame, TTSSpeakFrame],
    )
    assert spoken(down) == [REPROMPTS[0]]


async def test_gives_up_even_if_on_give_up_fails(caplog: pytest.LogCaptureFixture) -> None:
    async def on_give_up() -> None:
        raise RuntimeError("database down")

    with caplog.at_level(logging.ERROR, logger="processors.silence_watcher"):
        down, _ = await run_test(
            with_upstream(SilenceWatcher(TIMEOUT, [], GOODBYE, on_give_up)),
            frames_to_send=[Upstream(BotStoppedSpeakingFrame()), silence()],
            send_end_frame=False,
            expected_down_frames=[TTSSpeakFrame, EndWorkerFrame, EndFrame],
        )
    assert spoken(down) == [GOODBYE]
    assert "on_give_up failed" in caplog.text


async def test_end_of_call_stops_the_timer_while_the_last_audio_plays() -> None:
    processor, gave_up = watcher(reprompts=[])
    play_out = PlayOut(TIMEOUT * 3)
    await run_test(
        Pipeline([processor, Reflect(), play_out]),
        frames_to_send=[Upstream(BotStoppedSpeakingFrame()), settle()],
        expected_down_frames=[],
    )
    assert play_out.after_end == []
    assert gave_up == []


async def test_cancel_stops_the_timer() -> None:
    processor, gave_up = watcher(reprompts=[])
    await run_test(
        with_upstream(processor),
        frames_to_send=[Upstream(BotStoppedSpeakingFrame()), settle(), CancelFrame()],
        send_end_frame=False,
        expected_down_frames=[CancelFrame],
    )
    await asyncio.sleep(TIMEOUT * 3)
    assert gave_up == []
