"""The agent's voice leaves no faster than it is heard, holds where it was paused and goes on
from there, and an interruption drops what the caller has not heard."""

from __future__ import annotations

import itertools
import time

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from processors.voice_pacer import PauseVoiceFrame, ResumeVoiceFrame, VoicePacer

RATE = 8000
FRAME_SECONDS = 0.04
LEAD = 0.08


class Heard(FrameProcessor):
    """Notes when each audio frame (numbered by its first byte) comes out of the pacer."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: list[tuple[float, int]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame):
            self.audio.append((time.monotonic(), frame.audio[0]))
        await self.push_frame(frame, direction)


def speech(count: int) -> list[Frame]:
    return [OutputAudioRawFrame(bytes([n]) * int(RATE * FRAME_SECONDS * 2), RATE, 1)
            for n in range(count)]


async def test_audio_leaves_at_the_pace_it_plays_a_lead_ahead() -> None:
    heard = Heard()
    started = time.monotonic()
    await run_test(Pipeline([VoicePacer(lead_seconds=LEAD), heard]),
                   frames_to_send=[*speech(25), SleepFrame(0.2)])
    assert [n for _, n in heard.audio] == list(range(25))
    # One second of speech: let through over that second, less the lead.
    assert heard.audio[-1][0] - started >= 1.0 - FRAME_SECONDS - LEAD - 0.03
    assert heard.audio[1][0] - started < 0.05  # the first of it at once: no added delay


async def test_a_pause_holds_the_voice_and_resuming_goes_on_from_there() -> None:
    heard = Heard()
    pacer = VoicePacer(lead_seconds=LEAD)
    down, _ = await run_test(Pipeline([pacer, heard]), frames_to_send=[
        *speech(25), TTSTextFrame("the answer", aggregated_by="sentence"), TTSStoppedFrame(),
        SleepFrame(0.3), PauseVoiceFrame(), SleepFrame(0.5), ResumeVoiceFrame(), SleepFrame(1.2)])
    times = [at for at, _ in heard.audio]
    assert [n for _, n in heard.audio] == list(range(25))  # every frame, once, in order
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps) >= 0.45  # nothing left while paused
    # The text and the end of the speech keep their place behind its audio.
    assert [type(f) for f in down[-2:]] == [TTSTextFrame, TTSStoppedFrame]


async def test_an_interruption_drops_what_was_not_let_through() -> None:
    heard = Heard()
    down, _ = await run_test(Pipeline([VoicePacer(lead_seconds=LEAD), heard]), frames_to_send=[
        *speech(25), TTSTextFrame("the answer", aggregated_by="sentence"),
        SleepFrame(0.3), PauseVoiceFrame(), SleepFrame(0.1), InterruptionFrame(),
        SleepFrame(0.1), *speech(2), SleepFrame(0.2)])
    numbers = [n for _, n in heard.audio]
    cut = numbers.index(0, 1)  # where the next answer starts
    assert 3 <= cut < 15 and numbers[:cut] == list(range(cut)) and numbers[cut:] == [0, 1]
    # The unheard sentence never reaches the context; the next answer plays unpaused.
    assert not any(isinstance(f, TTSTextFrame) for f in down)


async def test_the_context_gets_the_words_whose_audio_has_gone_out() -> None:
    # As speech without word timings sends them: a sentence's text first, then its audio.
    # At the default pace the first sentence's words are 1.6 s of it; "nine" starts at 2.2 s.
    first = TTSTextFrame("I can book that for you.", aggregated_by="sentence")
    second = TTSTextFrame("We have nine or ten tomorrow.", aggregated_by="sentence")
    heard = Heard()
    down, _ = await run_test(Pipeline([VoicePacer(lead_seconds=LEAD), heard]), frames_to_send=[
        first, second, *speech(100), SleepFrame(2.0 - LEAD), InterruptionFrame(), SleepFrame(0.1)])
    said = " ".join(f.text for f in down if isinstance(f, TTSTextFrame))
    assert said.startswith(first.text) and "nine" not in said
    assert 45 <= len(heard.audio) <= 55  # about 2 s of audio let through, then none


async def test_a_whole_answer_reaches_the_context_whole() -> None:
    sentence = TTSTextFrame("I can book that for you.", aggregated_by="sentence")
    down, _ = await run_test(VoicePacer(lead_seconds=LEAD), frames_to_send=[
        sentence, *speech(10), TTSStoppedFrame(), SleepFrame(0.1)])
    assert " ".join(f.text for f in down if isinstance(f, TTSTextFrame)) == sentence.text
    assert isinstance(down[-1], TTSStoppedFrame)
