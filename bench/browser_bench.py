"""The browser conversation as its user hears it (run by hand; figures go in notes).

    python bench/browser_bench.py [--rounds 2]

Starts `python -m bot` as its own process with no Deepgram key (so offline speech: Whisper
tiny.en in, Piper out) and the language model replaced by the zero-latency OpenAI fake from
tests/fakes, then opens its page in a real headless Chromium whose microphone plays caller
sentences (in the offline voice) with pauses between them. The page's own WebRTC statistics, sampled every
10 ms, give both sides on one clock: the microphone's audio energy (`media-source`) and the
agent's audio arriving (`inbound-rtp`). Per caller sentence:

- reply: the last voiced sample of the caller's sentence -> the first voiced sample of the
  agent's answer, all included (VAD, end-of-turn wait, transcription, model, speech, WebRTC);
- server: the launcher's own figure for the same turn from the call log (LatencyMeter: the end
  of speech as its VAD heard it -> the first reply audio sent).

Database and cache come from the environment (DATABASE_URL/REDIS_URL), else the embedded ones.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import re
import statistics
import sys
import tempfile
import wave
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from pipeline.offline_speech import load_voice  # noqa: E402
from tests.bot.chromium import Chromium  # noqa: E402
from tests.fakes.openai import FakeOpenAI, Reply  # noqa: E402
from tests.ports import free_port  # noqa: E402

SENTENCES = ("Hi, I'd like to book an oil change for my Civic.", "Tomorrow at ten in the morning works.",
             "Yes, that's right.", "Can I move my appointment to Friday?")
QUIET_SECONDS = 6  # after each sentence: the agent's answer fits, and the next turn is a new one
VOICED = 1e-5  # audio energy per second above which a stats interval counts as voiced
REPLY = "Sure, I can help with that."
SAMPLER = """
window.benchSamples = [];
window.benchSampler = setInterval(async () => {
  const stats = await pc.getStats();
  let mic = 0, agent = 0;
  stats.forEach(r => {
    if (r.type === "media-source" && r.kind === "audio") mic = r.totalAudioEnergy || 0;
    if (r.type === "inbound-rtp" && r.kind === "audio") agent = r.totalAudioEnergy || 0;
  });
  benchSamples.push([performance.now(), mic, agent]);
}, 10);
"""


def _microphone(path: Path, rounds: int) -> Path:
    """The caller's sentences in the offline voice, each followed by quiet."""
    voice = load_voice()
    rate = voice.config.sample_rate
    quiet = bytes(2 * rate * QUIET_SECONDS)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(quiet)  # the greeting
        for _ in range(rounds):
            for sentence in SENTENCES:
                wav.writeframes(b"".join(c.audio_int16_bytes for c in voice.synthesize(sentence)) + quiet)
        wav.writeframes(quiet * 10)  # the file loops: no second round of speech meanwhile
    return path


def _voiced(samples: list[list[float]], column: int) -> list[float]:
    """Times (ms) of the sampling intervals whose energy rose faster than VOICED per second."""
    times = []
    for before, after in itertools.pairwise(samples):
        seconds = (after[0] - before[0]) / 1000
        if seconds > 0 and (after[column] - before[column]) / seconds > VOICED:
            times.append(after[0])
    return times


def _reply_latencies(samples: list[list[float]]) -> list[float]:
    """Per caller sentence: its last voiced moment -> the agent's first voiced moment after it."""
    mic, agent = _voiced(samples, 1), _voiced(samples, 2)
    ends = [t for t, after in zip(mic, [*mic[1:], float("inf")], strict=True) if after - t > 1500]
    latencies = []
    for end in ends:
        answer = next((t for t in agent if t > end), None)
        if answer is not None and answer - end < QUIET_SECONDS * 1000:
            latencies.append(answer - end)
    return latencies


def _summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    ordered = sorted(values)
    p95 = percentile(ordered, 0.95)
    return (f"{name}: median {statistics.median(ordered):.0f} ms, p95 {p95:.0f} ms,"
            f" min {ordered[0]:.0f}, max {ordered[-1]:.0f} (n={len(ordered)})")


async def _page_url(bot: asyncio.subprocess.Process) -> str:
    assert bot.stdout is not None
    while line := await bot.stdout.readline():
        if found := re.search(r"Talk in a browser:\s+(http://\S+)", line.decode()):
            return found[1]
    raise RuntimeError("the launcher ended before printing its page")


async def _drain(bot: asyncio.subprocess.Process) -> None:
    assert bot.stdout is not None
    while await bot.stdout.readline():
        pass


async def main(rounds: int) -> None:
    async with FakeOpenAI(lambda _request: Reply(REPLY), api_key="bench") as openai:
        port = free_port()
        env = {key: value for key, value in os.environ.items()
               if key not in ("DEEPGRAM_API_KEY", "PUBLIC_BASE_URL", "STT_PROVIDER", "TTS_PROVIDER")}
        env.update(PORT=str(port), OPENAI_API_KEY="bench", OPENAI_BASE_URL=openai.api_base,
                   TEST_PAGE="true", IDLE_REPROMPT_SECONDS="60", PYTHONPATH=str(ROOT))
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        drain: asyncio.Task[None] | None = None
        try:
            url = await asyncio.wait_for(_page_url(bot), 120)
            # Read on, or its log fills the pipe and the launcher stops.
            drain = asyncio.create_task(_drain(bot))
            with tempfile.TemporaryDirectory() as folder:
                microphone = _microphone(Path(folder) / "caller.wav", rounds)
                async with Chromium(microphone) as browser:
                    await browser.open(url)
                    await browser.evaluate("document.getElementById('call').click()")
                    await browser.until("document.getElementById('state').textContent"
                                        ".startsWith('Connected')", within=30)
                    await browser.evaluate(SAMPLER)
                    speech = rounds * len(SENTENCES) * (QUIET_SECONDS + 3) + QUIET_SECONDS
                    await asyncio.sleep(speech)
                    samples = await browser.evaluate("benchSamples")
                    call_sid = await browser.evaluate("callSid")
                    token = url.split("token=")[1]
                    async with httpx.AsyncClient() as client:
                        call = (await client.get(f"http://127.0.0.1:{port}/test/calls/{call_sid}",
                                                 headers={"X-Test-Token": token})).json()
                    await browser.evaluate("document.getElementById('hangup').click()")
        finally:
            bot.terminate()
            await asyncio.wait_for(bot.wait(), 60)
            if drain is not None:
                await drain
    server = [turn["latency_ms"] for turn in call["turns"] if "latency_ms" in turn]
    heard = [turn["text"] for turn in call["transcript"] if turn["role"] == "caller"]
    load1, load5, _ = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
          f" load average {load1:.2f} / {load5:.2f} (1 / 5 min)")
    print(f"caller sentences: {rounds * len(SENTENCES)}; transcribed: {len(heard)}")
    print(_summary("reply, as the browser hears it", _reply_latencies(samples)))
    print(_summary("reply, the launcher's own figure", server))
    for text in heard:
        print(f"  heard: {text}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="times the caller says each sentence")
    asyncio.run(main(parser.parse_args().rounds))
