"""Frame processors plugged into the call pipeline at named points, from configuration.

Each point is one setting (`PROCESSORS_<POINT>`): a list of `package.module:factory` names, or
names of entry points in the `service_desk_agent.processors` group that an installed package
declares. For every call each factory is called once with the call's `PluginContext` and
returns a new FrameProcessor, or a list of them, placed at the point in the order listed. Our
own optional processors are listed the same way (`pipeline/own_processors.py`), so an empty
setting removes them. `check` imports every name at start-up, so that a misspelt one stops
the launcher with one line naming its setting, not the first call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pipecat.processors.frame_processor import FrameProcessor

from config.settings import ConfigError, Settings
from processors.speech_guard import Clip

ENTRY_POINT_GROUP = "service_desk_agent.processors"

POINTS: dict[str, str] = {
    "after_stt": "the caller's audio and transcriptions, before turn detection",
    "before_llm": "the caller's finished turn (LLMContextFrame), before the model reads it",
    "after_llm": "the model's words and tool calls, as they stream out",
    "before_tts": "everything to be spoken (the model's words, fillers, TTSSpeakFrame)",
    "after_tts": "the agent's audio, before it goes out on the line",
}
"""The points, in pipeline order, and what passes there going down."""


@dataclass(frozen=True)
class PluginContext:
    """What a factory gets, once per call."""

    settings: Settings
    call_sid: str
    # Records something worth a person's attention in the call's log: flag(name, detail). Kept
    # past the transcript's retention, so `detail` must not quote the caller.
    flag: Callable[[str, str], None]
    # The call's hooks our own processors need (pipeline/own_processors.py).
    model_lost: Callable[[], Awaitable[None]]  # the model's answers failed twice
    voice_lost: Callable[[], Awaitable[None]]  # the voice cannot speak any more
    clip_played: Callable[[Clip], Awaitable[None]]  # a recorded line stood in for the voice
    second_voice: FrameProcessor | None  # TTS_FALLBACK_PROVIDER's service, if any


class PluginError(TypeError):
    """A factory that did not return frame processors."""


def setting(point: str) -> str:
    """The environment variable that configures `point`."""
    return f"PROCESSORS_{point.upper()}"


def names(settings: Settings, point: str) -> list[str]:
    return getattr(settings, setting(point).lower())


@cache
def _factory(name: str) -> Callable[[PluginContext], Any]:
    if ":" in name:
        found = EntryPoint(name=name, value=name, group=ENTRY_POINT_GROUP).load()
    else:
        declared = entry_points(group=ENTRY_POINT_GROUP, name=name)
        if not declared:
            raise LookupError(f"no installed package declares it in {ENTRY_POINT_GROUP}"
                              " (a module's factory is package.module:factory)")
        if len(declared) > 1:
            raise LookupError(f"{len(declared)} installed packages declare it in {ENTRY_POINT_GROUP}")
        found = next(iter(declared)).load()
    if not callable(found):
        raise TypeError(f"{type(found).__name__} is not callable")
    return found


def check(settings: Settings) -> None:
    """Import every configured factory; a ConfigError (one line, exit code 2) names the setting
    of the first that cannot be."""
    for point in POINTS:
        for name in names(settings, point):
            try:
                _factory(name)
            except Exception as exc:
                raise ConfigError(f"{setting(point)}: cannot import {name!r}"
                                  f" ({type(exc).__name__}: {exc})") from None


def build(context: PluginContext) -> dict[str, list[FrameProcessor]]:
    """The call's processors at each point (every point present, maybe empty), new for the call."""
    return {point: [processor for name in names(context.settings, point)
                    for processor in _made(point, name, context)]
            for point in POINTS}


def _made(point: str, name: str, context: PluginContext) -> list[FrameProcessor]:
    made = _factory(name)(context)
    processors = list(made) if isinstance(made, (list, tuple)) else [made]
    wrong = [type(item).__name__ for item in processors if not isinstance(item, FrameProcessor)]
    if wrong:
        raise PluginError(f"{setting(point)}: {name!r} returned {', '.join(wrong)},"
                          " not a FrameProcessor or a list of them")
    return processors
