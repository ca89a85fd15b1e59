"""A turn that only Smart-Turn's verdict holds open is answered while it waits.

Smart-Turn judges some finished turns unfinished from the voice alone ("Could we do...
Tuesday afternoon?" on our recordings), and such a turn ends `TURN_INCOMPLETE_SECONDS` after
the VAD's stop, although its final transcript came long before and its words sound finished
(pipeline/unfinished_turns.py). The model is asked as soon as both are known, with Pipecat's
speculative inference: the caller aggregator runs it on a provisional copy of the context, and
the LLM service holds the answer (its SpeculationGate) until the turn ends. If the caller
speaks again first, the answer is dropped; if more words came in by the end of the turn, it is
dropped and the turn is answered afresh. Either way nothing of it is heard or kept.

A speculative answer that calls a tool waits for the end of the turn before the tool runs,
where Pipecat would withdraw the answer and ask the model again at the end of the turn: no
booking is made for a turn the caller goes on with, and none is asked for twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallFromLLM
from pipecat.turns.types import ProcessFrameResult, UserTurnSpeculation
from pipecat.utils.string import TextPartForConcatenation, concatenate_aggregated_text

from pipeline.unfinished_turns import sounds_unfinished


class AnswersDuringTheWait:
    """Mixin for Pipecat's `TurnAnalyzerUserTurnStopStrategy`: once the VAD has stopped, the
    analyzer has judged the turn unfinished, and the final transcript is in and sounds
    finished, runs the model speculatively; the end of the turn confirms that answer when no
    words came since, else withdraws it and asks the model as usual."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The turn's words, joined as the caller aggregator joins them into the context.
        self._words: list[TextPartForConcatenation] = []
        self._speculation: UserTurnSpeculation | None = None

    def _turn_words(self) -> str:
        return concatenate_aggregated_text(self._words)

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, TranscriptionFrame) and frame.text.strip():
            self._words.append(TextPartForConcatenation(
                frame.text, includes_inter_part_spaces=frame.includes_inter_frame_spaces))
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            self._speculation = None  # withdrawn by another part of the pipeline
        result = await super().process_frame(frame)
        if isinstance(frame, (TranscriptionFrame, VADUserStoppedSpeakingFrame)):
            await self._answer_if_only_the_voice_holds_the_turn()
        return result

    async def _answer_if_only_the_voice_holds_the_turn(self) -> None:
        if (self._speculation is not None or not self._vad_stopped or self._vad_user_speaking
                or self._turn_complete or not self._transcript_finalized):
            return
        words = self._turn_words()
        if words and not sounds_unfinished(words):
            self._speculation = UserTurnSpeculation(text=words)
            await self.trigger_user_turn_inference_triggered(speculation=self._speculation)

    async def trigger_user_turn_stopped(self, *, enable_user_speaking_frames: bool | None = None) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation.text == self._turn_words():
            # Answered already: the turn's end releases that answer, and the model is not
            # asked again.
            await self.trigger_user_turn_finalized(
                enable_user_speaking_frames=enable_user_speaking_frames, confirms_speculation=True)
            return
        if speculation is not None:
            await self.trigger_user_turn_speculation_cancelled()
        await super().trigger_user_turn_stopped(enable_user_speaking_frames=enable_user_speaking_frames)

    async def _discard_pending_end_of_turn(self) -> None:
        # Pipecat's, when the caller speaks again and at each end of a turn: an answer still
        # held then answers words the caller is adding to (or a turn ended some other way).
        if self._speculation is not None:
            self._speculation = None
            await self.trigger_user_turn_speculation_cancelled()
        await super()._discard_pending_end_of_turn()

    async def _reset(self) -> None:
        await super()._reset()
        self._words.clear()


class ToolsWaitForTheTurn:
    """Mixin for a Pipecat `LLMService`: the tools a speculative answer calls run once the
    turn it answers has ended (the inference is cancelled, this wait with it, if the caller
    goes on instead)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._turn_ended = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStoppedSpeakingFrame):
            self._turn_ended.set()  # the gate has released the answer by now

    async def run_function_calls(self, function_calls: Sequence[FunctionCallFromLLM]) -> None:
        if self._speculation_gate.is_speculating:  # Pipecat's record: is its turn still open?
            self._turn_ended.clear()
            await self._turn_ended.wait()
        await super().run_function_calls(function_calls)
