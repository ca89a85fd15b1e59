"""BudgetedOpenAILLMService against the fake OpenAI server: the first-token and whole-answer
budgets, the one retry, no SDK retries, and the one ErrorFrame of an answer that failed for good
(the call apologises on it)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pipecat.frames.frames import ErrorFrame, Frame, LLMContextFrame, LLMFullResponseEndFrame, LLMTextFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.llm_budget import BudgetedOpenAILLMService
from tests.fakes.openai import Drop, Fail, FakeOpenAI, Reply, Result, Stall

FIRST_TOKEN = 0.5
ANSWER = 2.0


async def _ask(*steps: Result, wait: float = 2.5, chunk_delay: float = 0.0,
               ) -> tuple[FakeOpenAI, Sequence[Frame], Sequence[Frame]]:
    """One completion of one question: the fake's record, what came down and what went up."""
    async with FakeOpenAI(list(steps), api_key="sk-test", chunk_chars=4, chunk_delay=chunk_delay) as fake:
        llm = BudgetedOpenAILLMService(api_key="sk-test", base_url=fake.api_base,
                                       first_token_secs=FIRST_TOKEN, answer_secs=ANSWER)
        context = LLMContext(messages=[{"role": "user", "content": "Any slots tomorrow?"}])
        down, up = await run_test(llm, frames_to_send=[LLMContextFrame(context), SleepFrame(wait)])
    assert isinstance(down[-1], LLMFullResponseEndFrame)  # every completion ends, failed or not
    return fake, down, up


def _text(down: Sequence[Frame]) -> str:
    return "".join(f.text for f in down if isinstance(f, LLMTextFrame))


def _errors(up: Sequence[Frame]) -> list[str]:
    return [f.error for f in up if isinstance(f, ErrorFrame)]


async def test_an_answer_in_time_is_passed_on() -> None:
    fake, down, up = await _ask(Reply("Ten works."), wait=0.5)
    assert _text(down) == "Ten works." and _errors(up) == [] and len(fake.requests) == 1


async def test_one_failure_before_the_first_token_is_retried_at_once() -> None:
    for first in (Fail(500), Fail(429), Drop(Reply("lost"), 0), Stall(Reply("late"), 5)):
        fake, down, up = await _ask(first, Reply("Ten works."), wait=1.0)
        assert len(fake.requests) == 2, first  # ours, not the SDK's: it would have made three
        assert _text(down) == "Ten works." and _errors(up) == [], first


async def test_two_failures_end_in_one_pipecat_error() -> None:
    fake, down, up = await _ask(Stall(Reply("late"), 5), Stall(Reply("late"), 5))
    assert len(fake.requests) == 2 and _text(down) == ""
    assert _errors(up) == ["Error during completion: no first token within 0.5 s"]
    first, retry = fake.requests
    assert FIRST_TOKEN * 0.9 <= retry.received_at - first.received_at < FIRST_TOKEN + 0.5  # not 5 s
    assert all(request.disconnected for request in fake.requests)


async def test_a_rejected_key_is_not_retried() -> None:
    fake, _, up = await _ask(Fail(401, "Incorrect API key provided.", "invalid_request_error"))
    assert len(fake.requests) == 1 and len(_errors(up)) == 1


async def test_a_pause_mid_answer_fails_it_after_its_words() -> None:
    fake, down, up = await _ask(Stall(Reply("I can do Tuesday at ten."), 5, 8))
    assert len(fake.requests) == 1  # words were out: a retry would say them twice
    assert _text(down) == "I can do"
    errors = _errors(up)
    assert len(errors) == 1 and "paused" in errors[0]


async def test_a_cut_mid_answer_fails_it_after_its_words() -> None:
    fake, down, up = await _ask(Drop(Reply("I can do Tuesday at ten."), 8), wait=1.0)
    assert len(fake.requests) == 1 and _text(down) == "I can do" and len(_errors(up)) == 1


async def test_an_answer_running_past_its_budget_is_cut() -> None:
    # Each piece comes well within the pause allowed; all of them take longer than the answer may.
    fake, down, up = await _ask(Reply("word " * 40), chunk_delay=0.1, wait=3.0)
    assert len(fake.requests) == 1 and len(_errors(up)) == 1
    assert 0 < len(_text(down)) < len("word " * 40)


async def test_the_calls_on_one_event_loop_share_one_http_client() -> None:
    async with FakeOpenAI([Reply("One."), Reply("Two.")], api_key="sk-test") as fake:
        services = [BudgetedOpenAILLMService(api_key="sk-test", base_url=fake.api_base,
                                             first_token_secs=FIRST_TOKEN, answer_secs=ANSWER)
                    for _ in range(2)]
        answers = []
        for llm in services:
            context = LLMContext(messages=[{"role": "user", "content": "Any slots tomorrow?"}])
            down, _ = await run_test(llm, frames_to_send=[LLMContextFrame(context), SleepFrame(0.5)])
            answers.append(_text(down))
    assert answers == ["One.", "Two."]
    assert services[0]._client._client is services[1]._client._client
    elsewhere = await asyncio.to_thread(
        asyncio.run, _client_on_a_new_loop(fake.api_base))  # another loop, another client
    assert elsewhere is not services[0]._client._client


async def _client_on_a_new_loop(base_url: str) -> object:
    llm = BudgetedOpenAILLMService(api_key="sk-test", base_url=base_url,
                                   first_token_secs=FIRST_TOKEN, answer_secs=ANSWER)
    return llm._client._client
