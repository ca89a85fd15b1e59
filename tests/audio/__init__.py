"""Real speech fixtures for the simulated Twilio caller.

Why: tests drive the production pipeline with genuine speech (espeak-ng, see
``make_fixtures.py``) so voice-activity detection behaves as on a call, without
synthesising anything at test time. Each file is 8 kHz mono mu-law, no header,
exactly what :meth:`tests.fakes.twilio_caller.TwilioCaller.say` sends.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent

SAMPLE_RATE = 8000
"""Samples (= bytes) per second of every fixture."""

TEXTS: dict[str, str] = {
    "book_oil_change": "Hi, I'd like to book an oil change.",
    "tomorrow_ten_am": "Tomorrow at ten in the morning works.",
    "yes_thats_right": "Yes, that's right.",
    "actually_wait": "Actually, wait, can I ask something?",
    "thanks_goodbye": "Thanks, goodbye.",
    "speak_to_person": "I'd like to speak to a person.",
    "reschedule": "Can I move my appointment to Friday?",
    "cancel": "Please cancel my appointment.",
}
"""Fixture name -> the sentence spoken in it (use as the fake STT script)."""

NAMES: tuple[str, ...] = tuple(TEXTS)


@cache
def load(name: str) -> bytes:
    """Return the mu-law bytes of fixture ``name`` (a key of :data:`TEXTS`)."""
    if name not in TEXTS:
        raise KeyError(f"unknown audio fixture {name!r}; known: {', '.join(NAMES)}")
    return (HERE / f"{name}.ulaw").read_bytes()


def duration(name: str) -> float:
    """Length of fixture ``name`` in seconds."""
    return len(load(name)) / SAMPLE_RATE


def silence(seconds: float) -> bytes:
    """Mu-law digital silence (0xFF) lasting ``seconds``."""
    return b"\xff" * round(seconds * SAMPLE_RATE)
