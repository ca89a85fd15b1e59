"""A call's plug-in context for tests, and factories the tests list in settings (from an
importable module, as a developer's are)."""

from __future__ import annotations

from collections.abc import Callable

from pipecat.processors.filters.identity_filter import IdentityFilter

from config.settings import Settings
from pipeline.plugins import PluginContext
from processors.speech_guard import Clip

SID = "CA" + "9a" * 16


async def _nothing() -> None:
    pass


async def _played(_clip: Clip) -> None:
    pass


def call_context(settings: Settings, flag: Callable[[str, str], None], call_sid: str = SID) -> PluginContext:
    """A call's context whose hooks for our own processors do nothing (nothing here runs them)."""
    return PluginContext(settings=settings, call_sid=call_sid, flag=flag, model_lost=_nothing,
                         voice_lost=_nothing, clip_played=_played, second_voice=None)


def two_filters(_context: PluginContext) -> list[IdentityFilter]:
    return [IdentityFilter(name="first"), IdentityFilter(name="second")]


def named_after_the_call(context: PluginContext) -> IdentityFilter:
    return IdentityFilter(name=f"for-{context.call_sid}")


def not_a_processor(context: PluginContext) -> str:
    return context.call_sid


NOT_CALLABLE = "a factory's name that names a string"
