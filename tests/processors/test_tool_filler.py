"""ToolFiller: one short filler when a tool is slow, none when it is fast."""

from __future__ import annotations

from collections.abc import Sequence

from pipecat.frames.frames import (
    CancelFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import SleepFrame, run_test

from processors.tool_filler import ToolFiller
from tests.processors.support import PlayOut

DELAY = 0.1
PHRASES = {"check_availability": "One moment, I'm checking the schedule.",
           "book_appointment": "One moment while I book that."}


def filler(delay_secs: float = DELAY) -> ToolFiller:
    return ToolFiller(phrases=PHRASES, default_phrase="One moment, please.", delay_secs=delay_secs)


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


def live_timers(processor: ToolFiller) -> list[str]:
    return [
        task.get_name()
        for task in processor.task_manager.current_tasks()
        if task.get_name().startswith(f"{processor}::")
    ]


async def test_a_slow_tool_gets_the_filler_for_its_name() -> None:
    down, _ = await run_test(
        filler(),
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


async def test_a_fast_tool_gets_no_filler() -> None:
    await run_test(
        filler(),
        frames_to_send=[
            started("book_appointment"), in_progress("book_appointment"),
            result("book_appointment"), slow(),
        ],
        expected_down_frames=[
            FunctionCallsStartedFrame, FunctionCallInProgressFrame, FunctionCallResultFrame
        ],
    )


async def test_one_filler_per_batch_named_after_the_first_call() -> None:
    down, _ = await run_test(
        filler(),
        frames_to_send=[
            started("book_appointment", "check_availability"),
            result("check_availability"), slow(), slow(),
            result("book_appointment"),
        ],
    )
    assert spoken(down) == ["One moment while I book that."]


async def test_unknown_tools_get_the_default_phrase() -> None:
    custom = ToolFiller(phrases={"lookup_vin": "Let me look that up."}, default_phrase="Bear with me.",
                        delay_secs=DELAY)
    down, _ = await run_test(
        custom,
        frames_to_send=[started("lookup_vin"), slow(), result("lookup_vin"),
                        started("transfer_call"), slow(), result("transfer_call")],
    )
    assert spoken(down) == ["Let me look that up.", "Bear with me."]


async def test_a_cancelled_call_gets_no_filler() -> None:
    await run_test(
        filler(),
        frames_to_send=[
            started("check_availability"),
            FunctionCallCancelFrame("check_availability", "call_check_availability"), slow(),
        ],
        expected_down_frames=[FunctionCallsStartedFrame, FunctionCallCancelFrame],
    )


async def test_an_interruption_cancels_the_filler() -> None:
    await run_test(
        filler(),
        frames_to_send=[started("check_availability"), InterruptionFrame(), slow()],
        expected_down_frames=[FunctionCallsStartedFrame, InterruptionFrame],
    )


async def test_end_of_call_cancels_the_timer_while_the_last_audio_plays() -> None:
    filler_ = filler()
    play_out = PlayOut(DELAY * 3)
    await run_test(
        Pipeline([filler_, play_out]),
        frames_to_send=[started("check_availability")],
        expected_down_frames=[FunctionCallsStartedFrame],
    )
    assert play_out.after_end == []


async def test_cancel_cancels_the_timer() -> None:
    filler_ = filler(60)
    await run_test(
        filler_,
        frames_to_send=[started("check_availability"), CancelFrame()],
        send_end_frame=False,
        expected_down_frames=[FunctionCallsStartedFrame, CancelFrame],
    )
    assert live_timers(filler_) == []
