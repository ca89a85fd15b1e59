"""A silent caller, through Pipecat's caller aggregator as `pipeline.call` builds it: re-prompts
after silence, then goodbye and the end of the call."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

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
    InterruptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair, LLMUserAggregator
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.time import time_now_iso8601

from config.settings import Settings
from pipeline.turns import caller_turns, reprompt_when_silent
from tests.processors.support import PlayOut, Reflect, Upstream, settle, with_upstream

TIMEOUT = 0.1
REPROMPTS = ["Are you still there?", "Can you hear me?"]
GOODBYE = "I'll let you go. Goodbye."


def caller(reprompts: Sequence[str] = REPROMPTS, barge_in: str = "pause"
           ) -> tuple[LLMUserAggregator, list[str]]:
    """The caller aggregator with the call's parameters and silence handling."""
    settings = Settings(_env_file=None, idle_reprompt_seconds=TIMEOUT, turn_detection="silence",
                        turn_silence_seconds=0.05, barge_in=barge_in)
    # A turn without words (a cough) ends when nothing happens for this long, 5 s by default.
    params = dataclasses.replace(caller_turns(settings), user_turn_stop_timeout=TIMEOUT)
    aggregator, _ = LLMContextAggregatorPair(LLMContext(), user_params=params)
    gave_up: list[str] = []
    reprompt_when_silent(aggregator, reprompts, GOODBYE, lambda: gave_up.append("no_input"))
    return aggregator, gave_up


def agent_spoke() -> list[Frame]:
    """The output transport's broadcast around an utterance, as it reaches the aggregator."""
    return [Upstream(BotStartedSpeakingFrame()), settle(), Upstream(BotStoppedSpeakingFrame()), settle()]


def caller_said(text: str) -> list[Frame]:
    """VAD and speech-to-text around a caller turn, up to its end after the turn's pause."""
    return [VADUserStartedSpeakingFrame(), settle(), TranscriptionFrame(text, "caller", time_now_iso8601()),
            VADUserStoppedSpeakingFrame(), SleepFrame(0.2)]


def caller_coughed() -> list[Frame]:
    """Voice, but no words: the turn ends on the stop timeout, with nothing to answer."""
    return [VADUserStartedSpeakingFrame(), settle(), VADUserStoppedSpeakingFrame()]


def silence() -> SleepFrame:
    return SleepFrame(TIMEOUT * 4)


def spoken(down: Sequence[Frame]) -> list[str]:
    return [frame.text for frame in down if isinstance(frame, TTSSpeakFrame)]


async def test_reprompts_then_says_goodbye_and_ends_the_call() -> None:
    aggregator, gave_up = caller()
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[
            *agent_spoke(), silence(),  # first re-prompt
            *agent_spoke(), silence(),  # second re-prompt
            *agent_spoke(), silence(),  # goodbye
        ],
        # No EndFrame sent: the worker makes one of the EndWorkerFrame, after the goodbye.
        send_end_frame=False,
    )
    assert spoken(down) == [*REPROMPTS, GOODBYE]
    assert [type(frame) for frame in down[-3:]] == [TTSSpeakFrame, EndWorkerFrame, EndFrame]
    assert gave_up == ["no_input"]


async def test_a_caller_who_answers_is_not_reprompted() -> None:
    aggregator, gave_up = caller()
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[*agent_spoke(), VADUserStartedSpeakingFrame(), silence()],
    )
    assert spoken(down) == []
    assert gave_up == []


async def test_the_agent_speaking_again_is_not_silence() -> None:
    aggregator, _ = caller()
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[
            Upstream(BotStoppedSpeakingFrame()), settle(), Upstream(BotStartedSpeakingFrame()),
            silence(),
        ],
    )
    assert spoken(down) == []


async def test_a_barge_in_is_not_silence_until_the_agent_has_answered() -> None:
    aggregator, _ = caller()
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[
            Upstream(BotStartedSpeakingFrame()), settle(),
            VADUserStartedSpeakingFrame(), settle(),
            Upstream(BotStoppedSpeakingFrame()), silence(),  # interrupted; the caller talks on
            TranscriptionFrame("actually wait", "caller", time_now_iso8601()),
            VADUserStoppedSpeakingFrame(), silence(),  # the turn is answered, not re-prompted
            *agent_spoke(), silence(),  # the answer; now silence counts
        ],
    )
    assert spoken(down) == [REPROMPTS[0]]
    assert any(isinstance(frame, LLMContextFrame) for frame in down)


async def test_a_cough_while_the_agent_waits_gets_no_answer_and_silence_goes_on() -> None:
    aggregator, _ = caller()
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[*agent_spoke(), *caller_coughed(), silence()],
    )
    assert spoken(down) == [REPROMPTS[0]]
    assert not any(isinstance(frame, LLMContextFrame) for frame in down)


async def test_a_cough_that_cuts_the_agent_off_is_answered_by_the_model_not_a_reprompt() -> None:
    # Only where a cough cuts the agent off at all: BARGE_IN=immediate.
    aggregator, _ = caller(barge_in="immediate")
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[
            Upstream(BotStartedSpeakingFrame()), settle(),
            *caller_coughed(), Upstream(BotStoppedSpeakingFrame()), silence(),
        ],
    )
    assert spoken(down) == []
    # Pipecat asks the model to have the caller repeat; its answer, once spoken, restarts silence.
    assert any(isinstance(frame, LLMContextFrame) for frame in down)


async def test_a_cough_over_the_agent_leaves_it_talking_and_its_silence_is_reprompted() -> None:
    aggregator, _ = caller()
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[
            Upstream(BotStartedSpeakingFrame()), settle(),
            *caller_coughed(), settle(), Upstream(BotStoppedSpeakingFrame()), silence(),
        ],
    )
    assert not any(isinstance(frame, InterruptionFrame) for frame in down)
    assert not any(isinstance(frame, LLMContextFrame) for frame in down)  # nothing to answer
    assert spoken(down) == [REPROMPTS[0]]


async def test_caller_speech_resets_the_count() -> None:
    aggregator, gave_up = caller()
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[
            *agent_spoke(), silence(),  # first re-prompt
            *agent_spoke(), *caller_said("yes, sorry"),
            *agent_spoke(), silence(),  # the agent answered; silence again: first re-prompt
        ],
    )
    assert spoken(down) == [REPROMPTS[0], REPROMPTS[0]]
    assert gave_up == []


async def test_no_reprompt_while_a_function_call_runs() -> None:
    aggregator, _ = caller()
    call = FunctionCallFromLLM("check_availability", "call_1", {}, None)
    result = FunctionCallResultFrame("check_availability", "call_1", {}, {"slots": []})
    down, _ = await run_test(
        with_upstream(aggregator),
        frames_to_send=[
            Upstream(FunctionCallsStartedFrame([call])), settle(),
            *agent_spoke(), silence(),  # a filler played while the tool ran
            Upstream(result), settle(),
            *agent_spoke(), silence(),  # the answer; now silence counts
        ],
    )
    assert spoken(down) == [REPROMPTS[0]]


async def test_end_of_call_stops_the_timer_while_the_last_audio_plays() -> None:
    aggregator, gave_up = caller(reprompts=[])
    play_out = PlayOut(TIMEOUT * 4)
    await run_test(
        Pipeline([aggregator, Reflect(), play_out]),
        frames_to_send=[Upstream(BotStoppedSpeakingFrame()), settle()],
    )
    assert play_out.after_end == []
    assert gave_up == []


async def test_no_goodbye_after_the_caller_hung_up() -> None:
    aggregator, gave_up = caller(reprompts=[])
    await run_test(
        with_upstream(aggregator),
        frames_to_send=[Upstream(BotStoppedSpeakingFrame()), settle(), CancelFrame()],
        send_end_frame=False,
    )
    await asyncio.sleep(TIMEOUT * 4)
    assert gave_up == []
