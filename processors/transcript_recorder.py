"""Reports each caller and agent turn as it happens, so a dropped call keeps what was said."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    LLMContextAssistantTurnFrame,
    LLMContextUserTurnFrame,
    TranscriptionFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

log = logging.getLogger(__name__)

Role = Literal["caller", "agent"]


class TranscriptRecorder(FrameProcessor):
    """Hands every committed turn to `on_turn`, and at hang-up the caller's uncommitted words.

    Sits between speech-to-text and the user context aggregator. The aggregators broadcast
    each turn they write to the LLM context, and those frames reach this position going
    upstream. Final transcriptions pass here going downstream before the user aggregator
    commits them, so they are held until a committed turn covers them or the call ends.
    `on_turn` is awaited in line, to keep the order of turns; it should only enqueue.
    """

    def __init__(self, on_turn: Callable[[Role, str], Awaitable[None]], **kwargs: Any) -> None:
        # Direct mode: frames are handled in the pushing task, not through this processor's two
        # queues; it only reads frames and enqueues, and every caller audio frame passes here.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._on_turn = on_turn
        self._uncommitted: list[str] = []
        # After the call ends, the user aggregator still commits the turn it was holding;
        # those words were reported from `_uncommitted` already.
        self._ended = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        if isinstance(frame, TranscriptionFrame):
            if frame.text.strip():
                self._uncommitted.append(frame.text.strip())
        elif isinstance(frame, LLMContextUserTurnFrame):
            if not self._ended:
                self._forget_committed(frame.text)
                await self._report("caller", frame.text)
        elif isinstance(frame, LLMContextAssistantTurnFrame):
            await self._report("agent", frame.text)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            self._ended = True
            words = " ".join(self._uncommitted)
            self._uncommitted.clear()
            await self._report("caller", words)

        await self.push_frame(frame, direction)

    def _forget_committed(self, committed: str) -> None:
        """Drop the held transcriptions up to the last one the committed turn contains.

        Any after that one passed here while the aggregator was already committing, and
        belong to the next turn. Earlier ones the turn leaves out (the aggregator skips words
        said while the caller is muted) are dropped too; if none matches, all are, so that
        nothing reported already comes back at hang-up.
        """
        covered = [i for i, text in enumerate(self._uncommitted) if text in committed]
        del self._uncommitted[: covered[-1] + 1 if covered else len(self._uncommitted)]

    async def _report(self, role: Role, text: str) -> None:
        """Pass a non-empty turn to `on_turn`; its failure is logged and the call goes on."""
        if not text.strip():
            return
        try:
            await self._on_turn(role, text.strip())
        except Exception:
            log.exception("%s: on_turn failed for a %s turn", self, role)
