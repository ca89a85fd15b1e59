"""How long turn detection itself takes, with no pipeline around it (run by hand).

    python bench/vad_bench.py

For each recorded sentence in tests/audio, fed to the call's Silero VAD as the launcher feeds
it (40 ms frames, or 20 ms), at four offsets of the sentence within the frames:

- start: from the onset of speech energy to the VAD's SPEAKING, which is what triggers barge-in;
- stop: from the end of speech energy to the VAD's QUIET, less its 0.2 s stop_secs, which is
  what the caller waits beyond the configured pause.

Also the time of one Smart-Turn inference on 8 s of audio. This is the floor under
bench/call_bench.py's barge-in and reply figures: what the models need, whatever the load.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipecat.audio.vad.vad_analyzer import VADParams, VADState  # noqa: E402

from pipeline.turns import SharedSileroVAD, SharedSmartTurn  # noqa: E402
from tests.audio import NAMES, SAMPLE_RATE, load, silence  # noqa: E402
from tests.fakes._pcm import ulaw_to_pcm16  # noqa: E402
from tests.fakes.deepgram import count_utterances  # noqa: E402

LEAD_SECONDS = (0.50, 0.51, 0.52, 0.53)  # where the sentence falls within the frames


async def delays(frame_ms: int, start_secs: float) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    frame_bytes = frame_ms * SAMPLE_RATE // 1000 * 2
    for name in NAMES:
        speech = count_utterances(ulaw_to_pcm16(load(name)), SAMPLE_RATE)
        for lead in LEAD_SECONDS:
            audio = ulaw_to_pcm16(silence(lead) + load(name) + silence(1.5))
            onset, end = lead + speech[0][0], lead + speech[-1][1]
            vad = SharedSileroVAD(sample_rate=SAMPLE_RATE, params=VADParams(
                start_secs=start_secs, min_volume=0.4, stop_secs=0.2))
            vad.set_sample_rate(SAMPLE_RATE)
            heard = quiet = None
            previous = VADState.QUIET
            for offset in range(0, len(audio), frame_bytes):
                state = await vad.analyze_audio(audio[offset:offset + frame_bytes])
                at = (offset + frame_bytes) / 2 / SAMPLE_RATE
                if state == VADState.SPEAKING and heard is None:
                    heard = at
                if state == VADState.QUIET and previous in (VADState.SPEAKING, VADState.STOPPING):
                    quiet = at
                previous = state
            if heard is not None and quiet is not None:
                starts.append((heard - onset) * 1000)
                stops.append((quiet - end - 0.2) * 1000)
    return starts, stops


def smart_turn_ms() -> float:
    analyzer = SharedSmartTurn()
    analyzer.set_sample_rate(SAMPLE_RATE)
    audio = np.frombuffer(ulaw_to_pcm16(load("book_oil_change")), np.int16).astype(np.float32) / 32768
    analyzer._predict_endpoint(audio)  # warm-up
    times = []
    for _ in range(20):
        began = time.perf_counter()
        analyzer._predict_endpoint(audio)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


async def main() -> None:
    for frame_ms, start_secs in ((40, 0.064), (20, 0.064), (40, 0.032)):
        starts, stops = await delays(frame_ms, start_secs)
        print(f"{frame_ms} ms frames, VAD start {start_secs} s: speech heard after median "
              f"{statistics.median(starts):.0f} ms (max {max(starts):.0f}); end heard "
              f"{statistics.median(stops):.0f} ms after the stop wait (max {max(stops):.0f}); "
              f"{len(starts)} sentences")
    print(f"Smart-Turn inference on 8 s of audio: median {smart_turn_ms():.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
