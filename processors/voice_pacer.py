"""The agent's voice goes out at the pace the caller hears it, only `lead_seconds` ahead.

Pipecat's websocket output sends audio at twice real time, so Twilio holds up to half of a
long answer unplayed: a `clear` discards it, but nothing short of a `clear` stops it. Paced,
the agent can pause for a caller who starts to speak and resume exactly where it stopped
(`PauseVoiceFrame`, `ResumeVoiceFrame`).

The text (`TTSTextFrame`) is held too, word by word until the word's audio has gone out, so
that the context and the call log get what the caller heard of an interrupted answer, not the
words the interruption kept from being said. Speech without word timings sends all of a
sentence's text ahead of its audio, so where each word's audio ends is reckoned from the
characters before it, at the pace the voice's last whole answer measured.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import deque
from dataclasses import dataclass

from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    Frame,
    InterruptionFrame,
    LLMAssistantPushAggregationFrame,
    LLMFullResponseEndFrame,
    OutputAudioRawFrame,
    SystemFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.utils import obj_count, obj_id


@dataclass
class PauseVoiceFrame(SystemFrame):
    """Hold the agent's voice where it is: the caller may be interrupting."""


@dataclass
class ResumeVoiceFrame(SystemFrame):
    """Let the agent's voice go on from where it was held."""


# Seconds of speech per character of text, until an answer has measured its voice's own, and
# the bounds of what a voice takes.
SECONDS_PER_CHARACTER = 0.065
FASTEST, SLOWEST = 0.04, 0.09
# How much the event loop's lateness may add to the lead, and how fast that fades (per frame).
MAX_EXTRA_LEAD = 0.2
LATE_DECAY = 0.95
# Frames that follow the last audio of what the agent said: its text is all heard by then.
SPOKEN_TO_THE_END = (TTSStoppedFrame, LLMAssistantPushAggregationFrame, LLMFullResponseEndFrame)


class _UnheardText:
    """The words of the answer going out whose audio has not gone out yet."""

    def __init__(self) -> None:
        self.seconds_per_character = SECONDS_PER_CHARACTER
        self._held: deque[TTSTextFrame] = deque()  # one word each
        self._audio = 0.0  # seconds of this answer's audio let through
        self._told = 0  # characters of this answer already let through as text

    def hold(self, text: TTSTextFrame) -> list[TTSTextFrame]:
        """Holds `text`'s words; returns those whose audio has gone out already (a voice may
        send a sentence's text after its audio)."""
        for word in text.text.split():
            held = copy.copy(text)
            held.id, held.name = obj_id(), f"{type(text).__name__}#{obj_count(text)}"
            held.text = word
            self._held.append(held)
        return self.heard(0.0)

    def heard(self, seconds: float) -> list[TTSTextFrame]:
        """The words whose audio ends within the answer's first `seconds` more."""
        self._audio += seconds
        said = []
        while self._held and self._audio >= self.seconds_per_character * (
                self._told + len(self._held[0].text) + 1):
            said.append(self._held.popleft())
            self._told += len(said[-1].text) + 1
        return said

    def finished(self) -> list[TTSTextFrame]:
        """The rest of the answer, its audio all gone out; its voice's pace, measured."""
        said = list(self._held)
        characters = self._told + sum(len(word.text) + 1 for word in said)
        if characters and self._audio:
            # Within what voices speak at: an answer with a recorded clip in it has audio
            # without text, which would make the next words seem to take longer.
            self.seconds_per_character = min(max(self._audio / characters, FASTEST), SLOWEST)
        self.cut_off()
        return said

    def cut_off(self) -> None:
        self._held.clear()
        self._audio, self._told = 0.0, 0


class VoicePacer(FrameProcessor):
    """Lets the agent's audio through no faster than it plays, `lead_seconds` ahead (more while
    the event loop runs late), and holds it while paused; the text follows its audio, word by
    word. Other frames keep their place; an interruption drops the audio and text not yet let
    through (Pipecat cancels the frame being held)."""

    def __init__(self, *, lead_seconds: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._lead = lead_seconds
        self._late = 0.0  # recent lateness of the event loop, added to the lead
        self._plays_until = 0.0  # when the audio let through so far ends playing (monotonic)
        self._playing = asyncio.Event()
        self._playing.set()
        self._unheard = _UnheardText()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, PauseVoiceFrame):
            self._playing.clear()
            return
        if isinstance(frame, ResumeVoiceFrame):
            self._playing.set()
            return
        downstream = direction is FrameDirection.DOWNSTREAM
        if isinstance(frame, InterruptionFrame):
            self._playing.set()  # what was held is gone; the next answer plays
            self._plays_until = 0.0
            self._unheard.cut_off()
        elif isinstance(frame, TTSTextFrame) and downstream:
            for text in self._unheard.hold(frame):
                await self.push_frame(text)
            return
        elif isinstance(frame, OutputAudioRawFrame) and downstream:
            await self._wait_for_room()
            seconds = len(frame.audio) / (2 * frame.num_channels * frame.sample_rate)
            self._plays_until = max(time.monotonic(), self._plays_until) + seconds
            await self.push_frame(frame, direction)
            for text in self._unheard.heard(seconds):
                await self.push_frame(text)
            return
        elif (isinstance(frame, SPOKEN_TO_THE_END) and downstream) or (
                isinstance(frame, BotStoppedSpeakingFrame) and not downstream):
            # After the last audio of what was said; or the output saying its audio all played.
            for text in self._unheard.finished():
                await self.push_frame(text)
        await self.push_frame(frame, direction)

    async def _wait_for_room(self) -> None:
        while True:
            await self._playing.wait()
            due = self._plays_until - self._lead - self._late
            ahead = due - time.monotonic()
            if ahead <= 0:
                return
            await asyncio.sleep(ahead)
            # A busy event loop wakes this late, and the caller hears a gap unless the lead
            # covers it: the lead grows by what the loop lags now, and shrinks back as it stops.
            late = time.monotonic() - due
            self._late = min(MAX_EXTRA_LEAD, max(late, self._late * LATE_DECAY))
