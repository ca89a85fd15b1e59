"""Per caller turn, how long the caller waited for the agent to start talking, and why."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    MetricsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

log = logging.getLogger(__name__)


class LatencyMeter(FrameProcessor):
    """Emits `{"turn", "latency_ms", "ttfb_ms"}` via `on_figures` when the agent answers a turn.

    Sits after the output transport, where everything it reads passes going downstream:
    the user aggregator's VAD and turn frames, the services' MetricsFrames and the
    transport's BotStartedSpeakingFrame, pushed as the first audio of a reply is sent.
    Latency runs from the end of the caller's speech, which is when the VAD stopped
    hearing it (VADUserStoppedSpeakingFrame's timestamp less its stop_secs), not
    UserStoppedSpeakingFrame: that comes later, after the turn strategy's wait, which the
    caller spends waiting too. `turn` counts caller turns (UserStoppedSpeakingFrame); a
    turn the agent never answers emits nothing. `ttfb_ms` holds each service's first
    TTFB since the caller started speaking (a tool call makes the LLM report twice).
    """

    def __init__(
        self, on_figures: Callable[[dict[str, Any]], Awaitable[None]], **kwargs: Any
    ) -> None:
        # Direct mode: frames are handled in the pushing task, not through this processor's two
        # queues; it only reads frames.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._on_figures = on_figures
        self._turns = 0
        self._speech_end: float | None = None  # time.monotonic() the VAD last heard speech end
        self._waiting_since: float | None = None  # the same, once the caller's turn has ended
        self._ttfb_ms: dict[str, float] = {}

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        if isinstance(frame, (VADUserStartedSpeakingFrame, UserStartedSpeakingFrame)):
            self._start_over()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            # The frame's timestamp is wall-clock; carry its age over to the monotonic clock.
            age = time.time() - frame.timestamp
            self._speech_end = time.monotonic() - age - frame.stop_secs
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._turns += 1
            # A turn the VAD didn't see end (there is no VAD) counts from now.
            self._waiting_since = time.monotonic() if self._speech_end is None else self._speech_end
        elif isinstance(frame, MetricsFrame):
            for data in frame.data:
                if isinstance(data, TTFBMetricsData):
                    self._ttfb_ms.setdefault(data.processor, round(data.value * 1000, 1))
        elif isinstance(frame, BotStartedSpeakingFrame) and self._waiting_since is not None:
            latency_ms = round((time.monotonic() - self._waiting_since) * 1000, 1)
            await self._emit({
                "turn": self._turns,
                "latency_ms": latency_ms,
                "ttfb_ms": dict(self._ttfb_ms),
            })
            self._start_over()

        await self.push_frame(frame, direction)

    def _start_over(self) -> None:
        self._speech_end = None
        self._waiting_since = None
        self._ttfb_ms.clear()

    async def _emit(self, figures: dict[str, Any]) -> None:
        """Pass one turn's figures on; a failure in `on_figures` is logged, the call goes on."""
        try:
            await self._on_figures(figures)
        except Exception:
            log.exception("%s: on_figures failed for turn %s", self, figures["turn"])
