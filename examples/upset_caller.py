"""A plug-in processor to copy: flags a caller who sounds upset, once per call, in the call log.

It watches the caller's transcriptions, so it goes at the point after speech-to-text, behind
the card redactor (README, "Write your own processor"):

    PROCESSORS_AFTER_STT=pipeline.own_processors:card_redactor,examples.upset_caller:upset_caller
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import Frame, TranscriptionFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipeline.plugins import PluginContext

FLAG = "upset_caller"

# Words and phrases of a caller losing patience, profanity among them.
_CUES = re.compile(
    r"\b(ridiculous|unacceptable|angry|furious|fed up|third time|cancel everything|"
    r"damn|hell|crap|shit\w*|fuck\w*)\b",
    re.IGNORECASE,
)


class UpsetCaller(FrameProcessor):
    """Calls `on_upset(FLAG, detail)` for the first final transcription that holds one of `_CUES`;
    `detail` names the cues heard, never the caller's sentence. Passes every frame on."""

    def __init__(self, on_upset: Callable[[str, str], None], **kwargs: Any) -> None:
        # Direct mode: every frame of the caller's audio passes here too, and only needs a look.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._on_upset = on_upset
        self._flagged = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        # Final transcriptions only: interim ones are guesses, still being revised.
        if isinstance(frame, TranscriptionFrame) and not self._flagged:
            cues = sorted({cue.lower() for cue in _CUES.findall(frame.text)})
            if cues:
                self._flagged = True
                self._on_upset(FLAG, "caller said: " + ", ".join(cues))

        await self.push_frame(frame, direction)


def upset_caller(context: PluginContext) -> UpsetCaller:
    """The factory the setting names: called once per call, with the call's context."""
    return UpsetCaller(on_upset=context.flag)
