"""audio_ends_here: audio frames stop, everything else passes unchanged and in order."""

from __future__ import annotations

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    UserStartedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import run_test

from processors.audio_ends_here import audio_ends_here

AUDIO = b"\x00\x01" * 160


async def test_drops_caller_and_agent_audio_and_passes_the_rest() -> None:
    down, _ = await run_test(audio_ends_here(), frames_to_send=[
        InputAudioRawFrame(AUDIO, 8000, 1),
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
        TranscriptionFrame("hello", "caller", "2026-11-24T10:00:00Z"),
        InputAudioRawFrame(AUDIO, 8000, 1),
        BotStartedSpeakingFrame(),
        TTSAudioRawFrame(AUDIO, 8000, 1),
        OutputAudioRawFrame(AUDIO, 8000, 1),
        TextFrame("Sure."),
    ], expected_down_frames=[UserStartedSpeakingFrame, InterruptionFrame, TranscriptionFrame,
                             BotStartedSpeakingFrame, TextFrame])
    assert [f.text for f in down if isinstance(f, (TranscriptionFrame, TextFrame))] == ["hello", "Sure."]


async def test_leaves_upstream_frames_alone() -> None:
    # Only the downstream flow carries spent audio; upstream frames are others' business.
    await run_test(audio_ends_here(), frames_to_send=[TTSAudioRawFrame(AUDIO, 8000, 1), TextFrame("x")],
                   frames_to_send_direction=FrameDirection.UPSTREAM,
                   expected_up_frames=[TTSAudioRawFrame, TextFrame])
