"""Smart-Turn's verdicts on phone audio against the 16 kHz it was trained on (run by hand).

    python bench/smart_turn_bench.py

Speaks whole turns and cut-off ones with the offline Piper voice, then asks our shared
Smart-Turn v3 (pipeline/turns.py; Pipecat resamples what it gets to 16 kHz) whether each is
finished: once from 16 kHz audio, once from the same audio as a Twilio call carries it (8 kHz
G.711 mu-law). Prints how many verdicts were right at each rate, and each probability.
Caveat: a cut-off turn spoken on its own ends with the voice's falling, finished intonation,
unlike a caller pausing mid-sentence, so the cut-off set is harder than real pauses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.offline_speech import load_voice  # noqa: E402
from pipeline.turns import SharedSmartTurn  # noqa: E402

FINISHED = ("Hi, I'd like to book an oil change.", "Thanks, goodbye.", "I'd like to speak to a person.",
            "Can I move my appointment to Friday?", "Tuesday works.", "Yes.", "That's all. Thank you.",
            "Please cancel my appointment.", "Tomorrow at ten in the morning works.")
CUT_OFF = ("I need", "I'd like to book an", "Could we do", "My car is making a",
           "Can I move my appointment to", "I was wondering if", "So the thing is")
MU = 255.0


def _phone_line(audio: np.ndarray, rate: int) -> np.ndarray:
    """`audio` as Twilio carries it: 8 kHz, through G.711 mu-law and back."""
    narrow = np.clip(soxr.resample(audio, rate, 8000), -1, 1)
    companded = np.round((np.sign(narrow) * np.log1p(MU * np.abs(narrow)) / np.log1p(MU) + 1) * 127.5)
    level = companded / 127.5 - 1
    return (np.sign(level) * ((1 + MU) ** np.abs(level) - 1) / MU).astype(np.float32)


def main() -> None:
    voice = load_voice()
    rate = voice.config.sample_rate
    spoken = {text: np.frombuffer(b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text)),
                                  np.int16).astype(np.float32) / 32768
              for text in (*FINISHED, *CUT_OFF)}
    for label, model_rate, prepare in (
            ("16 kHz", 16000, lambda a: soxr.resample(a, rate, 16000).astype(np.float32)),
            ("8 kHz mu-law", 8000, lambda a: _phone_line(a, rate))):
        analyzer = SharedSmartTurn()
        analyzer.set_sample_rate(model_rate)
        right, cells = 0, []
        for text, audio in spoken.items():
            probability = analyzer._predict_endpoint(prepare(audio))["probability"]
            correct = (probability > 0.5) == (text in FINISHED)
            right += correct
            cells.append(f"{'' if correct else 'WRONG '}{text!r} {probability:.2f}")
        print(f"{label}: {right}/{len(spoken)} verdicts right")
        for cell in cells:
            print("   ", cell)


if __name__ == "__main__":
    main()
