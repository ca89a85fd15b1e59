"""A plug-in listed in its setting runs in a whole call: the example flags the upset caller in
the call's log, and the call goes on as before."""

from __future__ import annotations

import pytest

from tests.audio import load
from tests.bot.conftest import Launcher
from tests.bot.test_calls import closed_log
from tests.fakes.openai import Reply

UPSET = "This is ridiculous, it's the third time I've called about my brakes."


@pytest.fixture
def upset_caller_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before the launcher reads its settings.
    monkeypatch.setenv("PROCESSORS_AFTER_STT",
                       "pipeline.own_processors:card_redactor,examples.upset_caller:upset_caller")


async def test_the_listed_example_flags_an_upset_caller_in_the_call_log(
        upset_caller_listed: None, launcher: Launcher) -> None:
    launcher.deepgram.add_script(UPSET)
    launcher.policy.add(Reply("I'm sorry about that. Let me help you with your brakes."))
    caller = await launcher.ring("+16465550145")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)  # the greeting
        await caller.say(load("speak_to_person"))
        await caller.silence(1.0)
        await caller.wait_for_bot_silence(timeout=15)  # the answer
        await caller.hang_up()
    log = await closed_log(caller.call_sid)
    assert [(flag["name"], flag["detail"]) for flag in log["flags"]] == [
        ("upset_caller", "caller said: ridiculous, third time")]
    said = [(turn["role"], turn["text"]) for turn in log["transcript"]]
    assert ("caller", UPSET) in said
    assert ("agent", "I'm sorry about that. Let me help you with your brakes.") in said
