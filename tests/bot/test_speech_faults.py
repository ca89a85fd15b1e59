"""Whole calls whose speech services fail, over real sockets: the fake Deepgram drops or refuses
its sockets or stalls, and the caller is still heard, hears the agent within its budget, or is
handed to the service desk by Twilio; the call log says how the call ended."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from config import lines
from config.settings import get_settings
from pipeline.clips import clip
from tests.audio import TEXTS, load
from tests.bot.conftest import DESK_NUMBER, Launcher
from tests.bot.test_calls import closed_log
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.openai import Reply
from tests.fakes.twilio_caller import TwilioCaller

SILENCE_BUDGET = 2.0  # from the end of the caller's turn, as the issue sets it
MARGIN = 1.0  # a loaded 2-core machine
# A stalled greeting: the first try's and the retry's timeouts pass before the clip plays.
STALL_BUDGET = 1.5 + 1.0
# Later words: the filler clip plays at the first timeout. Tighter than MARGIN, so that waiting
# for the retry's timeout as well (the greeting's way) fails it.
FILLER_MARGIN = 0.5
ANSWER = "Sure, what day works for you?"


def transcript(log: dict[str, Any]) -> list[tuple[str, str]]:
    return [(turn["role"], turn["text"]) for turn in log["transcript"]]


def settings_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


async def handed_to_the_desk(launcher: Launcher, caller: TwilioCaller) -> str:
    """The TwiML the call was redirected to."""
    await launcher.twilio.wait_until(
        lambda: any(u.call_sid == caller.call_sid and u.get("Twiml") for u in launcher.twilio.updates), 20)
    update = next(u for u in launcher.twilio.updates if u.call_sid == caller.call_sid and u.get("Twiml"))
    twiml = update.get("Twiml") or ""
    assert f"<Say>{lines.TO_THE_DESK.strip()}</Say>" in twiml and f"<Dial>{DESK_NUMBER}</Dial>" in twiml
    assert launcher.twilio.hangups == []  # a hang-up would cut the transfer off
    return twiml


async def speak_and_measure(caller: TwilioCaller, name: str) -> float:
    """The caller says fixture `name`; the silence they then sit through."""
    await caller.say(load(name))
    return await caller.dead_air_since(time.monotonic(), timeout=10)


async def test_caller_speaking_as_the_stt_socket_drops_is_still_heard(launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Reply(ANSWER))
    caller = await launcher.ring("+16465550161")
    async with caller:
        await caller.wait_for_event("media", timeout=5)
        await caller.wait_for_bot_silence(timeout=15)
        assert await launcher.deepgram.drop_listen() == 1
        dead_air = await speak_and_measure(caller, "book_oil_change")
        request = (await launcher.openai.wait_for_requests(1, timeout=10))[0]
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()

    assert request.last_user_text() == TEXTS["book_oil_change"]  # the model got the words
    assert len(launcher.deepgram.stt_connections) == 2
    assert dead_air <= SILENCE_BUDGET + MARGIN
    log = await closed_log(caller.call_sid)
    assert ("caller", TEXTS["book_oil_change"]) in transcript(log)
    assert log["outcome"] == "caller_hung_up"


async def test_words_said_while_stt_refuses_to_reconnect_are_heard_once_it_is_back(
        launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Reply(ANSWER))
    caller = await launcher.ring("+16465550162")

    async def back_after(seconds: float) -> None:
        await asyncio.sleep(seconds)
        launcher.deepgram.refuse_listen = None

    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        launcher.deepgram.refuse_listen = 503
        await launcher.deepgram.drop_listen()
        comes_back = asyncio.create_task(back_after(1.2))  # mid-sentence
        dead_air = await speak_and_measure(caller, "book_oil_change")
        await comes_back
        request = (await launcher.openai.wait_for_requests(1, timeout=10))[0]
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()

    assert launcher.deepgram.refused["/v1/listen"] >= 2  # retried while refused
    assert request.last_user_text() == TEXTS["book_oil_change"]
    assert dead_air <= SILENCE_BUDGET + MARGIN
    log = await closed_log(caller.call_sid)
    assert ("caller", TEXTS["book_oil_change"]) in transcript(log)


async def test_stt_gone_for_good_apologises_and_hands_the_caller_to_the_desk(
        launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_env(monkeypatch, STT_RECONNECT_SECONDS="1")
    caller = await launcher.ring("+16465550163")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        launcher.deepgram.refuse_listen = 503
        await launcher.deepgram.drop_listen()
        await handed_to_the_desk(launcher, caller)
        await caller.wait_closed(timeout=10)

    assert launcher.deepgram.spoken[-1] == lines.LINE_TROUBLE  # the voice still worked
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "error"
    assert ("agent", lines.LINE_TROUBLE) in transcript(log)


async def test_a_stalled_greeting_is_said_again_then_played_from_its_clip(launcher: Launcher) -> None:
    launcher.deepgram.tts_stalled = True
    caller = await launcher.ring("+16465550164")
    async with caller:
        await caller.wait_for_event("media", timeout=10)
        dead_air = caller.media_events[0].at - (caller.connected_at or 0)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.hang_up()

    speaks = [m["text"].strip() for c in launcher.deepgram.tts_connections for m in c.messages
              if m.get("type") == "Speak"]
    assert len(speaks) == 2 and speaks[0] == speaks[1]  # said, then said again
    assert speaks[0].startswith("Thanks for calling Lakeside Motors Service")
    assert dead_air <= STALL_BUDGET + MARGIN
    # The whole clip, as mu-law (a byte a sample, where the clip has two).
    assert len(caller.received_audio) >= 0.95 * len(clip("greeting").audio) / 2
    log = await closed_log(caller.call_sid)
    assert ("agent", lines.GREETING_FALLBACK) in transcript(log)
    assert log["outcome"] == "caller_hung_up"  # the call went on after the clip


def flushes(deepgram: FakeDeepgram) -> int:
    """Flush messages text-to-speech got, stalled or not: one for each thing said."""
    return sum(m.get("type") == "Flush" for c in deepgram.tts_connections for m in c.messages)


def agent_turns_after(said: list[tuple[str, str]], caller_text: str) -> list[str]:
    """What the call log has the agent say after the caller said `caller_text`."""
    return [text for role, text in said[said.index(("caller", caller_text)) + 1:] if role == "agent"]


def samples(seconds: float) -> int:
    """How many mu-law bytes the caller gets for `seconds` of audio."""
    return int(seconds * 8000)


async def test_a_voice_stalling_mid_call_plays_the_filler_then_the_answer_once_it_is_back(
        launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Reply(ANSWER))
    caller = await launcher.ring("+16465550169")
    async with caller:
        await caller.wait_for_event("media", timeout=10)  # the greeting is playing
        await caller.wait_for_bot_silence(timeout=15)
        heard_before = len(caller.heard_audio())
        launcher.deepgram.tts_stalled = True
        asked_before = flushes(launcher.deepgram)
        await caller.say(load("book_oil_change"))
        spoke_until = time.monotonic()
        # The answer went into the stalled voice and was lost there; the voice then comes back
        # for what it is asked next.
        await launcher.deepgram.wait_until(lambda: flushes(launcher.deepgram) > asked_before, 10)
        launcher.deepgram.tts_stalled = False
        dead_air = await caller.dead_air_since(spoke_until, timeout=10)
        await launcher.deepgram.wait_until(lambda: ANSWER in launcher.deepgram.spoken, 10)
        await caller.wait_for_bot_silence(timeout=15)
        heard = len(caller.heard_audio()) - heard_before
        await caller.hang_up()

    assert dead_air <= SILENCE_BUDGET + FILLER_MARGIN, dead_air  # the filler clip
    # All of the clip (the retry's interruption came before it), then all of the answer.
    answer_audio = len(launcher.deepgram.synthesize(ANSWER, 8000)) / 2 / 8000
    assert heard >= 0.95 * samples(clip("filler").seconds + answer_audio)
    # "One moment" once: from its clip, not also from the voice as the model-side filler.
    assert lines.FILLER not in launcher.deepgram.spoken
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "caller_hung_up"  # the call went on
    said = transcript(log)
    agent = agent_turns_after(said, TEXTS["book_oil_change"])
    assert agent[0] == lines.FILLER and ANSWER in agent
    assert [text for _, text in said].count(lines.FILLER) == 1


async def test_a_voice_that_stalls_mid_call_ends_in_the_filler_the_apology_and_a_transfer(
        launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Reply(ANSWER))
    caller = await launcher.ring("+16465550165")
    async with caller:
        await caller.wait_for_event("media", timeout=10)  # the greeting is playing
        await caller.wait_for_bot_silence(timeout=15)
        heard_before = len(caller.heard_audio())
        launcher.deepgram.tts_stalled = True
        dead_air = await speak_and_measure(caller, "book_oil_change")
        await handed_to_the_desk(launcher, caller)
        await caller.wait_closed(timeout=10)
        heard = len(caller.heard_audio()) - heard_before

    assert dead_air <= SILENCE_BUDGET + FILLER_MARGIN, dead_air  # the filler, as the answer is said again
    # Both clips whole: the apology's interruption waited for the filler to play out.
    assert heard >= 0.95 * samples(clip("filler").seconds + clip("line_trouble").seconds)
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "error"
    said = transcript(log)
    agent = agent_turns_after(said, TEXTS["book_oil_change"])
    assert agent[0] == lines.FILLER and lines.LINE_TROUBLE in agent
    assert [text for _, text in said].count(lines.FILLER) == 1


async def test_a_voice_refusing_connections_is_replaced_by_clips_within_the_budget(
        launcher: Launcher) -> None:
    launcher.deepgram.refuse_speak = 503
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Reply(ANSWER))
    caller = await launcher.ring("+16465550166")
    async with caller:
        await caller.wait_for_event("media", timeout=10)
        greeting_dead_air = caller.media_events[0].at - (caller.connected_at or 0)
        await caller.wait_for_bot_silence(timeout=15)
        heard_before = len(caller.heard_audio())
        dead_air = await speak_and_measure(caller, "book_oil_change")
        await handed_to_the_desk(launcher, caller)
        await caller.wait_closed(timeout=10)
        heard = len(caller.heard_audio()) - heard_before

    assert launcher.deepgram.refused["/v1/speak"] >= 2
    assert greeting_dead_air <= SILENCE_BUDGET + MARGIN
    assert dead_air <= SILENCE_BUDGET + MARGIN
    # The retry failing at once did not cut the filler off: the apology waited for its end.
    assert heard >= 0.95 * samples(clip("filler").seconds + clip("line_trouble").seconds)
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "error"
    said = transcript(log)
    assert ("agent", lines.GREETING_FALLBACK) in said
    agent = agent_turns_after(said, TEXTS["book_oil_change"])
    assert agent[0] == lines.FILLER and lines.LINE_TROUBLE in agent  # the voice failing at once


async def test_both_speech_services_down_at_the_start(launcher: Launcher,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings_env(monkeypatch, STT_RECONNECT_SECONDS="2")
    launcher.deepgram.refuse_listen = 503
    launcher.deepgram.refuse_speak = 503
    caller = await launcher.ring("+16465550167")
    async with caller:
        assert caller.connected_at is not None
        dead_air = await caller.dead_air_since(caller.connected_at, timeout=10)
        twiml = await handed_to_the_desk(launcher, caller)
        await caller.wait_closed(timeout=10)

    assert dead_air <= SILENCE_BUDGET + MARGIN  # the greeting's clip
    assert "<Say>" in twiml
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "error"
    said = transcript(log)
    assert ("agent", lines.GREETING_FALLBACK) in said and ("agent", lines.LINE_TROUBLE) in said


async def test_a_stalled_voice_fails_over_to_the_second_provider(launcher: Launcher,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(Reply(ANSWER))
    async with FakeDeepgram(api_key="deepgram-test-key") as second:
        settings_env(monkeypatch, TTS_FALLBACK_PROVIDER="tests.bot.second_voice:deepgram_tts_elsewhere",
                     SECOND_DEEPGRAM_BASE_URL=second.ws_base_url)
        launcher.deepgram.tts_stalled = True
        caller = await launcher.ring("+16465550168")
        async with caller:
            assert caller.connected_at is not None
            greeting_dead_air = await caller.dead_air_since(caller.connected_at, timeout=10)
            await caller.wait_for_bot_silence(timeout=15)
            dead_air = await speak_and_measure(caller, "book_oil_change")
            await caller.wait_for_bot_silence(timeout=15)
            await caller.hang_up()

    # Tried, tried again, then the second voice said it, and everything after.
    assert greeting_dead_air <= STALL_BUDGET + MARGIN
    assert second.spoken[0].startswith("Thanks for calling Lakeside Motors Service")
    assert second.spoken[1:] == [ANSWER]
    assert dead_air <= SILENCE_BUDGET + MARGIN  # no more waiting on the first voice
    log = await closed_log(caller.call_sid)
    assert log["outcome"] == "caller_hung_up"
    assert ("agent", ANSWER) in transcript(log)
