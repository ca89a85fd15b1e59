"""How fast and how well the offline voice and ear work at the phone's 8 kHz (run by hand).

    python bench/offline_speech_bench.py

For each phone-style sentence below, through the services a call builds for
STT_PROVIDER=local and TTS_PROVIDER=local, one at a time:

- text-to-speech: from the text reaching the service to its first audio frame, and the
  real-time factor (RTF: time to make the sentence's audio over the audio's length);
- speech-to-text, on that audio after a phone line (Pipecat's Twilio serializer, G.711
  mu-law and back): from the end of the segment (VAD stopped) to its transcription, and RTF;
- the word error rate (WER) of the transcriptions against the sentences as written.

Median and p95 of each, with the machine's cores and load average. One call at a time:
bench/call_bench.py is where calls compete for the cores.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipecat.frames.frames import (  # noqa: E402
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed  # noqa: E402
from pipecat.pipeline.worker import PipelineParams  # noqa: E402
from pipecat.processors.frame_processor import FrameProcessor  # noqa: E402
from pipecat.tests.utils import run_test  # noqa: E402

from bench.stats import percentile  # noqa: E402
from pipeline.offline_speech import LocalPiperTTSService, LocalWhisperSTTService, load_models  # noqa: E402
from pipeline.services import SAMPLE_RATE  # noqa: E402
from tests.fakes.phone_line import over_the_phone  # noqa: E402

# (what the caller says, as a transcript would write it)
SENTENCES = [
    ("Hi, I'd like to book an oil change for my Civic.",
     "Hi, I'd like to book an oil change for my Civic."),
    ("Do you have anything next Tuesday at ten thirty in the morning?",
     "Do you have anything next Tuesday at 10:30 in the morning?"),
    ("It's a twenty nineteen Honda Civic with about forty five thousand miles.",
     "It's a 2019 Honda Civic with about 45,000 miles."),
    ("The brakes squeak when I stop, can you check them too?",
     "The brakes squeak when I stop, can you check them too?"),
    ("Can I move my appointment to Friday afternoon instead?",
     "Can I move my appointment to Friday afternoon instead?"),
    ("Please cancel the tire rotation but keep the oil change.",
     "Please cancel the tire rotation but keep the oil change."),
    ("I'll drop it off at eight and pick it up around five.",
     "I'll drop it off at 8 and pick it up around 5."),
    ("My number is five five five, two one two, three four five six.",
     "My number is 555-212-3456."),
]
PARAMS = PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE)
CHUNK = 640  # 40 ms of 16-bit audio, as the pipeline's input frames carry


class Stopwatch(BaseObserver):
    """Pipeline-clock times (s) of the frames going into and out of one service."""

    def __init__(self, service: FrameProcessor) -> None:
        super().__init__()
        self._service = service
        self.into: dict[type, float] = {}
        self.out: dict[type, list[float]] = {}

    async def on_push_frame(self, data: FramePushed) -> None:
        seconds = data.timestamp / 1e9
        if data.destination is self._service:
            self.into.setdefault(type(data.frame), seconds)
        elif data.source is self._service:
            self.out.setdefault(type(data.frame), []).append(seconds)


def words(text: str) -> list[str]:
    text = re.sub(r"(?<=\d)[:.](?=\d)", " ", text.lower())  # 10:30 and 10.30 say the same
    return re.sub(r"[^a-z0-9' ]", "", text.replace("-", "")).split()


def errors(reference: list[str], heard: list[str]) -> int:
    """Word-level edit distance (substitutions, insertions, deletions)."""
    row = list(range(len(heard) + 1))
    for i, word in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(heard, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1]


async def speak(text: str) -> tuple[bytes, float, float]:
    """The sentence's audio, seconds to its first audio frame, and RTF."""
    tts = LocalPiperTTSService(sample_rate=SAMPLE_RATE)
    watch = Stopwatch(tts)
    down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame(text)], pipeline_params=PARAMS,
                             observers=[watch])
    pcm = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    asked, audio = watch.into[TTSSpeakFrame], watch.out[TTSAudioRawFrame]
    return pcm, audio[0] - asked, (audio[-1] - asked) / (len(pcm) / 2 / SAMPLE_RATE)


async def hear(pcm: bytes) -> tuple[str, float, float]:
    """The transcription of one segment, seconds from its end to the transcription, and RTF."""
    stt = LocalWhisperSTTService(sample_rate=SAMPLE_RATE)
    watch = Stopwatch(stt)
    frames = [VADUserStartedSpeakingFrame(),
              *(InputAudioRawFrame(pcm[i:i + CHUNK], SAMPLE_RATE, 1) for i in range(0, len(pcm), CHUNK)),
              VADUserStoppedSpeakingFrame()]
    down, _ = await run_test(stt, frames_to_send=frames, pipeline_params=PARAMS, observers=[watch])
    text = " ".join(f.text.strip() for f in down if isinstance(f, TranscriptionFrame))
    latency = watch.out[TranscriptionFrame][0] - watch.into[VADUserStoppedSpeakingFrame]
    return text, latency, latency / (len(pcm) / 2 / SAMPLE_RATE)


def summary(name: str, values: list[float], unit: str = "") -> str:
    p95 = percentile(values, 0.95)
    return f"{name}: median {statistics.median(values):.3f}{unit}, p95 {p95:.3f}{unit}"


async def main() -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}; {len(SENTENCES)} sentences at "
          f"{SAMPLE_RATE} Hz")
    load_models()
    await speak("Warming up.")  # the first inference of each model sets up its buffers
    await hear(await over_the_phone((await speak("Warming up."))[0], SAMPLE_RATE))

    tts_first, tts_rtf, stt_latency, stt_rtf = [], [], [], []
    wrong = total = 0
    for spoken, written in SENTENCES:
        pcm, first, rtf = await speak(spoken)
        tts_first.append(first)
        tts_rtf.append(rtf)
        heard, latency, rtf = await hear(await over_the_phone(pcm, SAMPLE_RATE))
        stt_latency.append(latency)
        stt_rtf.append(rtf)
        wrong += errors(words(written), words(heard))
        total += len(words(written))
        print(f"  {len(pcm) / 2 / SAMPLE_RATE:4.1f} s  heard {heard!r}")

    print(summary("TTS text to first audio", tts_first, " s"))
    print(summary("TTS RTF", tts_rtf))
    print(summary("STT end of segment to transcription", stt_latency, " s"))
    print(summary("STT RTF", stt_rtf))
    print(f"WER {wrong / total:.1%} ({wrong} of {total} words, case and punctuation ignored)")
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
