"""Speech-to-text, language model and text-to-speech services, chosen by configuration.

`STT_PROVIDER`, `LLM_PROVIDER`, `TTS_PROVIDER` (and `TTS_FALLBACK_PROVIDER`) name a builder below
("local" speech runs offline, pipeline/offline_speech.py), or
"package.module:function" for one of your own taking (settings, system_prompt) /
(settings) — so a developer swaps a service without editing the pipeline.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.deepgram.tts import DeepgramTTSService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transcriptions.language import Language

from config.settings import Settings
from pipeline.llm_budget import BudgetedOpenAILLMService
from processors.reconnecting_stt import ReconnectingDeepgramSTTService

if TYPE_CHECKING:
    from pipeline.offline_speech import LocalPiperTTSService, LocalWhisperSTTService

SAMPLE_RATE = 8000  # Twilio's; nothing gains from resampling phone audio upwards


def deepgram_stt(settings: Settings) -> DeepgramSTTService:
    return ReconnectingDeepgramSTTService(
        reconnect_secs=settings.stt_reconnect_seconds,
        buffer_secs=settings.stt_buffer_seconds,
        api_key=settings.deepgram_api_key or "",
        base_url=settings.deepgram_base_url or "",
        sample_rate=SAMPLE_RATE,
        settings=DeepgramSTTService.Settings(
            model=settings.stt_model,
            language=Language.EN_US,
            interim_results=True,
            punctuate=True,
            smart_format=True,
            redact=["pci"],  # Deepgram's own card-number redaction, before processors/card_redactor.py
        ),
    )


def openai_llm(settings: Settings, system_prompt: str) -> OpenAILLMService:
    return BudgetedOpenAILLMService(
        # A local server (Ollama, vLLM, llama.cpp) wants no key; the client wants one all the same.
        api_key=settings.openai_api_key or ("none" if settings.openai_base_url else None),
        base_url=settings.openai_base_url,
        settings=OpenAILLMService.Settings(
            model=settings.openai_model, system_instruction=system_prompt, temperature=0.3
        ),
        first_token_secs=settings.llm_first_token_seconds,
        answer_secs=settings.llm_answer_seconds,
    )


def deepgram_tts(settings: Settings) -> DeepgramTTSService:
    extra: dict[str, Any] = {"base_url": settings.deepgram_base_url} if settings.deepgram_base_url else {}
    return DeepgramTTSService(
        api_key=settings.deepgram_api_key or "",
        sample_rate=SAMPLE_RATE,
        encoding="linear16",
        settings=DeepgramTTSService.Settings(voice=settings.tts_voice),
        **extra,
    )


def local_stt(settings: Settings) -> LocalWhisperSTTService:
    # Imported here: the models' libraries take time to import, and only offline calls need them.
    from pipeline.offline_speech import LocalWhisperSTTService

    return LocalWhisperSTTService(sample_rate=SAMPLE_RATE)


def local_tts(settings: Settings) -> LocalPiperTTSService:
    from pipeline.offline_speech import LocalPiperTTSService

    return LocalPiperTTSService(sample_rate=SAMPLE_RATE)


STT: dict[str, Callable[..., Any]] = {"deepgram": deepgram_stt, "local": local_stt}
LLM: dict[str, Callable[..., Any]] = {"openai": openai_llm}
TTS: dict[str, Callable[..., Any]] = {"deepgram": deepgram_tts, "local": local_tts}

# What each built-in provider needs set, any one of them, for start-up messages and call refusal.
REQUIRED = {"deepgram": ("deepgram_api_key",), "openai": ("openai_api_key", "openai_base_url")}


def _builder(registry: dict[str, Callable[..., Any]], name: str) -> Callable[..., Any]:
    if name in registry:
        return registry[name]
    module, _, attribute = name.partition(":")
    if not attribute:
        raise ValueError(f"unknown provider {name!r}; built in: {', '.join(registry)}")
    return getattr(importlib.import_module(module), attribute)


def for_call(settings: Settings, system_prompt: str) -> tuple[Any, Any, Any]:
    """One call's speech-to-text, language model and text-to-speech services.

    Building them loads TLS trust stores for the Deepgram and OpenAI clients, which releases the
    GIL: run it in a thread and other calls' audio keeps flowing.
    """
    return (_builder(STT, settings.stt_provider)(settings),
            _builder(LLM, settings.llm_provider)(settings, system_prompt),
            _builder(TTS, settings.tts_provider)(settings))


def load_models(settings: Settings) -> None:
    """Load the offline speech models now if the configuration uses them, so no caller waits."""
    if "local" in (settings.stt_provider, settings.tts_provider, settings.tts_fallback_provider):
        from pipeline.offline_speech import load_models

        load_models()


def fallback_tts(settings: Settings) -> Any | None:
    """The call's second voice (TTS_FALLBACK_PROVIDER), if one is configured."""
    if not settings.tts_fallback_provider:
        return None
    return _builder(TTS, settings.tts_fallback_provider)(settings)


def missing_keys(settings: Settings) -> dict[str, list[str]]:
    """Environment variables the configured built-in providers still need ("A or B" where either
    will do), and what for."""
    needs = [
        (settings.stt_provider, "speech recognition"),
        (settings.llm_provider, "the conversation"),
        (settings.tts_provider, "the agent's voice"),
        (settings.tts_fallback_provider, "the agent's second voice"),
    ]
    missing: dict[str, list[str]] = {}
    for provider, purpose in needs:
        needs = REQUIRED.get(provider or "")
        if needs and not any(getattr(settings, need) for need in needs):
            missing.setdefault(" or ".join(need.upper() for need in needs), []).append(purpose)
    return missing


def not_ready(settings: Settings) -> list[str]:
    """What the conversation still needs, one sentence each, for the banner and the page."""
    return [
        "the conversation needs a model endpoint: set OPENAI_BASE_URL to an OpenAI-compatible server"
        " (a local Ollama: http://127.0.0.1:11434/v1) or OPENAI_API_KEY for OpenAI's"
        if "OPENAI_BASE_URL" in key else f"set {key} for {' and '.join(purposes)}"
        for key, purposes in missing_keys(settings).items()
    ]
