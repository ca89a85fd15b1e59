"""The caller's keypad as whole entries: a menu key pressed alone, or digits keyed in.

Pipecat turns Twilio's `dtmf` messages into `InputDTMFFrame`s, and its `DTMFAggregator` joins
them into a `TranscriptionFrame`; but a transcription with no speech around it waits out the
turn detector's fallback (seconds) before the model hears it, and a menu key must act as
such rather than be read by the model as words. This processor keeps the keys out of the turn
machinery: the first key of an entry interrupts the agent; the entry ends with `#`, or with a
pause (`choice_secs` after a lone key that is one of `choices`, `pause_secs` otherwise); then
`on_entry(keys)` acts on it and may return words to tell the model, which go to the caller
aggregator as a user message that runs the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputDTMFFrame,
    LLMMessagesAppendFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

OnEntry = Callable[[str], Awaitable[str | None]]


class Keypad(FrameProcessor):
    def __init__(self, on_entry: OnEntry, *, choices: Collection[str] = (), choice_secs: float = 1.0,
                 pause_secs: float = 3.0, **kwargs: Any) -> None:
        # Direct mode: every caller audio frame passes here, and keys only start tasks.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._on_entry = on_entry
        self._choices = frozenset(choices)
        self._choice_secs = choice_secs
        self._pause_secs = pause_secs
        self._keys = ""
        self._timer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame):
            await self._pressed(frame.button)  # consumed: nothing past here reads keys
            return
        if isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop_timer()  # the call is over: half an entry is nobody's answer
            self._keys = ""
        await self.push_frame(frame, direction)

    async def _pressed(self, key: KeypadEntry) -> None:
        await self._stop_timer()
        if key is KeypadEntry.POUND:
            wait = 0.0
        else:
            if not self._keys:
                await self.broadcast_interruption()  # the caller is answering: the agent stops
            self._keys += key.value
            wait = self._choice_secs if self._keys in self._choices else self._pause_secs
        if self._keys:
            # In a task of its own, so that acting on an entry never holds up the caller's audio.
            self._timer = self.create_task(self._entered(wait))

    async def _entered(self, after: float) -> None:
        await asyncio.sleep(after)
        self._timer = None  # from here on the entry is taken: a key now starts the next one
        keys, self._keys = self._keys, ""
        words = await self._on_entry(keys)
        if words:
            await self.push_frame(LLMMessagesAppendFrame([{"role": "user", "content": words}], run_llm=True))

    async def _stop_timer(self) -> None:
        if self._timer is not None:
            await self.cancel_task(self._timer)
            self._timer = None
