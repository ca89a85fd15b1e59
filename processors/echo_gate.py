"""On a speakerphone the agent hears itself: its voice comes back on the caller's line, some
20 dB down and 100-250 ms late, and the VAD and speech-to-text take it for the caller.

While the agent talks, caller audio much quieter than the agent's own recent voice is taken
for that echo and replaced by silence, before the VAD and speech-to-text hear it (a Geigel
double-talk detector, as echo cancellers use to decide who is talking). A caller speaking
over the agent is louder than the echo and passes, and once they do the gate stays open for
`hangover_seconds`, so the quiet parts of their words pass too. `EchoGate.voice()` is the
processor that tells the gate what the agent sends; the gate sits where caller audio comes in.

The gate is also the first to know that the caller may be talking over the agent: it says so
(`CallerOverAgentFrame`) at the first frame that passes, tens of milliseconds before the VAD can
confirm speech, so that the agent's voice can pause at once (pipeline/barge_in.py).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame, SystemFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

# How long the agent's voice can take to come back: the pacer's lead, the line's round
# trip, the room.
ECHO_WINDOW_SECONDS = 0.5
# Below this (16-bit RMS) a phone line carries hiss, not a voice.
LINE_NOISE_RMS = 200.0


@dataclass
class CallerOverAgentFrame(SystemFrame):
    """Sound on the caller's line louder than the agent's echo, while the agent talks."""


def _rms(audio: bytes) -> float:
    samples = np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0


class EchoGate(FrameProcessor):
    """Silences caller audio quieter than the agent's recent voice by more than `margin_db`
    (0: lets everything through)."""

    def __init__(self, *, margin_db: float, hangover_seconds: float = 0.3, **kwargs: object) -> None:
        # Direct mode (both halves): every 20 ms of audio either way passes here, and a queue
        # and a task hop each would only add to what a busy event loop runs behind.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._ratio = 10 ** (-margin_db / 20) if margin_db else 0.0  # 0 dB: no gate
        self._hangover = hangover_seconds
        self._agent: deque[tuple[float, float]] = deque()  # (sent at, level) of agent audio
        self._open_until = 0.0

    def voice(self) -> FrameProcessor:
        """The processor, on the agent's side of the pipeline, that reports what it says."""
        return _AgentVoice(self)

    def heard_agent(self, audio: bytes) -> None:
        self._agent.append((time.monotonic(), _rms(audio)))

    def _echo_level(self, now: float) -> float:
        while self._agent and self._agent[0][0] < now - ECHO_WINDOW_SECONDS:
            self._agent.popleft()
        return max((level for _, level in self._agent), default=0.0)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and direction is FrameDirection.DOWNSTREAM:
            now = time.monotonic()
            level, echo = _rms(frame.audio), self._echo_level(now)
            if level > self._ratio * echo:
                if echo and level > LINE_NOISE_RMS and now >= self._open_until:
                    await self.push_frame(CallerOverAgentFrame())
                self._open_until = now + self._hangover
            elif now >= self._open_until:
                frame.audio = bytes(len(frame.audio))
        await self.push_frame(frame, direction)


class _AgentVoice(FrameProcessor):
    def __init__(self, gate: EchoGate) -> None:
        super().__init__(enable_direct_mode=True)
        self._gate = gate

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame) and direction is FrameDirection.DOWNSTREAM:
            self._gate.heard_agent(frame.audio)
        await self.push_frame(frame, direction)
