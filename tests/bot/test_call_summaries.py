"""The advisor's summary over the wire: one structured request to the model after the call's log
is closed, stored in `call_logs.summary`; a failed request is tried again later."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

import crm
from config.settings import get_settings
from tests.audio import TEXTS, load
from tests.bot.conftest import Launcher
from tests.bot.test_calls import MARIA, closed_log
from tests.fakes.openai import Call, ChatRequest, ToolCalls

CALLBACK = "646-555-0188"  # a number the caller says: the summary request never carries it whole
SUMMARY = {"reason": "Wants an oil change and a call back.", "vehicle": "2019 Honda Civic",
           "actions": [], "open_questions": ["Is the shuttle running on Saturdays?"],
           "callback_needed": True, "callback_reason": "Asked to be called back."}


async def summarised(call_sid: str, within: float = 15.0) -> dict[str, Any]:
    """The call log once its summary is in (the launcher's worker writes it after the call)."""
    async with asyncio.timeout(within):
        while (log := await crm.get_call_log(call_sid)) is None or log["summary"] is None:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return log


def _request_details(request: ChatRequest) -> dict[str, Any]:
    return json.loads(request.messages[-1]["content"])


async def _call_and_hang_up(launcher: Launcher, said: str) -> str:
    launcher.deepgram.add_script(said)
    launcher.policy.add(ToolCalls([Call("end_call", {"reason": "done"})], text="Of course."))
    caller = await launcher.ring(MARIA)
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.say(load("book_oil_change"))
        await caller.wait_closed(timeout=30)
    return caller.call_sid


async def test_a_finished_call_gets_its_summary_after_the_log_is_closed(
        launcher: Launcher, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    launcher.openai.summary_answer = SUMMARY
    said = f"I need an oil change, please call me back at {CALLBACK}."
    call_sid = await _call_and_hang_up(launcher, said)
    log = await summarised(call_sid)
    assert log["summary"] == SUMMARY
    assert (log["summary_attempts"], log["summary_due_at"], log["outcome"]) == (1, None, "completed")

    [request] = launcher.openai.summary_requests
    assert request.model == get_settings().openai_model
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.authorization == "Bearer openai-test-key"
    details = _request_details(request)
    assert details["outcome"] == "completed" and details["direction"] == "inbound"
    turns = [(turn["role"], turn["text"]) for turn in details["transcript"]]
    assert turns[0][0] == "agent" and ("caller", said.replace(CALLBACK, "******0188")) in turns
    for whole in (CALLBACK, CALLBACK.replace("-", ""), MARIA):
        assert whole not in json.dumps(request.body), whole
        assert whole not in caplog.text, whole


async def test_a_caller_who_hangs_up_mid_call_still_gets_a_summary(launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["speak_to_person"])
    caller = await launcher.ring("+16465550144")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        speech = load("speak_to_person")
        await caller.say(speech[: len(speech) * 2 // 3])  # cut off while still talking
        await launcher.deepgram.wait_for_finals(1, timeout=5)
        await caller.hang_up()
    assert (await closed_log(caller.call_sid))["outcome"] == "caller_hung_up"
    log = await summarised(caller.call_sid)
    assert log["summary"]["reason"]
    details = _request_details(launcher.openai.summary_requests[-1])
    assert details["outcome"] == "caller_hung_up"
    assert ("caller", TEXTS["speak_to_person"]) in [(t["role"], t["text"]) for t in details["transcript"]]
    assert launcher.openai.requests == []  # the conversation's model was never asked: only the summary


async def test_a_failed_summary_request_leaves_the_call_closed_and_is_tried_again(
        launcher: Launcher, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SUMMARY_RETRY_SECONDS", "0.5")
    get_settings.cache_clear()
    launcher.openai.fail_summaries = 1
    call_sid = await _call_and_hang_up(launcher, "I need an oil change.")
    closed = await closed_log(call_sid)
    assert closed["outcome"] == "completed"

    log = await summarised(call_sid)
    assert [r.status for r in launcher.openai.summary_requests] == [500, 200]
    assert log["summary_attempts"] == 2 and log["ended_at"] == closed["ended_at"]
    failures = [r.getMessage() for r in caplog.records if r.name == "bot.summaries"]
    assert failures == [f"call {call_sid}: summary request failed (InternalServerError 500);"
                        " trying again in 0.5 s"]
