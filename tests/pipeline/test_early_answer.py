"""A turn Smart-Turn judges unfinished, whose words are all in and sound finished, is answered
during the wait: the model is asked once, before the turn ends, and the caller hears the
answer only after it; a caller who goes on gets that answer dropped, and a tool it wanted runs
only once the turn has ended.

Recorded phone audio ("Could we do... Tuesday afternoon?", which Smart-Turn judges unfinished)
in real time, through our speech-to-text client against the fake (finals 250 ms after each
Finalize), the caller's turn logic with Smart-Turn, and our LLM service against the fake model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    ErrorFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    UserTurnMessageAddedMessage,
)
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import run_test

from config.settings import Settings
from pipeline.llm_budget import BudgetedOpenAILLMService
from pipeline.turns import caller_turns
from processors.reconnecting_stt import ReconnectingDeepgramSTTService
from tests.audio import SAMPLE_RATE, TEXTS, load, silence
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.openai import Call, ChatRequest, Fail, FakeOpenAI, Reply, ToolCalls
from tests.pipeline.test_unfinished_turns import in_real_time
from tests.processors.support import PushOrder

ANSWER = "Tuesday at two works."
SLOTS = FunctionSchema(name="check_slots", description="Open slots on a day.",
                       properties={"day": {"type": "string"}}, required=["day"])


class _Call:
    """One caller turn (or two utterances) through speech-to-text, the caller's turn logic and
    the model: what the model was asked, what came down, and what the context was given."""

    def __init__(self, policy: Any, *, incomplete_seconds: float = 0.4) -> None:
        self.policy = policy
        self.settings = Settings(_env_file=None, turn_detection="smart-turn",
                                 turn_incomplete_seconds=incomplete_seconds)
        self.turns: list[tuple[float, str]] = []
        self.tool_ran_at: list[float] = []
        self.requests: list[ChatRequest] = []
        self.down: Sequence[Frame] = []  # what came down past the model
        self.up: Sequence[Frame] = []  # what went up out of the pipeline (errors)

    async def run(self, utterances: list[str], audio: bytes) -> None:
        context = LLMContext(tools=ToolsSchema(standard_tools=[SLOTS]))
        caller, agent = LLMContextAggregatorPair(context, user_params=caller_turns(self.settings))

        @caller.event_handler("on_user_turn_message_added")
        async def _added(_caller: object, message: UserTurnMessageAddedMessage) -> None:
            self.turns.append((time.monotonic(), message.content))

        async def check_slots(params: FunctionCallParams) -> None:
            self.tool_ran_at.append(time.monotonic())
            await params.result_callback({"slots": ["14:00"]})

        async with (FakeDeepgram(utterances, final_delay=0.25) as deepgram,
                    FakeOpenAI(self.policy, api_key="sk-test", chunk_chars=4) as model):
            stt = ReconnectingDeepgramSTTService(api_key="key", base_url=deepgram.ws_base_url,
                                                 reconnect_secs=5, buffer_secs=5)
            llm = BudgetedOpenAILLMService(api_key="sk-test", base_url=model.api_base,
                                           first_token_secs=2, answer_secs=5)
            llm.register_function("check_slots", check_slots)
            heard = PushOrder()
            _, self.up = await run_test(
                Pipeline([stt, caller, llm, heard, agent]), frames_to_send=in_real_time(audio),
                pipeline_params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE))
            self.down = heard.down
            self.requests = list(model.requests)

    def said(self) -> str:
        return "".join(frame.text for frame in self.down if isinstance(frame, LLMTextFrame))

    def index(self, kind: type[Frame]) -> int:
        return next(i for i, frame in enumerate(self.down) if isinstance(frame, kind))


async def test_a_turn_held_only_by_the_verdict_is_answered_during_the_wait() -> None:
    call = _Call([Reply(ANSWER)])
    await call.run([TEXTS["paused_tuesday"]], load("paused_tuesday") + silence(1.5))

    whole = "Could we do Tuesday afternoon?"
    assert [text for _, text in call.turns] == [whole]
    # Asked once, on the whole sentence, while the turn was still open ...
    assert len(call.requests) == 1 and call.requests[0].last_user_text() == whole
    turn_ended = call.turns[0][0]
    assert call.requests[0].received_at < turn_ended - 0.1
    # ... and the answer came down only behind the end of the turn.
    assert call.said() == ANSWER
    assert call.index(UserStoppedSpeakingFrame) < call.index(LLMTextFrame)


async def test_a_caller_who_goes_on_never_hears_the_early_answer() -> None:
    # A long wait after the verdict, so that the caller's next words come within it.
    call = _Call(lambda request: Reply(f"Answer to: {request.last_user_text()}"), incomplete_seconds=1.0)
    await call.run([TEXTS["paused_tuesday"], TEXTS["yes"]],
                   load("paused_tuesday") + silence(0.8) + load("yes") + silence(2.0))

    whole = "Could we do Tuesday afternoon? Yes."
    assert [text for _, text in call.turns] == [whole]
    # The model answered the first sentence early; that answer was withdrawn and never passed
    # on, and the turn was answered once it ended, whole.
    assert [request.last_user_text() for request in call.requests] == [
        "Could we do Tuesday afternoon?", whole]
    assert any(isinstance(frame, EagerEndOfTurnCancelFrame) for frame in call.down)
    assert call.said() == f"Answer to: {whole}"


async def test_a_tool_the_early_answer_calls_runs_once_the_turn_has_ended() -> None:
    def policy(request: ChatRequest) -> Reply | ToolCalls:
        if not request.tool_results():
            return ToolCalls([Call("check_slots", {"day": "Tuesday"}, id="call_1")])
        return Reply(ANSWER)

    call = _Call(policy)
    await call.run([TEXTS["paused_tuesday"]], load("paused_tuesday") + silence(1.5))

    assert len(call.turns) == 1 and len(call.tool_ran_at) == 1
    assert call.tool_ran_at[0] >= call.turns[0][0]  # not before the caller had finished
    # The early request, then the one with the tool's result: not asked again for the turn.
    assert len(call.requests) == 2 and call.requests[1].tool_results() == {"call_1": {"slots": ["14:00"]}}
    assert call.said() == ANSWER


async def test_a_tool_the_early_answer_wanted_never_runs_if_the_caller_goes_on() -> None:
    def policy(request: ChatRequest) -> Reply | ToolCalls:
        if request.last_user_text() == "Could we do Tuesday afternoon?":
            return ToolCalls([Call("check_slots", {"day": "Tuesday"}, id="call_1")])
        return Reply("Sure.")

    call = _Call(policy, incomplete_seconds=1.0)
    await call.run([TEXTS["paused_tuesday"], TEXTS["no"]],
                   load("paused_tuesday") + silence(0.8) + load("no") + silence(2.0))

    assert [text for _, text in call.turns] == ["Could we do Tuesday afternoon? No."]
    assert call.tool_ran_at == []
    assert [request.last_user_text() for request in call.requests][-1] == "Could we do Tuesday afternoon? No."
    assert call.said() == "Sure."


async def test_an_early_answer_that_fails_is_reported_once_behind_the_end_of_the_turn() -> None:
    # The model fails the early request and its retry: the call hears its apology (on the
    # ErrorFrame, pipeline/call.py) as for any failed answer, and the failed answer's end comes
    # down only behind the turn's end, where the apology then follows it. The model is not asked
    # a third time for the same turn.
    call = _Call([Fail(500), Fail(500), Reply("never asked for")])
    await call.run([TEXTS["paused_tuesday"]], load("paused_tuesday") + silence(1.5))

    assert [text for _, text in call.turns] == ["Could we do Tuesday afternoon?"]
    assert [request.status for request in call.requests] == [500, 500]
    assert len([frame for frame in call.up if isinstance(frame, ErrorFrame)]) == 1
    assert call.index(UserStoppedSpeakingFrame) < call.index(LLMFullResponseEndFrame)
    assert call.said() == ""
