"""TranscriptRecorder: committed turns reported as they happen, uncommitted words at hang-up."""

from __future__ import annotations

import logging

import pytest
from pipecat.frames.frames import (
    CancelFrame,
    LLMContextAssistantTurnFrame,
    LLMContextUserTurnFrame,
    TranscriptionFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import run_test
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.time import time_now_iso8601

from processors.transcript_recorder import Role, TranscriptRecorder
from tests.processors.support import Upstream, settle, with_upstream

Turns = list[tuple[Role, str]]


def recorder() -> tuple[TranscriptRecorder, Turns]:
    turns: Turns = []

    async def on_turn(role: Role, text: str) -> None:
        turns.append((role, text))

    return TranscriptRecorder(on_turn), turns


def heard(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "caller", time_now_iso8601())


def caller_turn(text: str) -> Upstream:
    return Upstream(LLMContextUserTurnFrame(text, time_now_iso8601()))


def agent_turn(text: str) -> Upstream:
    return Upstream(LLMContextAssistantTurnFrame(text, time_now_iso8601()))


async def test_reports_committed_turns_in_order_and_not_again_at_the_end() -> None:
    processor, turns = recorder()
    _, up = await run_test(
        with_upstream(processor),
        frames_to_send=[
            agent_turn("Hi"),
            settle(),
            heard("I need an oil change"),
            caller_turn("I need an oil change"),
            settle(),
            agent_turn("Sure, when works for you?"),
            settle(),
        ],
        expected_down_frames=[TranscriptionFrame],
        expected_up_frames=[
            LLMContextAssistantTurnFrame,
            LLMContextUserTurnFrame,
            LLMContextAssistantTurnFrame,
        ],
    )
    assert turns == [
        ("agent", "Hi"),
        ("caller", "I need an oil change"),
        ("agent", "Sure, when works for you?"),
    ]
    assert [frame.text for frame in up] == ["Hi", "I need an oil change", "Sure, when works for you?"]


async def test_hang_up_mid_sentence_reports_the_uncommitted_words_once() -> None:
    processor, turns = recorder()
    await run_test(
        with_upstream(processor),
        frames_to_send=[
            heard("I need an oil change"),
            caller_turn("I need an oil change"),
            settle(),
            heard("and can you also"),
            heard("look at my"),
        ],
        expected_down_frames=[TranscriptionFrame] * 3,
    )
    assert turns == [("caller", "I need an oil change"), ("caller", "and can you also look at my")]


async def test_cancel_reports_the_uncommitted_words() -> None:
    processor, turns = recorder()
    await run_test(
        with_upstream(processor),
        frames_to_send=[heard("My car makes a"), settle(), CancelFrame()],
        send_end_frame=False,
        expected_down_frames=[TranscriptionFrame, CancelFrame],
    )
    assert turns == [("caller", "My car makes a")]


async def test_the_turn_the_user_aggregator_commits_after_the_end_is_not_reported_twice() -> None:
    """The real aggregator commits the turn it holds only after passing the EndFrame on."""
    processor, turns = recorder()
    holds_turns = LLMUserAggregatorParams(
        user_turn_strategies=UserTurnStrategies(
            stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=30)]
        )
    )
    user, _ = LLMContextAggregatorPair(LLMContext(), user_params=holds_turns)
    _, up = await run_test(
        Pipeline([processor, user]),
        frames_to_send=[heard("I'd like to book"), settle(), heard("a brake check"), settle()],
    )
    assert [f.text for f in up if isinstance(f, LLMContextUserTurnFrame)] == [
        "I'd like to book a brake check"
    ]
    assert turns == [("caller", "I'd like to book a brake check")]


async def test_words_heard_while_the_previous_turn_was_committed_stay_pending() -> None:
    processor, turns = recorder()
    await run_test(
        with_upstream(processor),
        frames_to_send=[
            heard("I need an oil change"),
            heard("and a tire rotation"),  # reached the aggregator after it committed
            caller_turn("I need an oil change"),
            settle(),
        ],
    )
    assert turns == [("caller", "I need an oil change"), ("caller", "and a tire rotation")]


async def test_words_the_committed_turn_left_out_are_dropped_with_it() -> None:
    processor, turns = recorder()
    await run_test(
        with_upstream(processor),
        frames_to_send=[
            heard("hello?"),  # said while the caller was muted, so never in a turn
            heard("I need new brakes"),
            caller_turn("I need new brakes"),
            settle(),
        ],
    )
    assert turns == [("caller", "I need new brakes")]


async def test_empty_text_is_not_a_turn() -> None:
    processor, turns = recorder()
    await run_test(
        with_upstream(processor),
        frames_to_send=[heard("   "), agent_turn(""), settle(), caller_turn(" "), settle()],
        expected_down_frames=[TranscriptionFrame],
        expected_up_frames=[LLMContextAssistantTurnFrame, LLMContextUserTurnFrame],
    )
    assert turns == []


async def test_a_failing_on_turn_is_logged_and_the_frames_flow_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    turns: Turns = []

    async def on_turn(role: Role, text: str) -> None:
        if text == "Hi":
            raise RuntimeError("queue full")
        turns.append((role, text))

    with caplog.at_level(logging.ERROR, logger="processors.transcript_recorder"):
        await run_test(
            with_upstream(TranscriptRecorder(on_turn)),
            frames_to_send=[
                agent_turn("Hi"), settle(), heard("Hello"), caller_turn("Hello"), settle()
            ],
            expected_down_frames=[TranscriptionFrame],
            expected_up_frames=[LLMContextAssistantTurnFrame, LLMContextUserTurnFrame],
        )
    assert turns == [("caller", "Hello")]
    assert "on_turn failed for a agent turn" in caplog.text
