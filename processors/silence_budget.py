"""Keeps the caller from sitting in silence while the agent works out its answer: one filler when
nothing is on its way to the caller soon enough, an apology with a transfer offer when the
language model's answer failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    ControlFrame,
    EndFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


@dataclass
class AnswerFailedFrame(ControlFrame):
    """The language model's answer failed for good: whatever it already said stands, and the
    caller needs to hear what happens next. The call queues it when the model reports an
    ErrorFrame, whichever service that is; it reaches SilenceBudget through the model, behind
    the end of the failed response, so the apology follows any words of it text-to-speech held."""

    reason: str = ""


class SilenceBudget(FrameProcessor):
    """Speaks at most one filler per caller turn, and the apology when an answer fails.

    Sits after the LLM, before TTS. The agent owes the caller words from when the model starts
    an answer (the caller's turn has just ended, or a tool's result came back) or starts tools,
    until something is said for it (a TTSSpeakFrame, such as a tool's own words), the caller
    speaks or the call ends. While it owes them and the caller hears nothing, the filler falls
    due `filler_secs` after the wait began, or after the agent's voice stopped (the output
    transport's BotStartedSpeakingFrame and BotStoppedSpeakingFrame, going up) if the model has
    not given words since. The model's text does not stop a timer already running:
    text-to-speech may hold the words until the answer is complete, and a filler then also
    sends on what it held. The filler is the phrase for the running batch's first tool, else
    `default_phrase`. An AnswerFailedFrame has `apology` said at once, which offers a transfer
    the model can make on the caller's next turn; when that answer fails as well (`lost_after`
    failed answers in a row: a response that starts after one that did not fail counts
    again from zero), the model cannot make it, and `on_lost` is called instead. The
    filler and the apology go downstream to TTS and into the LLM context like anything the
    agent says, so the context stays a valid conversation for the next turn.
    """

    def __init__(
        self,
        *,
        default_phrase: str,
        tool_phrases: Mapping[str, str],
        apology: str,
        filler_secs: float,
        on_lost: Callable[[], Awaitable[None]],
        lost_after: int = 2,
        **kwargs: Any,
    ) -> None:
        # Direct mode: frames are handled in the pushing task, not through this processor's two
        # queues; it only reads frames and arms a timer, and an interruption passes here on its
        # way to the output transport's `clear`.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._default_phrase = default_phrase
        self._tool_phrases = tool_phrases
        self._apology = apology
        self._filler_secs = filler_secs
        self._on_lost = on_lost
        self._lost_after = lost_after
        self._failures = 0  # answers failed in a row
        self._failed = False  # the latest answer failed
        self._phrase = default_phrase
        self._filled = False  # a filler was said since the caller last spoke
        self._waiting = False  # the agent owes the caller words
        self._answered = False  # the model gave words since the wait began
        self._speaking = False  # the caller hears the agent right now
        self._running_calls: set[str] = set()  # tool_call_ids of the batch without a result
        self._timer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        if isinstance(frame, LLMFullResponseStartFrame):
            if not self._failed:  # a failure is only known after its response's end
                self._failures = 0
            self._failed = False
            self._wait(self._default_phrase)
        elif isinstance(frame, FunctionCallsStartedFrame) and frame.function_calls:
            self._running_calls = {call.tool_call_id for call in frame.function_calls}
            self._wait(self._tool_phrases.get(frame.function_calls[0].function_name, self._default_phrase))
        elif isinstance(frame, FunctionCallResultFrame):
            # The timer goes on: the model answers next (its start keeps the deadline), or the
            # tool says its own words.
            self._running_calls.discard(frame.tool_call_id)
        elif isinstance(frame, FunctionCallCancelFrame):
            self._running_calls.discard(frame.tool_call_id)
            if not self._running_calls:
                await self._stop_waiting()
        elif isinstance(frame, LLMTextFrame) and frame.text.strip():
            self._answered = True
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._speaking = True
            await self._cancel_timer()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._speaking = False
            if self._waiting and not self._answered:
                self._start_timer()
        elif isinstance(frame, TTSSpeakFrame):
            await self._stop_waiting()
        elif isinstance(frame, AnswerFailedFrame):
            self._failed = True
            self._failures += 1
            await self._stop_waiting()
            await self.push_frame(frame, direction)
            if self._failures >= self._lost_after:
                await self._on_lost()
            else:
                await self.push_frame(TTSSpeakFrame(self._apology))
            return
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._filled = False
            self._running_calls = set()
            await self._stop_waiting()
        elif isinstance(frame, (InterruptionFrame, EndFrame, CancelFrame)):
            await self._stop_waiting()

        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._cancel_timer()

    def _wait(self, phrase: str) -> None:
        """The agent owes words again; a timer already running keeps its deadline, counted from
        the end of the caller's turn, and takes the newer phrase."""
        self._phrase = phrase
        self._waiting = True
        self._answered = False
        if not self._speaking:
            self._start_timer()

    def _start_timer(self) -> None:
        if self._filled or self._timer is not None:
            return
        self._timer = self.create_task(self._fill_after_delay(), "filler_timer")

    async def _stop_waiting(self) -> None:
        self._waiting = False
        await self._cancel_timer()

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer:
            await self.cancel_task(timer)

    async def _fill_after_delay(self) -> None:
        await asyncio.sleep(self._filler_secs)
        self._timer = None  # fired: a result arriving now must not cancel it half-way
        self._filled = True
        await self.push_frame(TTSSpeakFrame(self._phrase))
