"""The offline voice speaks at the pipeline's rate, sentence by sentence; the offline ear
understands it once it has crossed a phone line, and in the call's pipeline the caller's words
become a turn; loading either model touches no network."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
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
from pipecat.tests.utils import SleepFrame, run_test

from config.settings import Settings
from pipeline import services
from pipeline.offline_speech import (
    LocalPiperTTSService,
    LocalWhisperSTTService,
    _whisper,
    load_models,
    load_voice,
)
from pipeline.services import SAMPLE_RATE
from pipeline.turns import caller_turns
from tests.fakes._pcm import rms
from tests.fakes.phone_line import over_the_phone

SENTENCES = "Hi, I'd like to book an oil change for my Civic. Is Tuesday morning free?"
PARAMS = PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE)
CHUNK = 640  # 40 ms of 16-bit audio, as the pipeline's input frames carry


@pytest.fixture(scope="module", autouse=True)
def _models() -> None:
    load_models()


async def speak(text: str) -> list[Frame]:
    tts = services.TTS["local"](Settings(_env_file=None))
    assert isinstance(tts, LocalPiperTTSService)
    down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame(text)], pipeline_params=PARAMS)
    return list(down)


def spoken(frames: list[Frame]) -> bytes:
    return b"".join(f.audio for f in frames if isinstance(f, TTSAudioRawFrame))


async def test_piper_speaks_each_sentence_as_it_is_made_at_the_pipeline_rate() -> None:
    down = await speak(SENTENCES)

    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    kinds = [type(f) for f in down if isinstance(f, TTSStartedFrame | TTSAudioRawFrame | TTSStoppedFrame)]
    assert kinds[0] is TTSStartedFrame and kinds[-1] is TTSStoppedFrame
    assert {f.sample_rate for f in audio} == {SAMPLE_RATE}
    assert len(audio) >= 2  # one per sentence at least: the first is out before the second is made
    pcm = b"".join(f.audio for f in audio)
    assert 3.0 < len(pcm) / 2 / SAMPLE_RATE < 8.0
    assert rms(np.frombuffer(pcm, np.int16)) > 500  # speech, not silence


async def test_whisper_transcribes_a_caller_on_an_8khz_phone_line() -> None:
    down = await speak(SENTENCES)
    pcm = await over_the_phone(spoken(down), SAMPLE_RATE)
    stt = services.STT["local"](Settings(_env_file=None))
    assert isinstance(stt, LocalWhisperSTTService)

    frames = [VADUserStartedSpeakingFrame(),
              *(InputAudioRawFrame(pcm[i:i + CHUNK], SAMPLE_RATE, 1) for i in range(0, len(pcm), CHUNK)),
              VADUserStoppedSpeakingFrame()]
    down, _ = await run_test(stt, frames_to_send=frames, pipeline_params=PARAMS)

    heard = " ".join(f.text for f in down if isinstance(f, TranscriptionFrame)).lower()
    for words in ("book", "oil change", "civic", "tuesday"):
        assert words in heard


async def test_the_callers_words_become_a_turn_in_the_calls_pipeline() -> None:
    # As pipeline/call.py has it: speech-to-text before the caller aggregator, whose VAD tells
    # it (upstream) where each segment starts and stops.
    down = await speak("I'd like to book an oil change for my Civic.")
    speech = await over_the_phone(spoken(down), SAMPLE_RATE)
    pcm = bytes(SAMPLE_RATE) + speech + bytes(3 * SAMPLE_RATE)  # 0.5 s silence before, 1.5 s after
    settings = Settings(_env_file=None, turn_detection="silence")
    caller, _ = LLMContextAggregatorPair(LLMContext(), user_params=caller_turns(settings))
    turns: list[str] = []

    @caller.event_handler("on_user_turn_message_added")
    async def _added(_caller: object, message: UserTurnMessageAddedMessage) -> None:
        turns.append(message.content)

    frames: list[Frame] = []
    for i in range(0, len(pcm), CHUNK):
        frames += [InputAudioRawFrame(pcm[i:i + CHUNK], SAMPLE_RATE, 1), SleepFrame(0.01)]
    await run_test(Pipeline([services.STT["local"](settings), caller]), frames_to_send=frames,
                   pipeline_params=PARAMS)

    assert len(turns) == 1 and "oil change" in turns[0].lower()


async def test_calls_share_one_loaded_model_each() -> None:
    first, second = LocalWhisperSTTService(), LocalWhisperSTTService()
    assert first._model is second._model
    assert LocalPiperTTSService()._voice is LocalPiperTTSService()._voice


def test_loading_the_models_never_reaches_for_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError(f"network access while loading: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # Past the per-process cache, so both really load here.
    assert _whisper.__wrapped__().supported_languages == ["en"]
    assert load_voice.__wrapped__().config.sample_rate > SAMPLE_RATE
    LocalWhisperSTTService()
    LocalPiperTTSService()
