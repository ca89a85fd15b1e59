"""Speech-to-text is asked for the caller's words at the start of each pause, not at its end.

Pipecat asks Deepgram to finalise when the VAD says the caller stopped, 0.2 s into the silence
(what Smart-Turn and the barge-in timing are tuned for), so with Deepgram's ~250 ms a turn
Smart-Turn judged finished waits for its words. Asked sooner, the words arrive sooner; the
turn is still decided at the VAD's stop. A caller who goes on after the pause just gives
speech-to-text more to transcribe (processors/reconnecting_stt.py marks only the answer to
the last request as final).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.turns.types import ProcessFrameResult

from processors.reconnecting_stt import FinalizeTranscriptFrame


class FinalizesAtPauses:
    """Mixin for Pipecat's `TurnAnalyzerUserTurnStopStrategy`: once per pause in the caller's
    turn, after `finalize_after_seconds` of it (`pause_seconds` reads the VAD), sends a
    `FinalizeTranscriptFrame` upstream to speech-to-text."""

    def __init__(self, *, pause_seconds: Callable[[], float], finalize_after_seconds: float,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pause_seconds = pause_seconds
        self._finalize_after = finalize_after_seconds
        self._caller_turn = False
        self._asked = False  # in the pause under way

    async def handle_user_turn_started(self) -> None:
        self._caller_turn = True
        await super().handle_user_turn_started()

    async def handle_user_turn_stopped(self) -> None:
        self._caller_turn = False
        await super().handle_user_turn_stopped()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        result = await super().process_frame(frame)
        if isinstance(frame, InputAudioRawFrame) and self._caller_turn:
            pause = self._pause_seconds()
            if pause == 0.0:
                self._asked = False
            elif not self._asked and pause >= self._finalize_after:
                self._asked = True
                # A final that came before now does not hold what the caller said since.
                self._transcript_finalized = False
                await self.push_frame(FinalizeTranscriptFrame(), FrameDirection.UPSTREAM)
        return result
