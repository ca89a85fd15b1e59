"""Says a short filler while a slow tool runs, so the caller doesn't hear dead air."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class ToolFiller(FrameProcessor):
    """Speaks one filler when a batch of function calls has no result after `delay_secs`.

    Sits after the LLM, before TTS, where the LLM's FunctionCallsStartedFrame,
    FunctionCallResultFrame and FunctionCallCancelFrame pass going downstream. The phrase
    is the one for the batch's first tool, else `default_phrase`; it goes downstream to
    TTS and is added to the LLM context like anything the agent says.
    """

    def __init__(
        self,
        phrases: Mapping[str, str],
        default_phrase: str,
        delay_secs: float = 0.7,
        **kwargs: Any,
    ) -> None:
        # Direct mode: frames are handled in the pushing task, not through this processor's two
        # queues; it only reads frames and arms a timer, and an interruption passes here on
        # its way to the output transport's `clear`.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._delay_secs = delay_secs
        self._phrases = phrases
        self._default_phrase = default_phrase
        self._running_calls: set[str] = set()  # tool_call_ids of the batch without a result
        self._timer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        if isinstance(frame, FunctionCallsStartedFrame) and frame.function_calls:
            await self._cancel_timer()
            self._running_calls = {call.tool_call_id for call in frame.function_calls}
            first = frame.function_calls[0].function_name
            phrase = self._phrases.get(first, self._default_phrase)
            self._timer = self.create_task(self._fill_after_delay(phrase), "filler_timer")
        elif isinstance(frame, (FunctionCallResultFrame, FunctionCallCancelFrame)):
            self._running_calls.discard(frame.tool_call_id)
            if not self._running_calls:
                await self._cancel_timer()
        elif isinstance(frame, (InterruptionFrame, EndFrame, CancelFrame)):
            await self._cancel_timer()

        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._cancel_timer()

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer:
            await self.cancel_task(timer)

    async def _fill_after_delay(self, phrase: str) -> None:
        await asyncio.sleep(self._delay_secs)
        self._timer = None  # fired: a result arriving now must not cancel it half-way
        await self.push_frame(TTSSpeakFrame(phrase))
