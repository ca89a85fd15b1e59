"""SilenceBudget: one filler per caller turn when nothing is on its way, for a slow model or a
slow tool; the apology when the model's answer failed."""

from __future__ import annotations

from collections.abc import Sequence

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import SleepFrame, run_test

from processors.silence_budget import AnswerFailedFrame, SilenceBudget
from tests.processors.support import PlayOut, Upstream, settle, with_upstream

DELAY = 0.1
PHRASES = {"check_availability": "One moment, I'm checking the schedule.",
           "book_appointment": "One moment while I book that."}
FILLER = "One moment, please."
APOLOGY = "Sorry, I'm having trouble. Shall I transfer you?"


class Lost:
    """Counts the processor's calls of `on_lost`."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


def budget(filler_secs: float = DELAY, on_lost: Lost | None = None) -> SilenceBudget:
    return SilenceBudget(default_phrase=FILLER, tool_phrases=PHRASES, apology=APOLOGY,
                         filler_secs=filler_secs, on_lost=on_lost or Lost())


def started(*names: str) -> FunctionCallsStartedFrame:
    return FunctionCallsStartedFrame(
        [FunctionCallFromLLM(name, f"call_{name}", {}, None) for name in names]
    )


def in_progress(name: str) -> FunctionCallInProgressFrame:
    return FunctionCallInProgressFrame(name, f"call_{name}", {})


def result(name: str) -> FunctionCallResultFrame:
    return FunctionCallResultFrame(name, f"call_{name}", {}, {"ok": True})


def slow() -> SleepFrame:
    return SleepFrame(DELAY * 3)


def spoken(down: Sequence[Frame]) -> list[str]:
    return [frame.text for frame in down if isinstance(frame, TTSSpeakFrame)]


def live_timers(processor: SilenceBudget) -> list[str]:
    return [
        task.get_name()
        for task in processor.task_manager.current_tasks()
        if task.get_name().startswith(f"{processor}::")
    ]


# --- a slow model ------------------------------------------------------------------------


async def test_a_slow_answer_gets_the_filler_before_its_words() -> None:
    await run_test(
        budget(),
        frames_to_send=[LLMFullResponseStartFrame(), slow(), LLMTextFrame("Sure."),
                        LLMFullResponseEndFrame()],
        expected_down_frames=[LLMFullResponseStartFrame, TTSSpeakFrame, LLMTextFrame,
                              LLMFullResponseEndFrame],
    )


async def test_an_answer_heard_soon_gets_no_filler() -> None:
    down, _ = await run_test(
        with_upstream(budget()),
        frames_to_send=[LLMFullResponseStartFrame(), LLMTextFrame("Sure."), LLMFullResponseEndFrame(),
                        Upstream(BotStartedSpeakingFrame()), settle(), slow()],
    )
    assert spoken(down) == []


async def test_words_not_yet_heard_do_not_stop_the_filler() -> None:
    # Text-to-speech may keep the model's words until its answer ends: the caller hears nothing.
    down, _ = await run_test(
        budget(),
        frames_to_send=[LLMFullResponseStartFrame(), LLMTextFrame("Sure, I can help."), slow()],
    )
    assert spoken(down) == [FILLER]


# --- a slow tool -------------------------------------------------------------------------


async def test_a_slow_tool_gets_the_filler_for_its_name() -> None:
    down, _ = await run_test(
        budget(),
        frames_to_send=[
            started("check_availability"), in_progress("check_availability"), slow(),
            result("check_availability"),
        ],
        expected_down_frames=[
            FunctionCallsStartedFrame,
            FunctionCallInProgressFrame,
            TTSSpeakFrame,
            FunctionCallResultFrame,
        ],
    )
    assert spoken(down) == ["One moment, I'm checking the schedule."]


async def test_a_fast_tool_and_a_quick_answer_get_no_filler() -> None:
    down, _ = await run_test(
        with_upstream(budget()),
        frames_to_send=[
            LLMFullResponseStartFrame(), started("book_appointment"), in_progress("book_appointment"),
            LLMFullResponseEndFrame(), result("book_appointment"), LLMFullResponseStartFrame(),
            LLMTextFrame("Booked."), LLMFullResponseEndFrame(), Upstream(BotStartedSpeakingFrame()),
            settle(), slow(),
        ],
    )
    assert spoken(down) == []


async def test_a_tool_result_keeps_the_deadline_for_the_answer_after_it() -> None:
    # The tool took most of the time; the model's answer after it does not get a fresh second.
    down, _ = await run_test(
        budget(),
        frames_to_send=[started("book_appointment"), SleepFrame(DELAY * 0.7), result("book_appointment"),
                        LLMFullResponseStartFrame(), SleepFrame(DELAY * 0.6)],
    )
    assert spoken(down) == [FILLER]  # due 0.1 s after the tool started; the wait is the model's now


async def test_the_batch_is_named_after_its_first_call_and_unknown_tools_get_the_default() -> None:
    down, _ = await run_test(
        budget(),
        frames_to_send=[started("book_appointment", "check_availability"),
                        result("check_availability"), slow(), result("book_appointment")],
    )
    assert spoken(down) == ["One moment while I book that."]
    down, _ = await run_test(budget(), frames_to_send=[started("lookup_vin"), slow()])
    assert spoken(down) == [FILLER]


async def test_a_tool_started_mid_wait_keeps_the_deadline_from_the_turns_end() -> None:
    # The model took 0.07 s to call the tool; the filler is due 0.1 s after the turn, not 0.17 s.
    down, _ = await run_test(
        budget(),
        frames_to_send=[LLMFullResponseStartFrame(), SleepFrame(DELAY * 0.7),
                        started("check_availability"), SleepFrame(DELAY * 0.6),
                        result("check_availability")],
    )
    assert spoken(down) == ["One moment, I'm checking the schedule."]


async def test_a_tools_own_words_need_no_filler() -> None:
    await run_test(
        budget(),
        frames_to_send=[started("lookup_customer"), TTSSpeakFrame("Sorry, that failed."), slow()],
        expected_down_frames=[FunctionCallsStartedFrame, TTSSpeakFrame],
    )


async def test_a_cancelled_call_gets_no_filler() -> None:
    await run_test(
        budget(),
        frames_to_send=[
            started("check_availability"),
            FunctionCallCancelFrame("check_availability", "call_check_availability"), slow(),
        ],
        expected_down_frames=[FunctionCallsStartedFrame, FunctionCallCancelFrame],
    )


async def test_while_the_agent_speaks_the_filler_waits_for_its_silence() -> None:
    # "Let me check that." plays while the tool runs: the silence after it is what counts.
    talking = [Upstream(BotStartedSpeakingFrame()), settle(), LLMFullResponseStartFrame(),
               LLMTextFrame("Let me check that."), started("check_availability"), slow()]
    down, _ = await run_test(with_upstream(budget()), frames_to_send=talking)
    assert spoken(down) == []
    down, _ = await run_test(
        with_upstream(budget()),
        frames_to_send=[*talking, Upstream(BotStoppedSpeakingFrame()), settle(), slow()],
    )
    assert spoken(down) == ["One moment, I'm checking the schedule."]


async def test_words_given_while_the_agent_spoke_need_no_filler_after_it() -> None:
    down, _ = await run_test(
        with_upstream(budget()),
        frames_to_send=[Upstream(BotStartedSpeakingFrame()), settle(), LLMFullResponseStartFrame(),
                        LLMTextFrame("Ten works."), LLMFullResponseEndFrame(),
                        Upstream(BotStoppedSpeakingFrame()), settle(), slow()],
    )
    assert spoken(down) == []


# --- one filler per caller turn ------------------------------------------------------------


async def test_a_slow_model_then_a_slow_tool_get_one_filler_until_the_caller_speaks() -> None:
    down, _ = await run_test(
        budget(),
        frames_to_send=[
            LLMFullResponseStartFrame(), slow(), started("check_availability"), slow(),
            result("check_availability"), LLMFullResponseStartFrame(), slow(),
            LLMTextFrame("Ten works."), LLMFullResponseEndFrame(),
            UserStartedSpeakingFrame(), LLMFullResponseStartFrame(), slow(),
        ],
    )
    assert spoken(down) == [FILLER, FILLER]  # the first turn's, then the next turn's


# --- a failed answer -----------------------------------------------------------------------
# The call queues AnswerFailedFrame on the model's ErrorFrame: it arrives behind the response's end.


async def test_a_failed_answer_is_followed_by_the_apology_and_no_filler() -> None:
    down, _ = await run_test(
        budget(),
        frames_to_send=[LLMFullResponseStartFrame(), SleepFrame(DELAY / 2), LLMFullResponseEndFrame(),
                        AnswerFailedFrame("500"), slow()],
        expected_down_frames=[LLMFullResponseStartFrame, LLMFullResponseEndFrame, AnswerFailedFrame,
                              TTSSpeakFrame],
    )
    assert spoken(down) == [APOLOGY]


async def test_an_answer_failing_mid_sentence_ends_then_apologises() -> None:
    # The response's end is what has text-to-speech say the words it held ("I can do"): the
    # apology comes after it.
    down, _ = await run_test(
        budget(),
        frames_to_send=[LLMFullResponseStartFrame(), slow(), LLMTextFrame("I can do"),
                        LLMFullResponseEndFrame(), AnswerFailedFrame("paused")],
        expected_down_frames=[LLMFullResponseStartFrame, TTSSpeakFrame, LLMTextFrame,
                              LLMFullResponseEndFrame, AnswerFailedFrame, TTSSpeakFrame],
    )
    assert spoken(down) == [FILLER, APOLOGY]


def answer(*frames: Frame, failed: bool = False) -> list[Frame]:
    return [UserStartedSpeakingFrame(), LLMFullResponseStartFrame(), *frames, LLMFullResponseEndFrame(),
            *([AnswerFailedFrame("500")] if failed else [])]


async def test_a_second_failed_answer_in_a_row_gives_up_on_the_model() -> None:
    lost = Lost()
    down, _ = await run_test(
        budget(on_lost=lost),
        frames_to_send=[*answer(failed=True), *answer(LLMTextFrame("I can"), failed=True)],
    )
    assert spoken(down) == [APOLOGY]  # the first time; then the call is handed on instead
    assert lost.calls == 1


async def test_an_answer_between_failures_starts_the_count_again() -> None:
    lost = Lost()
    down, _ = await run_test(
        budget(on_lost=lost),
        frames_to_send=[*answer(failed=True), *answer(LLMTextFrame("Ten works.")), *answer(failed=True)],
    )
    assert spoken(down) == [APOLOGY, APOLOGY] and lost.calls == 0


async def test_a_tool_call_between_failures_starts_the_count_again() -> None:
    lost = Lost()
    tool_turn = [UserStartedSpeakingFrame(), LLMFullResponseStartFrame(), started("check_availability"),
                 LLMFullResponseEndFrame(), result("check_availability")]
    down, _ = await run_test(
        budget(on_lost=lost),
        frames_to_send=[*answer(failed=True), *tool_turn, LLMFullResponseStartFrame(),
                        LLMFullResponseEndFrame(), AnswerFailedFrame("500")],
    )
    # The tool's response went through; the answer after its result is the first to fail since.
    assert spoken(down) == [APOLOGY, APOLOGY] and lost.calls == 0


# --- ends ----------------------------------------------------------------------------------


async def test_an_interruption_cancels_the_filler() -> None:
    await run_test(
        budget(),
        frames_to_send=[LLMFullResponseStartFrame(), InterruptionFrame(), slow()],
        expected_down_frames=[LLMFullResponseStartFrame, InterruptionFrame],
    )


async def test_end_of_call_cancels_the_timer_while_the_last_audio_plays() -> None:
    play_out = PlayOut(DELAY * 3)
    await run_test(
        Pipeline([budget(), play_out]),
        frames_to_send=[started("check_availability")],
        expected_down_frames=[FunctionCallsStartedFrame],
    )
    assert play_out.after_end == []


async def test_cancel_cancels_the_timer() -> None:
    budget_ = budget(60)
    await run_test(
        budget_,
        frames_to_send=[LLMFullResponseStartFrame(), CancelFrame()],
        send_end_frame=False,
        expected_down_frames=[LLMFullResponseStartFrame, CancelFrame],
    )
    assert live_timers(budget_) == []
