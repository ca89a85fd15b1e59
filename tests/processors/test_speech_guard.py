"""SpeechGuard: words that do not start playing are said again (after the greeting, with the
recorded filler playing meanwhile), then on the second voice, then replaced by a recorded clip;
words that play are left alone."""

from __future__ import annotations

import time

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    ManuallySwitchServiceFrame,
    OutputAudioRawFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from processors.speech_guard import Clip, SpeechGuard
from tests.processors.support import PushOrder, Reflect, Upstream, settle, with_upstream

TIMEOUT = 0.1
GREETING = Clip("greeting", "Thanks for calling.", b"\x10\x20" * 800, 8000)  # 0.1 s
SORRY = Clip("line_trouble", "Sorry.", b"\x30\x40" * 400, 8000)
FILLER = Clip("filler", "One moment, please.", b"\x50\x60" * 2400, 8000)  # 0.3 s, longer than a retry


class Run:
    """One SpeechGuard under test, and what it reported."""

    def __init__(self, fallback: FrameProcessor | None = None, start_timeout: float = TIMEOUT) -> None:
        self.clips: list[str] = []
        self.clip_times: list[float] = []
        self.pushed = PushOrder()
        self.lost = 0
        self.guard = SpeechGuard(first_clip=GREETING, filler_clip=FILLER, lost_clip=SORRY,
                                 on_clip=self._clip, on_lost=self._lost, fallback=fallback,
                                 start_timeout_secs=start_timeout, filler_timeout_secs=start_timeout,
                                 retry_timeout_secs=TIMEOUT)

    async def _clip(self, played: Clip) -> None:
        self.clips.append(played.name)
        self.clip_times.append(time.monotonic())

    async def _lost(self) -> None:
        self.lost += 1

    async def send(self, frames: list[Frame]) -> list[Frame]:
        down, _ = await run_test(Pipeline([self.guard, self.pushed, Reflect()]), frames_to_send=frames)
        return [f for f in down if not isinstance(f, BotStartedSpeakingFrame | Upstream)]


def heard() -> Upstream:
    return Upstream(BotStartedSpeakingFrame())


def spoken(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TTSSpeakFrame)]


def clip_audio(frames: list[Frame]) -> bytes:
    return b"".join(f.audio for f in frames if isinstance(f, OutputAudioRawFrame))


def greeted() -> list[Frame]:
    """The greeting, heard and over: what follows are later words."""
    return [TTSSpeakFrame("Hi."), settle(), heard(), SleepFrame(TIMEOUT), Upstream(BotStoppedSpeakingFrame()),
            settle()]


def answer(*tokens: str) -> list[Frame]:
    return [LLMFullResponseStartFrame(), *(LLMTextFrame(t) for t in tokens), LLMFullResponseEndFrame()]


async def test_words_that_play_are_left_alone() -> None:
    run = Run()
    down = await run.send([TTSSpeakFrame("Hello."), settle(), heard(), SleepFrame(3 * TIMEOUT),
                           TTSSpeakFrame("More."), settle(), heard(), SleepFrame(3 * TIMEOUT)])
    assert spoken(down) == ["Hello.", "More."]
    assert not any(isinstance(f, InterruptionFrame | OutputAudioRawFrame) for f in down)
    assert run.clips == [] and run.lost == 0


async def test_a_greeting_that_never_plays_is_said_again_then_played_from_its_clip() -> None:
    run = Run()
    down = await run.send([TTSSpeakFrame("Thanks for calling Lakeside."), SleepFrame(4 * TIMEOUT)])
    assert spoken(down) == ["Thanks for calling Lakeside.", "Thanks for calling Lakeside."]
    assert sum(isinstance(f, InterruptionFrame) for f in down) == 2  # before the retry and the clip
    assert clip_audio(down) == GREETING.audio  # no filler before the greeting's retry
    assert run.clips == ["greeting"] and run.lost == 0  # the call goes on


async def test_later_words_that_never_play_end_in_the_apology_and_speech_lost() -> None:
    run = Run()
    down = await run.send([*greeted(), *answer("Sure, ", "Friday."),
                           SleepFrame(4 * TIMEOUT + FILLER.seconds)])
    assert spoken(down) == ["Hi.", "Sure, Friday."]  # the model's words, said again whole
    assert clip_audio(down) == FILLER.audio + SORRY.audio
    assert run.clips == ["filler", "line_trouble"] and run.lost == 1


async def test_an_answer_still_streaming_in_is_not_taken_for_a_stalled_voice() -> None:
    run = Run()
    # The model takes three timeouts to give its answer; the voice speaks once it has it all.
    down = await run.send([*greeted(), LLMFullResponseStartFrame(), LLMTextFrame("Sure, "),
                           SleepFrame(3 * TIMEOUT), LLMTextFrame("Friday."), LLMFullResponseEndFrame(),
                           SleepFrame(TIMEOUT / 2), heard(), SleepFrame(3 * TIMEOUT)])
    assert run.clips == [] and run.lost == 0
    assert not any(isinstance(f, InterruptionFrame | OutputAudioRawFrame) for f in down)


async def test_later_words_that_stall_get_the_filler_at_once_and_their_retry_after_it() -> None:
    run = Run()
    # Heard a little after the retry's own time, but before it ran out counted from the clip's end.
    down = await run.send([*greeted(), *answer("Sure, ", "Friday."),
                           SleepFrame(TIMEOUT + FILLER.seconds - TIMEOUT / 2), heard(),
                           SleepFrame(3 * TIMEOUT)])
    assert run.clips == ["filler"] and run.lost == 0
    pushed = run.pushed.down
    retry = len(pushed) - 1 - [type(f) for f in reversed(pushed)].index(TTSSpeakFrame)
    interruption = next(i for i, f in enumerate(pushed) if isinstance(f, InterruptionFrame))
    audio = [i for i, f in enumerate(pushed) if isinstance(f, OutputAudioRawFrame)]
    # The retry's interruption cannot clear the clip, and its words play after it.
    assert interruption < audio[0] and audio[-1] < retry
    assert clip_audio(down) == FILLER.audio and spoken(down) == ["Hi.", "Sure, Friday."]


async def test_the_filler_plays_once_per_caller_turn() -> None:
    run = Run()

    def retried_and_heard(after: float) -> list[Frame]:
        return [SleepFrame(after), heard(), SleepFrame(TIMEOUT), Upstream(BotStoppedSpeakingFrame()),
                settle()]

    # Heard once the retry has started playing: after the clip, or at once without one.
    with_filler = retried_and_heard(TIMEOUT + FILLER.seconds - TIMEOUT / 2)
    down = await run.send([*greeted(), *answer("Sure."), *with_filler,
                           TTSSpeakFrame("Anything else?"), *retried_and_heard(1.5 * TIMEOUT),
                           UserStartedSpeakingFrame(), settle(), *answer("Okay."), *with_filler])
    assert run.clips == ["filler", "filler"] and run.lost == 0
    assert spoken(down) == ["Hi.", "Sure.", "Anything else?", "Anything else?", "Okay."]


async def test_the_model_side_filler_is_not_said_again_after_its_clip() -> None:
    run = Run()
    down = await run.send([*greeted(), *answer("Sure."), TTSSpeakFrame(FILLER.text),  # pending
                           SleepFrame(TIMEOUT + FILLER.seconds / 2), TTSSpeakFrame(FILLER.text),  # coming
                           settle(), heard(), SleepFrame(3 * TIMEOUT)])
    # The first try got both; the retry only the answer; the filler coming after the clip, nothing.
    assert spoken(down) == ["Hi.", FILLER.text, "Sure."]
    assert run.clips == ["filler"] and run.lost == 0


async def test_a_stalled_model_filler_alone_is_played_from_its_clip() -> None:
    run = Run()
    down = await run.send([*greeted(), TTSSpeakFrame(FILLER.text), SleepFrame(4 * TIMEOUT + FILLER.seconds)])
    assert spoken(down) == ["Hi.", FILLER.text]  # nothing left to say again
    assert run.clips == ["filler"] and run.lost == 0


async def test_a_voice_failing_at_once_mid_call_lets_the_filler_play_out_before_the_apology() -> None:
    run = Run(start_timeout=10)  # only the errors can move it on in time
    down = await run.send([*greeted(), *answer("Sure."), settle(), Upstream(ErrorFrame("refused")),
                           SleepFrame(2 * TIMEOUT), Upstream(ErrorFrame("refused again")),
                           SleepFrame(FILLER.seconds + TIMEOUT)])
    assert spoken(down) == ["Hi.", "Sure."]  # said again once
    assert run.clips == ["filler", "line_trouble"] and run.lost == 1
    # The apology's interruption waited for the filler clip to play out.
    assert run.clip_times[1] - run.clip_times[0] >= FILLER.seconds - 0.01


async def test_an_error_from_text_to_speech_retries_without_waiting() -> None:
    run = Run(start_timeout=10)  # only the error can make it retry in time
    down = await run.send([TTSSpeakFrame("Hello."), settle(), Upstream(ErrorFrame("refused")), settle(),
                           heard(), SleepFrame(0.2)])
    assert spoken(down) == ["Hello.", "Hello."]
    assert run.clips == []


async def test_the_second_voice_is_tried_before_the_clip() -> None:
    fallback = FrameProcessor(name="second voice")
    run = Run(fallback=fallback)
    down = await run.send([TTSSpeakFrame("Hello."), SleepFrame(5 * TIMEOUT)])
    switches = [f for f in down if isinstance(f, ManuallySwitchServiceFrame)]
    assert [f.service for f in switches] == [fallback]
    assert spoken(down) == ["Hello."] * 3  # first try, again, on the second voice
    assert run.clips == ["greeting"]


async def test_the_call_does_not_end_before_its_last_words_are_heard_or_replaced() -> None:
    run = Run()
    await run_test(with_upstream(run.guard), frames_to_send=[
        TTSSpeakFrame("Hi."), settle(), heard(), SleepFrame(TIMEOUT), Upstream(BotStoppedSpeakingFrame()),
        settle(), TTSSpeakFrame("Bye.")])
    # The EndFrame run_test sends right after "Bye." waited here for the apology clip; passed
    # on, it would have ended the guard, and its timer, first.
    assert run.clips == ["filler", "line_trouble"] and run.lost == 1
