"""The language model failing over the wire, as the caller hears it: a slow model gets the filler,
a failed attempt is retried once, a model that fails for good gets the apology and the transfer
offer, and in every case the caller's silence after speaking stays within the budget."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from config.lines import FILLER, MODEL_APOLOGY, MODEL_LOST, TO_THE_DESK
from config.settings import get_settings
from tests.audio import TEXTS, load
from tests.bot.conftest import DESK_NUMBER, Launcher
from tests.bot.test_calls import closed_log
from tests.fakes.openai import Call, Drop, Fail, Reply, Result, Stall, ToolCalls
from tests.fakes.twilio_caller import TwilioCaller, audible

BUDGET = 2.0  # seconds from the caller's last word to the agent's voice
MARGIN = 0.5  # for a loaded test machine
ANSWER = "Sure, I can help with that."


@pytest.fixture(autouse=True)
def _speaking_pace(launcher: Launcher) -> None:
    """The filler at the pace of speech: how long it plays decides the silence that follows a
    stalled model, and these tests measure that silence."""
    launcher.deepgram.tts_ms_per_char = 60


async def _say(caller: TwilioCaller, fixture: str) -> float:
    """The caller says `fixture`; returns the silence they then sit through."""
    await caller.say(load(fixture))
    return await caller.dead_air_since(time.monotonic(), timeout=15)


def _turns(log: dict[str, Any]) -> list[tuple[str, str]]:
    return [(turn["role"], turn["text"]) for turn in log["transcript"]]


async def test_a_slow_model_gets_the_filler_then_its_answer(launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Stall(Reply(ANSWER), 1.6))  # slow, yet inside the first-token budget
    caller = await launcher.ring("+16465550161")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        silence = await _say(caller, "book_oil_change")
        await launcher.deepgram.wait_for_spoken(3, timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()
    assert silence <= BUDGET + MARGIN, silence
    assert launcher.deepgram.spoken[1:] == [FILLER, ANSWER]
    assert len(launcher.openai.requests) == 1  # waited for, not retried
    log = await closed_log(caller.call_sid)
    assert _turns(log)[1:] == [("caller", TEXTS["book_oil_change"]), ("agent", f"{FILLER} {ANSWER}")]
    assert log["outcome"] == "caller_hung_up"


@pytest.mark.parametrize("first_attempt", [
    Fail(500),
    Fail(429, "Rate limit reached", "requests", "rate_limit_exceeded"),
    Drop(Reply("lost"), 0),  # the connection cut before the first token
    Stall(Reply("too late"), 30),  # no first token within the budget
], ids=["500", "429", "dropped", "stalled"])
async def test_a_failed_attempt_is_retried_once_and_answers(
        launcher: Launcher, first_attempt: Result) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(first_attempt, Reply(ANSWER))
    caller = await launcher.ring("+16465550162")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        silence = await _say(caller, "book_oil_change")
        await launcher.deepgram.wait_for_spoken(2 + isinstance(first_attempt, Stall), timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()
    assert silence <= BUDGET + MARGIN, silence
    # A stall used up the filler time; a quick failure was retried before it.
    expected = [FILLER, ANSWER] if isinstance(first_attempt, Stall) else [ANSWER]
    assert launcher.deepgram.spoken[1:] == expected
    first, retry = launcher.openai.requests
    assert retry.messages == first.messages  # the same question again
    assert launcher.policy.overruns == []
    log = await closed_log(caller.call_sid)
    assert _turns(log)[-1] == ("agent", " ".join(expected)) and log["outcome"] == "caller_hung_up"


async def test_a_model_failing_twice_apologises_and_the_caller_gets_a_person(
        launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"], TEXTS["speak_to_person"])
    launcher.policy.add(
        Fail(500), Fail(503),
        ToolCalls([Call("transfer_to_human", {"reason": "asked for a person"})]),
    )
    launcher.twilio.fail_next(endpoint="create")  # no warm transfer: the <Dial> asserted below
    caller = await launcher.ring("+16465550163")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        silence = await _say(caller, "book_oil_change")
        await launcher.deepgram.wait_for_spoken(2, timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        assert not caller.closed  # still on the line, and heard the offer
        await caller.say(load("speak_to_person"))
        await caller.wait_closed(timeout=30)
    assert silence <= BUDGET + MARGIN, silence
    assert launcher.deepgram.spoken[1] == MODEL_APOLOGY
    assert len(launcher.openai.requests) == 3  # two attempts at the first turn, one at the second
    # The context the next turn was answered from is a valid conversation: the apology as the
    # agent's last words, no half-made answer or tool call left behind.
    roles = [(m["role"], m.get("content")) for m in launcher.openai.requests[2].messages]
    assert [role for role, _ in roles] == ["system", "assistant", "user", "assistant", "user"]
    assert roles[3:] == [("assistant", MODEL_APOLOGY), ("user", TEXTS["speak_to_person"])]
    update = next(u for u in launcher.twilio.updates if u.call_sid == caller.call_sid)
    assert f"<Dial>{DESK_NUMBER}</Dial>" in (update.get("Twiml") or "")
    log = await closed_log(caller.call_sid)
    assert _turns(log)[1:4] == [("caller", TEXTS["book_oil_change"]), ("agent", MODEL_APOLOGY),
                                ("caller", TEXTS["speak_to_person"])]
    assert log["outcome"] == "transferred"


async def test_an_answer_asked_for_early_that_fails_apologises_once_the_turn_has_ended(
        launcher: Launcher) -> None:
    # Smart-Turn judges this recording unfinished, so the model is asked during the wait
    # (pipeline/early_answer.py); both attempts fail there, before the caller's turn has ended.
    launcher.deepgram.add_script(TEXTS["paused_tuesday"])
    launcher.policy.add(Fail(500), Fail(503))
    caller = await launcher.ring("+16465550168")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        before = caller.position()
        await caller.say(load("paused_tuesday"))
        said_until = time.monotonic()
        silence = await caller.dead_air_since(said_until, timeout=15)
        await launcher.deepgram.wait_for_spoken(2, timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()
    # Nothing of the agent while the caller spoke (the apology waited for the turn's end) ...
    assert not [e for e in caller.events[before:]
                if e.at < said_until and e.event == "media" and audible(e.payload)]
    assert silence <= BUDGET + MARGIN, silence
    # ... then the apology, once; and the model was not asked a third time for the turn.
    assert launcher.deepgram.spoken[1:] == [MODEL_APOLOGY]
    assert len(launcher.openai.requests) == 2
    log = await closed_log(caller.call_sid)
    assert _turns(log)[1:] == [("caller", "Could we do Tuesday afternoon?"), ("agent", MODEL_APOLOGY)]


async def test_a_model_still_failing_on_the_next_turn_hands_the_caller_to_the_desk(
        launcher: Launcher) -> None:
    """The model cannot make the transfer it offered: the call goes to the desk without it."""
    launcher.deepgram.add_script(TEXTS["book_oil_change"], TEXTS["speak_to_person"])
    launcher.policy.add(*[Fail(500)] * 4)
    caller = await launcher.ring("+16465550166")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        first = await _say(caller, "book_oil_change")
        await launcher.deepgram.wait_for_spoken(2, timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        second = await _say(caller, "speak_to_person")
        await caller.wait_closed(timeout=30)
    assert first <= BUDGET + MARGIN and second <= BUDGET + MARGIN, (first, second)
    assert launcher.deepgram.spoken[1:] == [MODEL_APOLOGY, MODEL_LOST + TO_THE_DESK]
    assert len(launcher.openai.requests) == 4 and launcher.policy.overruns == []
    update = next(u for u in launcher.twilio.updates if u.call_sid == caller.call_sid)
    assert f"<Dial>{DESK_NUMBER}</Dial>" in (update.get("Twiml") or "")
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "transferred"
    assert ("caller", TEXTS["speak_to_person"]) in _turns(log)


async def test_a_providers_own_model_failing_gets_the_apology_then_the_desk(
        launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """A custom LLM_PROVIDER has no budget of ours, but its errors are failed answers too."""
    monkeypatch.setenv("LLM_PROVIDER", "tests.bot.own_model:plain_openai")
    get_settings.cache_clear()
    launcher.deepgram.add_script(TEXTS["book_oil_change"], TEXTS["speak_to_person"])
    launcher.policy.add(*[Fail(401, "Incorrect API key provided.", "invalid_request_error")] * 2)
    caller = await launcher.ring("+16465550167")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        first = await _say(caller, "book_oil_change")
        await launcher.deepgram.wait_for_spoken(2, timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        second = await _say(caller, "speak_to_person")
        await caller.wait_closed(timeout=30)
    assert first <= BUDGET + MARGIN and second <= BUDGET + MARGIN, (first, second)
    assert launcher.deepgram.spoken[1:] == [MODEL_APOLOGY, MODEL_LOST + TO_THE_DESK]  # said once each
    assert len(launcher.openai.requests) == 2  # the provider's own: not retried by us
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "transferred"


@pytest.mark.parametrize("fault", ["stalled", "dropped"])
async def test_a_model_failing_mid_answer_keeps_its_words_and_apologises(
        launcher: Launcher, fault: str) -> None:
    answer = Reply(f"{ANSWER} Let me see what is open this week.")
    cut = len(ANSWER) + 5  # part-way through the second sentence
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Stall(answer, 30, cut) if fault == "stalled" else Drop(answer, cut))
    # Text-to-speech holds the words until the answer ends: a stall had the filler send them on.
    # The end has it say what it still held of the answer ("Let"), and the apology comes after.
    expected = ([f"{ANSWER} {FILLER}", "Let", MODEL_APOLOGY] if fault == "stalled"
                else [f"{ANSWER} Let", MODEL_APOLOGY])
    caller = await launcher.ring("+16465550164")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.say(load("book_oil_change"))
        said_at = time.monotonic()
        await caller.dead_air_since(said_at, timeout=15)
        await launcher.deepgram.wait_for_spoken(1 + len(expected), timeout=10)
        # The apology's audio follows its text at once, after a silence of its own: the log
        # holds what the caller heard, so the caller stays to hear it.
        await asyncio.sleep(0.5)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()
    # The agent's audio arrives paced in real time: a gap between its messages is a silence heard.
    arrivals = [said_at] + [event.at for event in caller.media_events if event.at >= said_at]
    longest = max(later - earlier for earlier, later in itertools.pairwise(arrivals))
    assert len(arrivals) > 1 and longest <= BUDGET + MARGIN, longest
    assert launcher.deepgram.spoken[1:] == expected
    assert len(launcher.openai.requests) == 1  # words were said: a retry would repeat them
    log = await closed_log(caller.call_sid)
    assert MODEL_APOLOGY in _turns(log)[-1][1] and log["outcome"] == "caller_hung_up"


async def test_a_turn_with_no_words_heard_is_still_answered(launcher: Launcher) -> None:
    """Pipecat ends a caller turn without words once it stops waiting for them (its user turn
    stop timeout) and asks the model nothing; the launcher tells the model no words came
    through, and it answers as to any turn: no dead air until the re-prompt."""
    launcher.deepgram.add_script(None)  # speech-to-text heard no words in the caller's sound
    launcher.policy.add(Reply("Sorry, I didn't catch that. Could you say it again?"))
    caller = await launcher.ring("+16465550165")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        silence = await _say(caller, "book_oil_change")
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()
    assert silence <= 5.0 + BUDGET + MARGIN, silence  # the turn's end without words, then the budget
    assert launcher.deepgram.spoken[1:] == ["Sorry, I didn't catch that. Could you say it again?"]
    assert len(launcher.openai.requests) == 1
    assert (await closed_log(caller.call_sid))["outcome"] == "caller_hung_up"
