"""Our own optional processors, as plug-in factories: the defaults of `pipeline/plugins.py`'s
points, so a setting lists, reorders or removes them like anyone else's."""

from __future__ import annotations

from config import lines
from pipeline.clips import clip
from pipeline.plugins import PluginContext
from processors.card_redactor import CardRedactor
from processors.silence_budget import SilenceBudget
from processors.speech_guard import SpeechGuard


def card_redactor(_context: PluginContext) -> CardRedactor:
    """Card numbers out of each transcription (after_stt), and out of the caller's turn, where
    speech-to-text split one over two transcriptions (before_llm)."""
    return CardRedactor()


def silence_budget(context: PluginContext) -> SilenceBudget:
    """A filler while the model is slow, an apology and a transfer when it fails (after_llm)."""
    return SilenceBudget(default_phrase=lines.FILLER, tool_phrases=lines.FILLERS,
                         apology=lines.MODEL_APOLOGY, filler_secs=context.settings.llm_filler_seconds,
                         on_lost=context.model_lost)


def speech_guard(context: PluginContext) -> SpeechGuard:
    """What is said is heard: again, by the second voice, or from a clip (before_tts)."""
    settings = context.settings
    return SpeechGuard(first_clip=clip("greeting"), filler_clip=clip("filler"),
                       lost_clip=clip("line_trouble"), on_clip=context.clip_played,
                       on_lost=context.voice_lost, fallback=context.second_voice,
                       start_timeout_secs=settings.tts_start_timeout_seconds,
                       filler_timeout_secs=settings.tts_filler_seconds,
                       retry_timeout_secs=settings.tts_retry_timeout_seconds)
