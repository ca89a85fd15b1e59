"""Lines recorded in advance, for when text-to-speech cannot say them: nothing is fetched or
synthesised during a call. The recordings are in `clip_audio/` (8 kHz 16-bit mono WAV, the
pipeline's output format), made from config/lines.py by `clip_audio/make_clips.py`, which
also writes down the text each was made from (`texts.json`)."""

from __future__ import annotations

import json
import wave
from functools import cache
from pathlib import Path

from config import lines
from processors.speech_guard import Clip

CLIP_AUDIO = Path(__file__).resolve().with_name("clip_audio")

CLIP_LINES: dict[str, str] = {
    "greeting": lines.GREETING_FALLBACK,
    "line_trouble": lines.LINE_TROUBLE,
    "filler": lines.FILLER,
}
"""Clip name -> the line it says."""


@cache
def clip(name: str) -> Clip:
    """The recording of CLIP_LINES[name]."""
    with wave.open(str(CLIP_AUDIO / f"{name}.wav"), "rb") as recording:
        if recording.getsampwidth() != 2 or recording.getnchannels() != 1:
            raise ValueError(f"{name}.wav is not 16-bit mono")
        return Clip(name, CLIP_LINES[name], recording.readframes(recording.getnframes()),
                    recording.getframerate())


def recorded_texts() -> dict[str, str]:
    """Clip name -> the text its recording was made from (stale once a line is reworded)."""
    return json.loads((CLIP_AUDIO / "texts.json").read_text())
