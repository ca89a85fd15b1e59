"""The keypad processor alone: keys become whole entries (a lone menu key after a short pause,
digits at `#` or a longer pause), the first key interrupts the agent, the words an entry gives
go to the model as a user message that runs it, and every other frame passes on."""

from __future__ import annotations

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    InputDTMFFrame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    TranscriptionFrame,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.time import time_now_iso8601

from processors.keypad import Keypad


def keys(typed: str) -> list[InputDTMFFrame]:
    return [InputDTMFFrame(KeypadEntry(key)) for key in typed]


class Entries:
    """What the processor handed on, and the words to answer each entry with."""

    def __init__(self, words: dict[str, str] | None = None) -> None:
        self.seen: list[str] = []
        self._words = words or {}

    async def __call__(self, typed: str) -> str | None:
        self.seen.append(typed)
        return self._words.get(typed)


async def test_a_lone_menu_key_acts_after_a_short_pause_and_interrupts_the_agent() -> None:
    entries = Entries()
    await run_test(
        Keypad(entries, choices=("1", "2", "3"), choice_secs=0.05, pause_secs=5),
        frames_to_send=[*keys("1"), SleepFrame(0.3)],
        expected_down_frames=[InterruptionFrame],  # the key itself goes no further
        expected_up_frames=[InterruptionFrame],
    )
    assert entries.seen == ["1"]


async def test_digits_then_pound_go_to_the_model_as_a_user_message_that_runs_it() -> None:
    entries = Entries({"2125550123": "The caller keyed in: 2125550123"})
    down, _ = await run_test(
        # "2" is a menu key, but more keys follow it: a number, not a choice.
        Keypad(entries, choices=("1", "2", "3"), choice_secs=0.2, pause_secs=5),
        frames_to_send=[*keys("2125550123#"), SleepFrame(0.1)],
        expected_down_frames=[InterruptionFrame, LLMMessagesAppendFrame],  # one interruption
    )
    assert entries.seen == ["2125550123"]
    told = down[-1]
    assert told.messages == [{"role": "user", "content": "The caller keyed in: 2125550123"}]
    assert told.run_llm is True


async def test_a_lone_key_off_the_menu_waits_the_longer_pause() -> None:
    entries = Entries()
    await run_test(
        Keypad(entries, choices=("1",), choice_secs=0.05, pause_secs=0.4),
        # 5 then 6 a moment later: one entry. 1 alone: an entry after the short pause, so the 2
        # that follows it starts the next.
        frames_to_send=[*keys("5"), SleepFrame(0.15), *keys("6"), SleepFrame(0.6),
                        *keys("1"), SleepFrame(0.2), *keys("2"), SleepFrame(0.6)],
        expected_down_frames=[InterruptionFrame] * 3,
    )
    assert entries.seen == ["56", "1", "2"]


async def test_other_frames_pass_and_the_end_of_the_call_drops_half_an_entry() -> None:
    entries = Entries({"4": "words"})
    said = TranscriptionFrame("Yes, that's right.", "caller", time_now_iso8601())
    await run_test(
        Keypad(entries, choice_secs=0.05, pause_secs=5),
        frames_to_send=[said, *keys("4")],  # the call ends before the pause does
        expected_down_frames=[TranscriptionFrame, InterruptionFrame],
    )
    assert entries.seen == []


async def test_a_pound_alone_is_no_entry() -> None:
    entries = Entries()
    await run_test(Keypad(entries), frames_to_send=[*keys("#"), SleepFrame(0.1)], expected_down_frames=[])
    assert entries.seen == []
