"""The recorded clips say the lines they stand in for."""

from __future__ import annotations

from pipeline.clips import CLIP_LINES, clip, recorded_texts


def test_every_clip_is_recorded_from_its_current_line() -> None:
    assert recorded_texts() == CLIP_LINES  # else rerun pipeline/clip_audio/make_clips.py
    for name, text in CLIP_LINES.items():
        recording = clip(name)
        assert recording.text == text and recording.sample_rate == 8000
        assert len(recording.audio) / 2 / 8000 > 1.0  # a sentence, not an empty file
