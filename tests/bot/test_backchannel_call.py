"""A caller who says "mm-hmm" while the agent talks hears the whole answer, over the wire."""

from __future__ import annotations

import asyncio

from tests.audio import TEXTS, load
from tests.bot.conftest import Launcher
from tests.bot.test_calls import closed_log
from tests.fakes.openai import Reply
from tests.fakes.twilio_caller import audible

ANSWER = ("I can book that for you. We have openings tomorrow morning at nine, nine thirty and"
          " ten, and in the afternoon at two and three thirty. Which one works best for you?")


async def test_mm_hmm_during_a_long_answer_leaves_it_whole(launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"], TEXTS["mm_hmm"])
    launcher.policy.add(Reply(ANSWER))
    caller = await launcher.ring("+16465550151")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)  # the greeting
        await caller.say(load("book_oil_change"))
        before = caller.position()
        await caller.wait_for(lambda e: e.event == "media" and audible(e.payload), timeout=10,
                              after=before)
        await asyncio.sleep(1.0)  # well into the answer
        await caller.say(load("mm_hmm"))
        # The agent pauses while the caller speaks, and resumes: the silence of the answer's end
        # is the one longer than that.
        await caller.wait_for_bot_silence(quiet=1.5, timeout=30)
        answer_events = caller.events[before:]
        await caller.hang_up()

    assert [e for e in answer_events if e.event == "clear"] == []
    answer_audio = sum(len(e.payload) for e in answer_events if e.event == "media")
    full = len(ANSWER) * launcher.deepgram.tts_ms_per_char / 1000 * 8000  # mu-law bytes
    assert answer_audio >= full * 0.98
    assert launcher.deepgram.clear_count == 0  # the speech never stopped synthesising either
    assert len(launcher.openai.requests) == 1  # "mm-hmm" was nothing to answer
    log = await closed_log(caller.call_sid)
    said = [(t["role"], t["text"]) for t in log["transcript"]]
    assert ("agent", ANSWER) in said
    assert not any("mm" in text.lower() for role, text in said if role == "caller")


async def test_after_an_interruption_the_context_holds_what_the_caller_heard(launcher: Launcher) -> None:
    launcher.deepgram.add_script(TEXTS["book_oil_change"], TEXTS["actually_wait"])
    launcher.policy.add(Reply(ANSWER), Reply("Of course, go ahead."))
    first = ANSWER.split(". ")[0] + "."
    caller = await launcher.ring("+16465550152")
    async with caller:
        await caller.wait_for_bot_silence(timeout=15)
        await caller.say(load("book_oil_change"))
        before = caller.position()
        await caller.wait_for(lambda e: e.event == "media" and audible(e.payload), timeout=10,
                              after=before)
        # A second into the second sentence; had the agent sent its audio as fast as it could,
        # the caller's phone would already hold all of the answer.
        await asyncio.sleep(len(first) * launcher.deepgram.tts_ms_per_char / 1000 + 1.0)
        await caller.say(load("actually_wait"))
        requests = await launcher.openai.wait_for_requests(2, timeout=15)
        await caller.hang_up()

    heard = [m["content"] for m in requests[1].messages if m["role"] == "assistant"][-1]
    assert heard.startswith(f"{first} We have") and "nine" not in heard
    log = await closed_log(caller.call_sid)
    assert ("agent", heard) in [(t["role"], t["text"]) for t in log["transcript"]]
