"""A pause after words a sentence cannot end on ("I need", "um", "could we do") does not end the
caller's turn; the same pause after a whole sentence does."""

from __future__ import annotations

import time

import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    UserTurnMessageAddedMessage,
)
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.time import time_now_iso8601

from config.settings import Settings
from pipeline.turns import caller_turns
from pipeline.unfinished_turns import sounds_unfinished
from tests.audio import SAMPLE_RATE, TEXTS, load, silence
from tests.fakes._pcm import ulaw_to_pcm16
from tests.fakes.deepgram import FakeDeepgram


@pytest.mark.parametrize("text", [
    "I need", "um", "Could we do", "I'd like", "for my", "It's the", "I was calling about",
    "My car makes a noise when", "Yes, and", "Sorry to interrupt,", "Is it-", "The brakes...",
    "I want"])
def test_words_a_sentence_cannot_end_on(text: str) -> None:
    assert sounds_unfinished(text)


@pytest.mark.parametrize("text", [
    "Yes.", "Tuesday works.", "Yes, I do.", "That's all I need.", "Thanks, goodbye.",
    "Could we do Tuesday afternoon?", "Hi, I'd like to book an oil change.", "No", "Okay",
    "It's a 2019 Civic", "Can you fix it", ""])
def test_words_that_end_a_sentence(text: str) -> None:
    assert not sounds_unfinished(text)


def caller_with_turns(settings: Settings) -> tuple[object, list[tuple[float, str]]]:
    """The caller aggregator, and the turns it adds to the context (when, and what)."""
    caller, _ = LLMContextAggregatorPair(LLMContext(), user_params=caller_turns(settings))
    turns: list[tuple[float, str]] = []

    @caller.event_handler("on_user_turn_message_added")
    async def _added(_caller: object, message: UserTurnMessageAddedMessage) -> None:
        turns.append((time.monotonic(), message.content))

    return caller, turns


def in_real_time(ulaw: bytes) -> list[object]:
    """Recorded phone audio as the input transport passes it on: 20 ms frames, 20 ms apart."""
    audio = ulaw_to_pcm16(ulaw)
    step = SAMPLE_RATE // 50 * 2
    frames: list[object] = []
    for i in range(0, len(audio), step):
        frames += [InputAudioRawFrame(audio[i:i + step], SAMPLE_RATE, 1), SleepFrame(0.02)]
    return frames


def _said(text: str) -> list[object]:
    return [VADUserStartedSpeakingFrame(), TranscriptionFrame(text, "caller", time_now_iso8601()),
            VADUserStoppedSpeakingFrame(stop_secs=0.0)]


@pytest.mark.parametrize("turn_detection", ["silence", "smart-turn"])
async def test_a_pause_after_unfinished_words_continues_the_turn(turn_detection: str) -> None:
    settings = Settings(_env_file=None, turn_detection=turn_detection)
    caller, turns = caller_with_turns(settings)
    await run_test(caller, frames_to_send=[
        *_said("I need"), SleepFrame(0.7), *_said("um"), SleepFrame(0.7),
        *_said("an oil change for my Civic."), SleepFrame(settings.turn_unfinished_seconds + 0.3)])
    assert [text for _, text in turns] == ["I need um an oil change for my Civic."]


async def test_a_caller_who_stops_on_unfinished_words_is_answered_after_the_hold() -> None:
    settings = Settings(_env_file=None, turn_detection="silence")
    caller, turns = caller_with_turns(settings)
    started = time.monotonic()
    await run_test(caller, frames_to_send=[*_said("I was calling about"), SleepFrame(1.5)])
    assert [text for _, text in turns] == ["I was calling about"]
    waited = turns[0][0] - started
    assert settings.turn_unfinished_seconds - 0.05 <= waited < settings.turn_unfinished_seconds + 0.3


async def test_a_whole_sentence_is_answered_after_the_usual_pause() -> None:
    settings = Settings(_env_file=None, turn_detection="silence")
    caller, turns = caller_with_turns(settings)
    started = time.monotonic()
    await run_test(caller, frames_to_send=[*_said("I'd like an oil change."), SleepFrame(1.5)])
    assert [text for _, text in turns] == ["I'd like an oil change."]
    assert turns[0][0] - started < settings.turn_unfinished_seconds - 0.2


@pytest.mark.parametrize("name", ["paused_civic", "paused_tuesday"])
async def test_recorded_pauses_inside_a_sentence_leave_one_turn(name: str) -> None:
    # Recorded phone audio, in real time, through the real speech-to-text client (against the
    # fake, finals 250 ms late and as far as the sentence was said) and the caller's turn logic
    # with Smart-Turn: the pauses of 0.4-0.7 s inside the sentence do not end the turn.
    settings = Settings(_env_file=None, turn_detection="smart-turn")
    caller, turns = caller_with_turns(settings)
    async with FakeDeepgram([TEXTS[name]], final_delay=0.25) as deepgram:
        stt = DeepgramSTTService(api_key="key", base_url=deepgram.ws_base_url)
        await run_test(Pipeline([stt, caller]), frames_to_send=in_real_time(load(name) + silence(1.5)),
                       pipeline_params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE))
        finals = [final.text for final in deepgram.finals if final.text]
    assert len(finals) > 1  # the pauses were heard, each with the words said before it
    assert [text for _, text in turns] == [" ".join(finals)]
