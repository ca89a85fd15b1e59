"""How long turn detection itself takes, with no pipeline around it (run by hand).

    python bench/vad_bench.py

For each recorded sentence in tests/audio, fed to the call's Silero VAD as the launcher feeds
it (40 ms frames, or 20 ms), at four offsets of the sentence within the frames:

- start: from the onset of speech energy to the VAD's SPEAKING, which is what triggers barge-in;
- stop: from the end of speech energy to the VAD's QUIET, less its 0.2 s stop_secs, which is
  what the caller waits beyond the configured pause.

Then the other side of a quick start: which short sounds the VAD takes for speech (and so
would interrupt the agent with): the first 60-200 ms of each sentence, and bursts of loud
white noise. Each with the pipeline's loudness smoothing and with Pipecat's own (0.2).

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

from pipeline.turns import VOLUME_SMOOTHING, SharedSileroVAD, SharedSmartTurn  # noqa: E402
from tests.audio import NAMES, SAMPLE_RATE, load, silence  # noqa: E402
from tests.fakes._pcm import ulaw_to_pcm16  # noqa: E402
from tests.fakes.deepgram import count_utterances  # noqa: E402

LEAD_SECONDS = (0.50, 0.51, 0.52, 0.53)  # where the sentence falls within the frames
PIPECATS_SMOOTHING = 0.2


async def states(audio: bytes, frame_ms: int, start_secs: float,
                 smoothing: float) -> list[tuple[float, VADState]]:
    """(end of frame in seconds, VAD state after it) for audio fed as the launcher feeds it."""
    vad = SharedSileroVAD(sample_rate=SAMPLE_RATE, params=VADParams(
        start_secs=start_secs, min_volume=0.4, stop_secs=0.2))
    vad.set_sample_rate(SAMPLE_RATE)
    vad._smoothing_factor = smoothing
    frame_bytes = frame_ms * SAMPLE_RATE // 1000 * 2
    return [((offset + frame_bytes) / 2 / SAMPLE_RATE,
             await vad.analyze_audio(audio[offset:offset + frame_bytes]))
            for offset in range(0, len(audio), frame_bytes)]


async def delays(frame_ms: int, start_secs: float, smoothing: float) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for name in NAMES:
        speech = count_utterances(ulaw_to_pcm16(load(name)), SAMPLE_RATE)
        for lead in LEAD_SECONDS:
            audio = ulaw_to_pcm16(silence(lead) + load(name) + silence(1.5))
            onset, end = lead + speech[0][0], lead + speech[-1][1]
            heard = quiet = None
            previous = VADState.QUIET
            for at, state in await states(audio, frame_ms, start_secs, smoothing):
                if state == VADState.SPEAKING and heard is None:
                    heard = at
                if state == VADState.QUIET and previous in (VADState.SPEAKING, VADState.STOPPING):
                    quiet = at
                previous = state
            if heard is not None and quiet is not None:
                starts.append((heard - onset) * 1000)
                stops.append((quiet - end - 0.2) * 1000)
    return starts, stops


async def short_sounds(smoothing: float) -> str:
    """How many of 8 short sounds, between silences, the VAD takes for speech."""
    quiet = ulaw_to_pcm16(silence(0.6))
    noise = np.random.default_rng(1)
    sounds: dict[str, list[bytes]] = {}
    for ms in (60, 100, 150, 200):
        sounds[f"{ms} ms of voice"] = []
        for name in NAMES:
            onset = count_utterances(ulaw_to_pcm16(load(name)), SAMPLE_RATE)[0][0]
            first = int(onset * SAMPLE_RATE)
            sounds[f"{ms} ms of voice"].append(ulaw_to_pcm16(load(name)[first:first + ms * 8]))
    for ms in (100, 250):
        sounds[f"{ms} ms of noise"] = [
            np.clip(noise.normal(0, 6000, ms * 8), -32768, 32767).astype(np.int16).tobytes()
            for _ in range(8)]
    counts = []
    for label, clips in sounds.items():
        heard = [any(state == VADState.SPEAKING for _, state in
                     await states(quiet + clip + quiet, 40, 0.064, smoothing)) for clip in clips]
        counts.append(f"{label} {sum(heard)}/{len(clips)}")
    return ", ".join(counts)


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
    for smoothing in (VOLUME_SMOOTHING, PIPECATS_SMOOTHING):
        print(f"loudness smoothing {smoothing}:")
        for frame_ms, start_secs in ((40, 0.064), (20, 0.064), (40, 0.032)):
            starts, stops = await delays(frame_ms, start_secs, smoothing)
            print(f"  {frame_ms} ms frames, VAD start {start_secs} s: speech heard after median "
                  f"{statistics.median(starts):.0f} ms (max {max(starts):.0f}); end heard "
                  f"{statistics.median(stops):.0f} ms after the stop wait (max {max(stops):.0f}); "
                  f"{len(starts)} sentences")
        print(f"  taken for speech (40 ms frames, start 0.064 s): {await short_sounds(smoothing)}")
    print(f"Smart-Turn inference on 8 s of audio: median {smart_turn_ms():.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
