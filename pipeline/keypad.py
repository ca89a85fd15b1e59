"""What the caller's keys do on a call (processors/keypad.py gathers them).

On a reminder call, 1 confirms the appointment and 3 hands the caller to an advisor, each by
running that tool as if the model had called it (the same handler, its call and result in the
context, the model answering the result as usual); 2 tells the model the caller wants to move
it. Anything else keyed in (a phone number when speech fails: digits, then #) is told to the
model as what the caller keyed. Each entry is a caller turn in the call log.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.adapters.llm.schemas.direct_function import DirectFunctionWrapper
from pipecat.frames.frames import FunctionCallFromLLM
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import LLMService

from pipeline.session import CallSession
from pipeline.tools import CallTools
from processors.keypad import Keypad

CONFIRM, MOVE, PERSON = "1", "2", "3"  # the reminder greeting names them (lines.REMINDER_KEYS)

WANTS_TO_MOVE = ("The caller pressed 2 on the keypad: they want to move the appointment. Ask which"
                 " day suits them.")
KEYED_IN = "The caller keyed in on the phone's keypad: {keys}"


def call_keypad(session: CallSession, tools: CallTools, llm: LLMService, context: LLMContext) -> Keypad:
    appointment = session.start.appointment_id
    choices = (CONFIRM, MOVE, PERSON) if appointment is not None else ()

    async def entered(keys: str) -> str | None:
        await session.turn("caller", f"[keypad] {keys}")
        if keys not in choices:
            return KEYED_IN.format(keys=keys)
        if keys == MOVE:
            return WANTS_TO_MOVE
        if keys == CONFIRM:
            await _as_the_model(llm, context, tools.confirm_appointment, appointment_id=appointment)
        else:
            await _as_the_model(llm, context, tools.transfer_to_human,
                                reason="the caller pressed 3 on the keypad")
        return None

    return Keypad(entered, choices=choices)


async def _as_the_model(llm: LLMService, context: LLMContext, tool: Callable[..., Awaitable[None]],
                        **arguments: Any) -> None:
    """Run `tool` (a direct function of the call's) through the model's own machinery."""
    name = tool.__name__
    if not llm.has_function(name):
        # Pipecat registers the context's tools at the model's first request; a key can come first.
        llm.register_function(name, DirectFunctionWrapper(tool))
    await llm.run_function_calls([FunctionCallFromLLM(
        function_name=name, tool_call_id=f"keypad_{uuid.uuid4().hex[:24]}", arguments=arguments,
        context=context)])
