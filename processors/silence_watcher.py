"""Re-prompts a caller who has gone quiet, then says goodbye and ends the call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    EndWorkerFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

log = logging.getLogger(__name__)


class SilenceWatcher(FrameProcessor):
    """Speaks `reprompts` one by one after `timeout_secs` of silence, then `goodbye`, and ends.

    Sits after the LLM, before TTS. Silence starts when the agent stops speaking (the output
    transport's BotStoppedSpeakingFrame, going upstream here) or a caller turn ends (the user
    aggregator's UserStoppedSpeakingFrame, going downstream: an empty turn, say a cough, gets
    no answer), and lasts until someone speaks. It does not start while the caller is
    mid-turn (a barge-in stops the agent before the caller has finished), while the agent
    speaks, or while a function call runs (the LLM's function-call frames, going downstream).
    What it says goes downstream to TTS and into the LLM context like anything the agent
    says. It ends the call with an EndWorkerFrame pushed downstream behind the goodbye, which
    TTS and the output transport hold until the goodbye has played; the worker then sends
    the EndFrame. Only caller speech resets the count of re-prompts.
    """

    def __init__(
        self,
        timeout_secs: float,
        reprompts: Sequence[str],
        goodbye: str,
        on_give_up: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        # Direct mode: frames are handled in the pushing task, not through this processor's two
        # queues; it only reads frames and arms a timer, and an interruption passes here on
        # its way to the output transport's `clear`.
        super().__init__(enable_direct_mode=True, **kwargs)
        self._timeout_secs = timeout_secs
        self._reprompts = list(reprompts)
        self._goodbye = goodbye
        self._on_give_up = on_give_up
        self._unanswered = 0  # re-prompts spoken since the caller last spoke
        self._agent_speaking = False
        self._caller_speaking = False
        self._running_calls: set[str] = set()  # tool_call_ids without a result yet
        self._timer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        if isinstance(frame, BotStoppedSpeakingFrame):
            self._agent_speaking = False
            await self._arm_if_quiet()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._caller_speaking = False
            await self._arm_if_quiet()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._caller_speaking = True
            self._unanswered = 0
            await self._disarm()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._agent_speaking = True
            await self._disarm()
        elif isinstance(frame, FunctionCallsStartedFrame):
            self._running_calls.update(call.tool_call_id for call in frame.function_calls)
            await self._disarm()
        elif isinstance(frame, (FunctionCallResultFrame, FunctionCallCancelFrame)):
            self._running_calls.discard(frame.tool_call_id)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            await self._disarm()

        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._disarm()

    async def _arm_if_quiet(self) -> None:
        """(Re)start the timer, unless someone is speaking or a function call is running."""
        if self._agent_speaking or self._caller_speaking or self._running_calls:
            return
        await self._disarm()
        self._timer = self.create_task(self._wait_for_caller(), "silence_timer")

    async def _disarm(self) -> None:
        timer, self._timer = self._timer, None
        if timer:
            await self.cancel_task(timer)

    async def _wait_for_caller(self) -> None:
        await asyncio.sleep(self._timeout_secs)
        # Fired: the agent speaking from here on must not cancel the goodbye half-way.
        self._timer = None
        if self._unanswered < len(self._reprompts):
            self._unanswered += 1
            await self.push_frame(TTSSpeakFrame(self._reprompts[self._unanswered - 1]))
            return
        await self.push_frame(TTSSpeakFrame(self._goodbye))
        if self._on_give_up:
            try:
                await self._on_give_up()
            except Exception:
                log.exception("%s: on_give_up failed; ending the call anyway", self)
        await self.push_frame(EndWorkerFrame(reason="no input from the caller"))
