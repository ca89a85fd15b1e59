"""Per caller turn, how long the caller waited for the agent to start talking, and why."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptionFrame,
    MetricsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

log = logging.getLogger(__name__)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class LatencyMeter(FrameProcessor):
    """Emits `{"turn", "latency_ms", "ttfb_ms", "stages_ms"}` (and `barge_in_ms`) via `on_figures`
    when the agent answers a turn.

    Sits after the output transport, where everything it reads passes going downstream:
    the user aggregator's VAD and turn frames, the services' MetricsFrames and the
    transport's BotStartedSpeakingFrame, pushed as the first audio of a reply is sent.
    Latency runs from the end of the caller's speech, which is when the VAD stopped
    hearing it (VADUserStoppedSpeakingFrame's timestamp less its stop_secs), not
    UserStoppedSpeakingFrame: that comes later, after the turn strategy's wait, which the
    caller spends waiting too. `turn` counts caller turns (UserStoppedSpeakingFrame); a
    turn the agent never answers emits nothing. `ttfb_ms` holds each service's first
    TTFB since the caller started speaking (a tool call makes the LLM report twice).

    `stages_ms` times the wait from the same end of speech: `turn_end` (the turn strategy's
    wait), `stt_final` (the `stt` processor's TTFB, which Pipecat counts from the end of speech
    to the final transcript), `first_token` (when the `llm` processor's first TTFB, sent as its
    first token comes, got here) and `first_audio` (`latency_ms`); a stage not seen is left out.
    `stt` and `llm` are those processors' names (`FrameProcessor.name`).

    `barge_in_ms`, on a turn that began by cutting the agent off: from the onset of the caller's
    speech (the VAD's timestamp less its start_secs) to the interruption that started their turn
    passing the output transport, which is when a Twilio stream is told to `clear` the agent's
    audio. The speech counts when it began while the agent was talking, even if the agent was
    only paused by the time the turn started (speech judged from its words first).
    """

    def __init__(
        self, on_figures: Callable[[dict[str, Any]], Awaitable[None]], *,
        stt: str | None = None, llm: str | None = None, **kwargs: Any
    ) -> None:
        # Direct mode: frames are handled in the pushing task, not through this processor's two
        # queues; it only reads frames.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._on_figures = on_figures
        self._stt = stt
        self._llm = llm
        self._turns = 0
        self._speech_end: float | None = None  # time.monotonic() the VAD last heard speech end
        self._waiting_since: float | None = None  # the same, once the caller's turn has ended
        self._turn_end_ms = 0.0  # the turn strategy's wait, from the end of speech
        self._first_token: float | None = None  # time.monotonic() the model's first TTFB came
        self._ttfb_ms: dict[str, float] = {}
        self._bot_speaking = False
        # A barge-in pairs the onset of speech over the agent with the interruption its turn
        # started, whichever comes here first (both wall-clock, as the VAD's timestamp is).
        self._heard_at: float | None = None  # onset of the last speech begun over the agent
        self._barged_at: float | None = None  # when the caller's turn started, if it may have cut in
        self._cut_in = False  # ... while the agent was audible (not paused, not finished)
        self._turn_starting = False  # the next interruption is the one a caller turn starts with
        self._barge_in_ms: float | None = None  # the current caller turn's

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        if isinstance(frame, UserStartedSpeakingFrame):
            self._barge_in_ms = None  # a new caller turn
            self._turn_starting = True
            self._start_over()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._heard(frame.timestamp - frame.start_secs)
            self._start_over()
        elif isinstance(frame, InterruptionFrame) and self._turn_starting:
            self._turn_starting = False
            if self._bot_speaking or self._heard_at is not None:
                self._barged_at, self._cut_in = time.time(), self._bot_speaking
                if self._heard_at is not None:
                    self._barge_in_ms = _ms(self._barged_at - self._heard_at)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            # The frame's timestamp is wall-clock; carry its age over to the monotonic clock.
            age = time.time() - frame.timestamp
            self._speech_end = time.monotonic() - age - frame.stop_secs
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._heard_at = self._barged_at = None
            self._turn_starting = False
            self._turns += 1
            # A turn the VAD didn't see end (there is no VAD) counts from now.
            now = time.monotonic()
            self._waiting_since = now if self._speech_end is None else self._speech_end
            self._turn_end_ms = _ms(now - self._waiting_since)
        elif isinstance(frame, MetricsFrame):
            for data in frame.data:
                if isinstance(data, TTFBMetricsData):
                    self._ttfb_ms.setdefault(data.processor, _ms(data.value))
                    if data.processor == self._llm and self._first_token is None:
                        self._first_token = time.monotonic()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            if self._waiting_since is not None:
                await self._emit(self._turn_figures(self._waiting_since, time.monotonic()))
                self._barge_in_ms = None
                self._start_over()

        await self.push_frame(frame, direction)

    def _heard(self, onset: float) -> None:
        """The VAD heard speech begin at `onset`."""
        if self._barged_at is None:
            self._heard_at = onset if self._bot_speaking else None
        elif onset <= self._barged_at:
            # This speech started the caller's turn (its VAD frame came after the interruption):
            # a barge-in if the agent was audible then; if not, an earlier onset was stale.
            self._barge_in_ms = _ms(self._barged_at - onset) if self._cut_in else None
            self._heard_at = self._barged_at = None
        # Else the caller goes on talking in a turn already started.

    def _turn_figures(self, speech_end: float, first_audio: float) -> dict[str, Any]:
        def since_speech_end(at: float) -> float:
            return _ms(at - speech_end)

        latency_ms = since_speech_end(first_audio)
        stages = {"turn_end": self._turn_end_ms}
        if self._stt in self._ttfb_ms:
            stages["stt_final"] = self._ttfb_ms[self._stt]
        if self._first_token is not None:
            stages["first_token"] = since_speech_end(self._first_token)
        stages["first_audio"] = latency_ms
        figures: dict[str, Any] = {"turn": self._turns, "latency_ms": latency_ms,
                                   "ttfb_ms": dict(self._ttfb_ms), "stages_ms": stages}
        if self._barge_in_ms is not None:
            figures["barge_in_ms"] = self._barge_in_ms
        return figures

    def _start_over(self) -> None:
        self._speech_end = None
        self._waiting_since = None
        self._turn_end_ms = 0.0
        self._first_token = None
        self._ttfb_ms.clear()

    async def _emit(self, figures: dict[str, Any]) -> None:
        """Pass one turn's figures on; a failure in `on_figures` is logged, the call goes on."""
        try:
            await self._on_figures(figures)
        except Exception:
            log.exception("%s: on_figures failed for turn %s", self, figures["turn"])
