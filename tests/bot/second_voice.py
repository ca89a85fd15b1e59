"""A second text-to-speech provider for the tests, named the way a shop names its own
(TTS_FALLBACK_PROVIDER="tests.bot.second_voice:deepgram_tts_elsewhere"): Deepgram's voice at
the address in SECOND_DEEPGRAM_BASE_URL, a fake of its own, so that one can fail alone."""

from __future__ import annotations

import os

from pipecat.services.deepgram.tts import DeepgramTTSService

from config.settings import Settings
from pipeline.services import deepgram_tts


def deepgram_tts_elsewhere(settings: Settings) -> DeepgramTTSService:
    elsewhere = {"deepgram_base_url": os.environ["SECOND_DEEPGRAM_BASE_URL"]}
    return deepgram_tts(settings.model_copy(update=elsewhere))
