"""Turn-taking speed and calls per process (run by hand; figures go in notes).

    python bench/call_bench.py [--calls 1,10,25,50] [--turn-detection silence]

Starts `python -m bot` as its own process (configured from the environment for the database
and cache, e.g. DATABASE_URL/REDIS_URL, else the embedded ones in .data/), with Deepgram,
OpenAI and Twilio replaced by the zero-latency fakes from tests/fakes, and rings it with
simulated Twilio callers speaking recorded speech. For each level of concurrency all calls
run at once; each call measures:

- greeting: stream `start` -> first agent audio;
- reply overhead: end of the caller's speech -> first agent audio, minus the turn-detection
  wait the configuration asks for (VAD stop 0.2 s + TURN_SILENCE_SECONDS in `silence` mode).
  Seen by the caller, it also holds the time Silero takes to stop hearing speech (its scores
  fall below the threshold some 40-100 ms after the speech energy does) and any delay of the
  caller's audio on its way in;
- after decision: the launcher's own figure from the call log (`call_logs.metrics`, written by
  LatencyMeter): from the end of speech as the VAD heard it to the first reply audio sent, less
  the same configured wait; that is, from the turn-detection decision to the reply (in
  `smart-turn` mode, the model's own time to decide is in it too);
- barge-in: onset of the caller's speech while the agent talks -> Twilio `clear`.

Calls of a level arrive `--arrivals` seconds apart (all at once with 0), then overlap; each
caller speaks `--turns` times before barging in (more turns: longer calls, so a level can be
held with fewer arrivals per second).

It also samples the launcher's resident memory: idle, and at the peak of each level.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import crm  # noqa: E402
from tests.audio import SAMPLE_RATE, load  # noqa: E402
from tests.fakes._pcm import ulaw_to_pcm16  # noqa: E402
from tests.fakes.deepgram import FakeDeepgram, count_utterances  # noqa: E402
from tests.fakes.openai import FakeOpenAI, Reply  # noqa: E402
from tests.fakes.twilio_caller import TwilioCaller, inbound_call_params, new_sid, twilio_signature  # noqa: E402
from tests.fakes.twilio_rest import FakeTwilioRest  # noqa: E402

TOKEN = "bench-token"
VAD_STOP_SECONDS = 0.2
REPLY = ("Sure. I can help you book an oil change. I have openings tomorrow morning at nine, "
         "nine thirty and ten, and in the afternoon at two. Which one works best for you?")


@dataclass
class Figures:
    greeting: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    after_decision: list[float] = field(default_factory=list)
    barge_in: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _speech_bounds(name: str) -> tuple[float, float]:
    """Where speech starts and ends inside a fixture, in seconds."""
    segments = count_utterances(ulaw_to_pcm16(load(name)), SAMPLE_RATE)
    return segments[0][0], segments[-1][1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def one_call(base: str, twilio: FakeTwilioRest, turn_wait: float, figures: Figures,
                   delay: float = 0.0, turns: int = 1) -> str:
    await asyncio.sleep(delay)
    call_sid, number = new_sid("CA"), f"+1646555{1000 + int.from_bytes(os.urandom(2)) % 9000:04d}"
    form = inbound_call_params(call_sid, number, "+13125550100", twilio.account_sid)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        answer = await client.post("/twilio/voice", data=form, headers={
            "X-Twilio-Signature": twilio_signature(TOKEN, base + "/twilio/voice", form)})
    caller = TwilioCaller.from_twiml(answer.text, call_sid=call_sid)
    try:
        async with caller:
            started = time.monotonic()
            first = await caller.wait_for_event("media", timeout=20)
            figures.greeting.append(first.at - started)
            await caller.wait_for_bot_silence(timeout=30)

            for turn in range(turns):
                if turn:
                    await caller.wait_for_bot_silence(timeout=30)
                said_from = time.monotonic()
                await caller.say(load("book_oil_change"))
                speech_end = said_from + _speech_bounds("book_oil_change")[1]
                reply = await caller.wait_for(
                    lambda e, end=speech_end: e.event == "media" and e.at > end, timeout=20)
                figures.overhead.append(reply.at - speech_end - turn_wait)

            await asyncio.sleep(0.8)  # the agent is mid-sentence
            before = caller.position()
            said_from = time.monotonic()
            talking = asyncio.create_task(caller.say(load("actually_wait")))
            clear = await caller.wait_for_event("clear", timeout=10, after=before)
            figures.barge_in.append(clear.at - (said_from + _speech_bounds("actually_wait")[0]))
            await talking
            await caller.hang_up()
    except (TimeoutError, AssertionError) as exc:
        figures.failures.append(f"{call_sid}: {exc!r}")
    return call_sid


async def logged_replies(call_sids: list[str], turn_wait: float, figures: Figures) -> None:
    """The launcher's per-turn reply figures, once each call's log has been closed."""
    for call_sid in call_sids:
        for _ in range(50):
            log = await crm.get_call_log(call_sid)
            if log and log["ended_at"] is not None:
                break
            await asyncio.sleep(0.1)
        for turn in (log or {}).get("metrics") or []:
            figures.after_decision.append(turn["latency_ms"] / 1000 - turn_wait)


async def level(base: str, twilio: FakeTwilioRest, launcher: psutil.Process, calls: int,
                turn_wait: float, spread: float = 0.0, turns: int = 1
                ) -> tuple[Figures, int, float, float]:
    """Run `calls` calls at once; returns figures, peak RSS, and the launcher's and this
    process's CPU use over the level (in cores)."""
    figures, peak = Figures(), 0
    mine = psutil.Process()
    cpu_before = (sum(launcher.cpu_times()[:2]), sum(mine.cpu_times()[:2]), time.monotonic())

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, launcher.memory_info().rss)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    # The callers' own garbage collections would stop their clocks for up to ~160 ms and
    # count against the launcher; memory is freed between levels instead.
    gc.disable()
    # Calls arrive spread over `spread` seconds, as phone traffic does, not in one instant.
    call_sids = await asyncio.gather(*(
        one_call(base, twilio, turn_wait, figures, spread * i / calls, turns) for i in range(calls)))
    sampler.cancel()
    seconds = time.monotonic() - cpu_before[2]
    gc.enable()
    gc.collect()
    await logged_replies(call_sids, turn_wait, figures)
    return (figures, peak, (sum(launcher.cpu_times()[:2]) - cpu_before[0]) / seconds,
            (sum(mine.cpu_times()[:2]) - cpu_before[1]) / seconds)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def main(args: argparse.Namespace) -> None:
    async with (FakeDeepgram(script=["I'd like to book an oil change"] * 100_000) as deepgram,
                FakeOpenAI(lambda _request: Reply(REPLY)) as openai,
                FakeTwilioRest(auth_token=TOKEN) as twilio):
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PORT": str(port), "PUBLIC_BASE_URL": base,
               "DEEPGRAM_API_KEY": "bench", "DEEPGRAM_BASE_URL": deepgram.ws_base_url,
               "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": openai.api_base,
               "TWILIO_ACCOUNT_SID": twilio.account_sid, "TWILIO_AUTH_TOKEN": TOKEN,
               "TWILIO_API_BASE_URL": twilio.base_url, "TURN_DETECTION": args.turn_detection,
               "IDLE_REPROMPT_SECONDS": "60",
               # The bench finds how many calls fit, so the launcher must not turn any away.
               "MAX_CONCURRENT_CALLS": str(max(args.calls) + 1)}
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(300):
                    try:
                        if (await client.get(base + "/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
            launcher = psutil.Process(bot.pid)
            silence = float(os.environ.get("TURN_SILENCE_SECONDS", "0.6"))
            turn_wait = VAD_STOP_SECONDS + (silence if args.turn_detection == "silence" else 0)
            await level(base, twilio, launcher, 1, turn_wait)  # warm-up: imports, models, pools
            idle = launcher.memory_info().rss
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
                  f"{os.getloadavg()[0]:.2f}; turn detection {args.turn_detection} "
                  f"(wait subtracted {turn_wait:.2f} s); launcher idle RSS {idle / 2**20:.0f} MiB")
            for calls in args.calls:
                figures, peak, launcher_cpu, bench_cpu = await level(
                    base, twilio, launcher, calls, turn_wait, args.arrivals * calls, args.turns)
                ms = {name: [v * 1000 for v in getattr(figures, name)]
                      for name in ("greeting", "overhead", "after_decision", "barge_in")}
                print(f"{calls:3d} calls: " + "; ".join(
                    f"{name} p50 {statistics.median(v):.0f} ms p95 {_percentile(v, 0.95):.0f} ms"
                    for name, v in ms.items() if v)
                    + f"; failed {len(figures.failures)}; peak RSS {peak / 2**20:.0f} MiB"
                    f" ({(peak - idle) / 2**20 / calls:.1f} MiB per call); CPU launcher"
                    f" {launcher_cpu:.2f} cores, callers+fakes {bench_cpu:.2f} cores")
                for failure in figures.failures[:3]:
                    print("   ", failure)
        finally:
            await crm.db.close()
            bot.terminate()
            await asyncio.wait_for(bot.wait(), 30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 10, 25, 50])
    parser.add_argument("--turn-detection", choices=["silence", "smart-turn"], default="silence")
    parser.add_argument("--turns", type=int, default=1,
                        help="caller turns per call before the barge-in (longer calls)")
    parser.add_argument("--arrivals", type=float, default=0.2,
                        help="seconds between call arrivals within a level (0: all at once)")
    asyncio.run(main(parser.parse_args()))
