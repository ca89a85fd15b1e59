"""Makes sure the caller hears what the agent says, whatever text-to-speech does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    ManuallySwitchServiceFrame,
    OutputAudioRawFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

CLIP_CHUNK_SECS = 0.04  # the output transport's own chunk size
ABANDONED_ERRORS_SECS = 0.1  # errors of an attempt given up on still arrive for a moment


@dataclass(frozen=True)
class Clip:
    """A line recorded in advance, played when text-to-speech cannot say it."""

    name: str
    text: str
    audio: bytes  # 16-bit little-endian mono PCM
    sample_rate: int

    @property
    def seconds(self) -> float:
        """How long it plays."""
        return len(self.audio) / 2 / self.sample_rate



class SpeechGuard(FrameProcessor):
    """Watches that what goes to text-to-speech starts playing, and makes it play otherwise.

    Sits right before text-to-speech (one service, or a ServiceSwitcher over a second
    provider, `fallback`). Going down it sees what is to be said (TTSSpeakFrame, the
    model's LLMTextFrames); going up, the output transport's BotStartedSpeakingFrame, which
    says the caller hears the agent, and the errors text-to-speech reports.

    The model's words are timed from the end of its response (LLMFullResponseEndFrame), when
    text-to-speech is told to speak what it holds: a long answer still streaming in is the
    model's time, which SilenceBudget covers, not a voice that stalled.
    When no audio has started after the words reached text-to-speech (`start_timeout_secs`
    for the call's first words, the greeting; `filler_timeout_secs` for later ones), or
    text-to-speech reports an error first, the words are said again (after an interruption
    that clears whatever text-to-speech was stuck on) and given `retry_timeout_secs`; then on
    the `fallback` provider, if there is one; then a clip recorded in advance plays instead:
    `first_clip` for the greeting, after which the call goes on, else `lost_clip` (an
    apology), after which `on_lost` is called: the call cannot speak any more.

    Later words get `filler_clip` ("one moment") as they are said again, once per caller
    turn, so that the caller hears the agent while the retry runs; the retried words follow
    it, and the retry's time counts from the clip's end. The clip's words are not said
    again: neither from the words pending nor when they come meanwhile (the model-side
    filler).

    `on_clip` hears of every clip played. Clips go out as plain OutputAudioRawFrames, which
    the output transport does not report as the agent speaking, so a BotStartedSpeakingFrame
    after a clip is the voice's. Words that arrive while the agent is already audible are not
    watched: the voice is working. An EndFrame waits here until the words before it are heard
    or replaced.
    """

    def __init__(
        self,
        *,
        first_clip: Clip,
        filler_clip: Clip,
        lost_clip: Clip,
        on_clip: Callable[[Clip], Awaitable[None]],
        on_lost: Callable[[], Awaitable[None]],
        fallback: FrameProcessor | None = None,
        start_timeout_secs: float = 1.5,
        filler_timeout_secs: float = 1.0,
        retry_timeout_secs: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._first_clip = first_clip
        self._filler_clip = filler_clip
        self._lost_clip = lost_clip
        self._on_clip = on_clip
        self._on_lost = on_lost
        self._fallback = fallback
        self._start_timeout_secs = start_timeout_secs
        self._filler_timeout_secs = filler_timeout_secs
        self._retry_timeout_secs = retry_timeout_secs
        self._pending = ""  # words sent to text-to-speech and not heard yet
        self._attempt = 0  # 0: first try, 1: said again, 2: on the fallback
        self._on_fallback = False
        self._first_words = True
        self._agent_audible = False
        self._filled = False  # the filler clip played since the caller last spoke
        self._filling = False  # the filler clip stands in for the words pending
        self._clip_ends = 0.0  # when the filler clip has played out (time.monotonic())
        self._ignore_errors_until = 0.0
        self._timer: asyncio.Task[None] | None = None
        self._held_end: EndFrame | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, TTSSpeakFrame):
                if self._filling and frame.text == self._filler_clip.text:
                    return  # the caller has just heard it from the clip
                self._expect(f" {frame.text}")
            elif isinstance(frame, LLMTextFrame) and not frame.skip_tts:
                self._expect(frame.text, timed=False)  # model tokens carry their own spaces
            elif isinstance(frame, LLMFullResponseEndFrame) and self._pending:
                self._expect("")
            elif isinstance(frame, UserStartedSpeakingFrame):
                self._filled = False
            elif isinstance(frame, InterruptionFrame):
                await self._heard()  # the caller cut in: nothing left to make heard
            elif isinstance(frame, EndFrame) and self._pending:
                self._held_end = frame
                return
            elif isinstance(frame, CancelFrame):
                await self._stop_timer()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._agent_audible = True
            await self._heard()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._agent_audible = False
        elif isinstance(frame, ErrorFrame) and self._timer and time.monotonic() >= self._ignore_errors_until:
            # Failed before its time ran out: no need to wait for it, only for the filler clip.
            await self._stop_timer()
            self._start_timer(self._filler_left())

        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._stop_timer()

    def _expect(self, text: str, *, timed: bool = True) -> None:
        if self._agent_audible:
            return
        self._pending += text
        if timed and self._timer is None:
            self._start_timer(self._start_timeout_secs if self._first_words else self._filler_timeout_secs)

    async def _heard(self) -> None:
        """The words pending are heard (or no longer wanted): back to watching new ones."""
        await self._stop_timer()
        self._pending = ""
        self._attempt = 0
        self._first_words = False
        self._filling = False
        if self._held_end is not None:
            end, self._held_end = self._held_end, None
            await self.push_frame(end)

    def _start_timer(self, secs: float) -> None:
        self._timer = self.create_task(self._give_up_after(secs), "speech_guard_timer")

    async def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer:
            await self.cancel_task(timer)

    async def _give_up_after(self, secs: float) -> None:
        await asyncio.sleep(secs)
        self._timer = None  # fired: what follows must not cancel it
        self._attempt += 1
        if self._attempt == 1:
            await self._say_again(with_filler=not self._first_words and not self._filled)
        elif self._attempt == 2 and self._fallback is not None and not self._on_fallback:
            self._on_fallback = True  # the switcher keeps it for the rest of the call
            await self.push_frame(ManuallySwitchServiceFrame(service=self._fallback))
            await self._say_again()
        else:
            await self._play(self._first_clip if self._first_words else self._lost_clip)

    async def _say_again(self, *, with_filler: bool = False) -> None:
        self._ignore_errors_until = time.monotonic() + ABANDONED_ERRORS_SECS
        # The interruption goes first: pushed after the filler clip, it would clear the clip too.
        await self.push_frame(InterruptionFrame())
        if with_filler:
            await self._play_filler()
        words = self._pending.strip()
        if not words:
            await self._heard()  # the filler was all there was to say
            return
        await self.push_frame(TTSSpeakFrame(words))
        self._start_timer(self._filler_left() + self._retry_timeout_secs)  # heard after the clip

    async def _play_filler(self) -> None:
        filler = self._filler_clip
        self._filled = self._filling = True
        self._pending = self._pending.replace(f" {filler.text}", "")  # the clip says them
        await self._push_audio(filler)
        self._clip_ends = time.monotonic() + filler.seconds
        await self._on_clip(filler)

    def _filler_left(self) -> float:
        """How long the filler clip still plays: an interruption sooner would cut it off."""
        return max(0.0, self._clip_ends - time.monotonic())

    async def _play(self, clip: Clip) -> None:
        lost = clip is self._lost_clip
        await self.push_frame(InterruptionFrame())
        await self._push_audio(clip)
        await self._on_clip(clip)
        await self._heard()
        if lost:
            await self._on_lost()

    async def _push_audio(self, clip: Clip) -> None:
        step = int(CLIP_CHUNK_SECS * clip.sample_rate) * 2
        for start in range(0, len(clip.audio), step):
            await self.push_frame(OutputAudioRawFrame(clip.audio[start:start + step], clip.sample_rate, 1))
