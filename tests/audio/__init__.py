"""Real speech fixtures for the simulated Twilio caller.

Why: tests drive the production pipeline with genuine speech (espeak-ng, see
``make_fixtures.py``) so voice-activity detection behaves as on a call, without
synthesising anything at test time. Each file is 8 kHz mono mu-law, no header,
exactly what :meth:`tests.fakes.twilio_caller.TwilioCaller.say` sends.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from tests.fakes._pcm import rms, ulaw_to_pcm16

HERE = Path(__file__).resolve().parent

VOICED_RMS = 300  # 16-bit level above which a 20 ms window holds speech, not espeak's silence

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
    # Short answers, and sentences with pauses inside (PAUSES says where and how long).
    "tuesday_works": "Tuesday works.",
    "yes": "Yes.",
    "paused_civic": "I need... um... an oil change for my Civic.",
    "paused_tuesday": "Could we do... Tuesday afternoon?",
    # Backchannels, said over the agent to show the caller is listening; and a short real answer.
    "mm_hmm": "Mm-hmm.",
    "okay": "Okay.",
    "yeah": "Yeah.",
    "right": "Right.",
    "no": "No.",
}
"""Fixture name -> the sentence spoken in it (use as the fake STT script)."""

NAMES: tuple[str, ...] = tuple(TEXTS)

PAUSES: dict[str, str] = {
    "paused_civic": 'I need <break time="400ms"/> um <break time="600ms"/> an oil change for my Civic.',
    "paused_tuesday": 'Could we do <break time="700ms"/> Tuesday afternoon?',
}
"""The fixtures with pauses inside one sentence, as recorded (espeak-ng SSML breaks), so the
pauses keep the sentence's unfinished intonation."""


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


def pauses(name: str, shortest: float = 0.2) -> list[tuple[float, float]]:
    """The silences of at least `shortest` seconds between the words of fixture `name`, as
    (start, end) seconds into it."""
    samples = np.frombuffer(ulaw_to_pcm16(load(name)), dtype="<i2")
    window = SAMPLE_RATE // 50  # 20 ms, a media message
    voiced = [rms(samples[i:i + window]) > VOICED_RMS for i in range(0, len(samples), window)]
    spoken = [i for i, v in enumerate(voiced) if v]
    found, quiet_from = [], None
    for i in range(spoken[0], spoken[-1] + 1):
        if not voiced[i] and quiet_from is None:
            quiet_from = i
        elif voiced[i] and quiet_from is not None:
            if (i - quiet_from) / 50 >= shortest:
                found.append((quiet_from / 50, i / 50))
            quiet_from = None
    return found
