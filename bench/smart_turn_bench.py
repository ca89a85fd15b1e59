"""Smart-Turn's verdicts on phone audio against the 16 kHz it was trained on (run by hand).

    python bench/smart_turn_bench.py

Speaks whole turns and cut-off ones with the offline Piper voice, then asks our shared
Smart-Turn v3 (pipeline/turns.py; Pipecat resamples what it gets to 16 kHz) whether each is
finished: once from 16 kHz audio, once from the same audio as a Twilio call carries it (8 kHz
G.711 mu-law, through Pipecat's Twilio serializer). Prints how many verdicts were right at
each rate, and each probability.
Caveat: a cut-off turn spoken on its own ends with the voice's falling, finished intonation,
unlike a caller pausing mid-sentence, so the cut-off set is harder than real pauses.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.offline_speech import load_voice  # noqa: E402
from pipeline.turns import SharedSmartTurn  # noqa: E402
from tests.fakes.phone_line import over_the_phone  # noqa: E402

FINISHED = ("Hi, I'd like to book an oil change.", "Thanks, goodbye.", "I'd like to speak to a person.",
            "Can I move my appointment to Friday?", "Tuesday works.", "Yes.", "That's all. Thank you.",
            "Please cancel my appointment.", "Tomorrow at ten in the morning works.")
CUT_OFF = ("I need", "I'd like to book an", "Could we do", "My car is making a",
           "Can I move my appointment to", "I was wondering if", "So the thing is")
def _floats(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768


async def main() -> None:
    voice = load_voice()
    rate = voice.config.sample_rate
    spoken = {text: b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text))
              for text in (*FINISHED, *CUT_OFF)}
    wide = {text: soxr.resample(_floats(pcm), rate, 16000).astype(np.float32) for text, pcm in spoken.items()}
    narrow = {text: _floats(await over_the_phone(pcm, rate)) for text, pcm in spoken.items()}
    for label, model_rate, audio_of in (("16 kHz", 16000, wide), ("8 kHz mu-law", 8000, narrow)):
        analyzer = SharedSmartTurn()
        analyzer.set_sample_rate(model_rate)
        right, cells = 0, []
        for text, audio in audio_of.items():
            probability = analyzer._predict_endpoint(audio)["probability"]
            correct = (probability > 0.5) == (text in FINISHED)
            right += correct
            cells.append(f"{'' if correct else 'WRONG '}{text!r} {probability:.2f}")
        print(f"{label}: {right}/{len(spoken)} verdicts right")
        for cell in cells:
            print("   ", cell)


if __name__ == "__main__":
    asyncio.run(main())
