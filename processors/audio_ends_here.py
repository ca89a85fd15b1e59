"""Drops audio frames past the last stage of the pipeline that needs them."""

from __future__ import annotations

from pipecat.frames.frames import AudioRawFrame, Frame
from pipecat.processors.filters.function_filter import FunctionFilter


async def _not_audio(frame: Frame) -> bool:
    return not isinstance(frame, AudioRawFrame)


def audio_ends_here() -> FunctionFilter:
    """A filter for audio that has been used up: the caller's once speech recognition and turn
    detection have heard it, the agent's once the transport has sent it. Carried on, each
    20-40 ms frame would cost every later stage a hop, on every call. Direct mode: the check
    runs in the pushing task, without the two queue hops of its own it would otherwise add."""
    return FunctionFilter(_not_audio, filter_system_frames=True, enable_direct_mode=True)
