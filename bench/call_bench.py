"""Turn-taking as the caller hears it, and calls per process (run by hand; figures go in notes).

    python bench/call_bench.py [--calls 1,10,25,50] [--turn-detection smart-turn] [--bots ours,bare]

Starts `python -m bot` as its own process (configured from the environment for the database
and cache, e.g. DATABASE_URL/REDIS_URL, else the embedded ones in .data/), with Deepgram,
OpenAI and Twilio replaced by the fakes from tests/fakes: the voice answers at once, the model
too (or after `--model-first-token-ms`, as a real one takes), speech-to-text sends each final
`--stt-final-ms` after it is due (default 250 ms, Deepgram's published median), with the words
said so far ("I need" in the first pause of "I need... um... an oil change"). `--bots ours,bare`
runs the same calls against bench/bare_pipecat_bot.py too, a bare Pipecat 1.14 bot on the same
fakes (Silero VAD, 0.2 s stop, 0.6 s speech timeout, or Pipecat's default Smart-Turn with
`--turn-detection smart-turn`), and prints each figure's ratio to it. Simulated Twilio callers
speak recorded speech; each caller's turns cycle through plain sentences, short answers ("Yes.",
"Tuesday works.") and sentences with pauses inside ("I need... um... an oil change for my
Civic."). Per call:

- reply (the headline): the end of the last audible 20 ms frame of the caller's turn -> the first
  audible agent audio (the same test of sound at both ends), everything included (VAD,
  end-of-turn wait, speech-to-text final, model, speech), by kind of turn;
- cut in: turns with pauses inside where the agent's voice (or a `clear` of it) came between
  the first pause and the end of the sentence: a pause taken for the end of the turn;
- greeting: stream `start` -> first agent audio;
- after decision (ours only): the launcher's own figure from the call log (`call_logs.metrics`,
  written by LatencyMeter): from the end of speech as the VAD heard it to the first reply audio
  sent; and the median of each stage it stores (end of turn, speech-to-text final, model first
  token, first audio), which the report draws as a waterfall;
- backchannels: "mm-hmm", "okay", "yeah", "right" or a cough said 0.8 s into each answer; taken
  for an interruption when a `clear` follows;
- gaps in the agent's audio: silences of 5-150 ms inside an answer as the caller hears it (audio
  sent too late: a stutter);
- barge-in: onset of the caller's "Actually, wait, ..." while the agent talks -> the caller stops
  hearing the agent (its audio played out, or a `clear`), and -> the `clear`.

`--echo` puts the agent's voice (recorded speech, then) back on the caller's line, `--echo-db`
down and `--echo-ms` late, as a speakerphone does.

With `--until-broken` our bot's sweep stops after the first level that breaks the budget: a call
failed, reply p95 more than 100 ms over the first level's, or barge-in p95 over 150 ms; the bare
bot then runs the same levels.

Calls of a level arrive `--arrivals` seconds apart (all at once with 0), then overlap; each
caller speaks `--turns` times before barging in.

It also samples the launcher's resident memory: idle, and at the peak of each level. CPU and
memory count the launcher's child processes too, so `LAUNCHER_PROCESSES=2` in the environment
measures the pair.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import crm  # noqa: E402
from bench.stats import percentile  # noqa: E402
from bot.call_views import STAGES  # noqa: E402
from tests.audio import SAMPLE_RATE, TEXTS, load, pauses, silence  # noqa: E402
from tests.fakes._pcm import pcm16_to_ulaw  # noqa: E402
from tests.fakes.deepgram import FakeDeepgram  # noqa: E402
from tests.fakes.openai import FakeOpenAI, Reply, Stall  # noqa: E402
from tests.fakes.twilio_caller import (  # noqa: E402
    FRAME_BYTES,
    TwilioCaller,
    audible,
    inbound_call_params,
    new_sid,
    twilio_signature,
)
from tests.fakes.twilio_rest import FakeTwilioRest  # noqa: E402
from tests.ports import free_port  # noqa: E402

TOKEN = "bench-token"
REPLY = ("Sure. I can help you book an oil change. I have openings tomorrow morning at nine, "
         "nine thirty and ten, and in the afternoon at two. Which one works best for you?")

# What callers say, by kind of turn; the paused ones pause inside the sentence (tests/audio PAUSES).
TURNS: dict[str, tuple[str, ...]] = {
    "plain": ("book_oil_change", "reschedule"),
    "short": ("yes", "tuesday_works"),
    "paused": ("paused_civic", "paused_tuesday"),
}
CYCLE = [(kind, name) for pair in zip(*TURNS.values(), strict=True)
         for kind, name in zip(TURNS, pair, strict=True)]
# Said over the agent's answer to each turn: acknowledgements, and a cough (no words).
BACKCHANNELS: tuple[str | None, ...] = ("mm_hmm", "okay", "yeah", "right", None)


def backchannel(turn: int) -> bytes:
    name = BACKCHANNELS[turn % len(BACKCHANNELS)]
    return load(name) if name else cough()


def cough() -> bytes:
    """A 200 ms burst of loud noise, in 100 ms of silence either side."""
    noise = np.random.default_rng(7).normal(0, 6000, 1600) * np.hanning(1600)
    return silence(0.1) + pcm16_to_ulaw(noise.astype("<i2").tobytes()) + silence(0.1)


@dataclass
class Figures:
    greeting: list[float] = field(default_factory=list)
    reply: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in TURNS})
    paused_turns: int = 0
    cut_in: int = 0
    after_decision: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)  # ms, as the call logs store them
    barge_in: list[float] = field(default_factory=list)
    clear: list[float] = field(default_factory=list)
    backchannels: int = 0
    false_interruptions: int = 0
    stutters: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def replies(self) -> list[float]:
        return [value for values in self.reply.values() for value in values]


def _speech_bounds(name: str) -> tuple[float, float]:
    """Where speech starts and ends inside a fixture, in seconds: its first and last audible
    20 ms frames, by the test that finds the agent's first audio too (the fake speech-to-text's
    louder threshold ends "Yes." before its "s")."""
    ulaw = load(name)
    frames = [at for at in range(0, len(ulaw), FRAME_BYTES) if audible(ulaw[at:at + FRAME_BYTES])]
    return frames[0] / SAMPLE_RATE, (frames[-1] + FRAME_BYTES) / SAMPLE_RATE


async def one_call(base: str, twilio: FakeTwilioRest, figures: Figures, delay: float = 0.0,
                   turns: int = 1, echo: tuple[float, float] | None = None) -> str:
    await asyncio.sleep(delay)
    call_sid, number = new_sid("CA"), f"+1646555{1000 + int.from_bytes(os.urandom(2)) % 9000:04d}"
    form = inbound_call_params(call_sid, number, "+13125550100", twilio.account_sid)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        answer = await client.post("/twilio/voice", data=form, headers={
            "X-Twilio-Signature": twilio_signature(TOKEN, base + "/twilio/voice", form)})
    caller = TwilioCaller.from_twiml(answer.text, call_sid=call_sid, echo=echo)
    try:
        async with caller:
            started = time.monotonic()
            first = await caller.wait_for_event("media", timeout=20)
            figures.greeting.append(first.at - started)
            await caller.wait_for_bot_silence(timeout=30)

            for number_of_turn in range(turns):
                kind, name = CYCLE[number_of_turn % len(CYCLE)]
                before, said_from = caller.position(), time.monotonic()
                await caller.say(load(name))
                speech_end = said_from + _speech_bounds(name)[1]
                if inside := pauses(name):
                    # The agent's voice, or a `clear` of it, before the caller had finished.
                    figures.paused_turns += 1
                    figures.cut_in += any(
                        said_from + inside[0][0] <= e.at <= speech_end for e in caller.events[before:]
                        if e.event == "clear" or (e.event == "media" and audible(e.payload)))
                reply = await caller.dead_air_since(speech_end, timeout=20)
                figures.reply[kind].append(reply)
                answer_from = speech_end + reply

                # Into the answer, a backchannel (or a cough): the agent should go on.
                await asyncio.sleep(0.8)
                before, said_from = caller.position(), time.monotonic()
                await caller.say(backchannel(number_of_turn))
                if number_of_turn == turns - 1:
                    await asyncio.sleep(1.0)
                    await _barge_in(caller, figures)
                    break
                await caller.wait_for_bot_silence(quiet=1.2, timeout=30)
                figures.backchannels += 1
                figures.false_interruptions += any(e.event == "clear" for e in caller.events[before:])
                figures.stutters += len(caller.gaps_in_agent_audio(answer_from, time.monotonic()))
            await caller.hang_up()
    except (TimeoutError, AssertionError, ConnectionError) as exc:
        figures.failures.append(f"{call_sid}: {exc!r}")
    return call_sid


async def _barge_in(caller: TwilioCaller, figures: Figures) -> None:
    """"Actually, wait, ..." over the agent: when the caller stops hearing it, and the `clear`."""
    before, said_from = caller.position(), time.monotonic()
    talking = asyncio.create_task(caller.say(load("actually_wait")))
    onset = said_from + _speech_bounds("actually_wait")[0]
    clear = await caller.wait_for_event("clear", timeout=10, after=before)
    if (heard_until := caller.agent_heard_until(onset)) > onset:  # the agent was talking
        figures.barge_in.append(heard_until - onset)
        figures.clear.append(clear.at - onset)
    await talking


async def logged_replies(call_sids: list[str], figures: Figures) -> None:
    """The launcher's per-turn reply figures, once each call's log has been closed."""
    for call_sid in call_sids:
        for _ in range(50):
            log = await crm.get_call_log(call_sid)
            if log and log["ended_at"] is not None:
                break
            await asyncio.sleep(0.1)
        for turn in (log or {}).get("metrics") or []:
            figures.after_decision.append(turn["latency_ms"] / 1000)
            for stage, ms in (turn.get("stages_ms") or {}).items():
                figures.stages.setdefault(stage, []).append(ms)


def _processes(launcher: psutil.Process) -> list[psutil.Process]:
    """The launcher and, with LAUNCHER_PROCESSES > 1, the processes taking its calls."""
    return [launcher, *launcher.children(recursive=True)]


def _summed(launcher: psutil.Process, figure: Callable[[psutil.Process], float]) -> float:
    total = 0.0
    for process in _processes(launcher):
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker that ended meanwhile
            total += figure(process)
    return total


def _cpu_seconds(launcher: psutil.Process) -> float:
    return _summed(launcher, lambda process: sum(process.cpu_times()[:2]))


def _rss(launcher: psutil.Process) -> int:
    return int(_summed(launcher, lambda process: process.memory_info().rss))


async def level(base: str, twilio: FakeTwilioRest, launcher: psutil.Process, calls: int,
                spread: float, turns: int, ours: bool, echo: tuple[float, float] | None
                ) -> tuple[Figures, int, float, float]:
    """Run `calls` calls at once; returns figures, peak RSS, and the launcher's and this
    process's CPU use over the level (in cores)."""
    figures, peak = Figures(), 0
    mine = psutil.Process()
    cpu_before = (_cpu_seconds(launcher), sum(mine.cpu_times()[:2]), time.monotonic())

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, _rss(launcher))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    # The callers' own garbage collections would stop their clocks for up to ~160 ms and
    # count against the launcher; memory is freed between levels instead.
    gc.disable()
    # Calls arrive spread over `spread` seconds, as phone traffic does, not in one instant.
    call_sids = await asyncio.gather(*(
        one_call(base, twilio, figures, spread * i / calls, turns, echo) for i in range(calls)))
    sampler.cancel()
    seconds = time.monotonic() - cpu_before[2]
    gc.enable()
    gc.collect()
    if ours:
        await logged_replies(call_sids, figures)
    return (figures, peak, (_cpu_seconds(launcher) - cpu_before[0]) / seconds,
            (sum(mine.cpu_times()[:2]) - cpu_before[1]) / seconds)


# The two figures reported of every distribution, and each one's ratio to the bare bot's.
QUANTILES: dict[str, Callable[[list[float]], float]] = {
    "p50": statistics.median, "p95": lambda values: percentile(values, 0.95)}


def _ms(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    if not ms:
        return "-"
    return " ".join(f"{label} {quantile(ms):.0f}" for label, quantile in QUANTILES.items()) + " ms"


def _report(bot: str, calls: int, figures: Figures, peak: int, idle: int, launcher_cpu: float,
            bench_cpu: float) -> None:
    kinds = ", ".join(f"{kind} {_ms(values)}" for kind, values in figures.reply.items())
    print(f"{bot:4s} {calls:3d} calls: reply {_ms(figures.replies)} ({kinds});"
          f" cut in {figures.cut_in}/{figures.paused_turns} paused turns;"
          f" barge-in {_ms(figures.barge_in)} (clear {_ms(figures.clear)});"
          f" backchannels taken for interruptions {figures.false_interruptions}/{figures.backchannels};"
          f" gaps in the agent's audio {figures.stutters}; greeting {_ms(figures.greeting)}"
          + (f"; after decision {_ms(figures.after_decision)}" if figures.after_decision else "")
          + f"; failed {len(figures.failures)}; peak RSS {peak / 2**20:.0f} MiB"
          f" ({(peak - idle) / 2**20 / calls:.1f} MiB per call); CPU launcher {launcher_cpu:.2f}"
          f" cores, callers+fakes {bench_cpu:.2f} cores")
    if figures.stages:  # the report's waterfall: a typical turn's stages, as the launcher saw them
        print(f"{bot:4s} {calls:3d} calls: median stages from the end of speech: " + ", ".join(
            f"{stage} {statistics.median(figures.stages[stage]):.0f}"
            for stage in STAGES if stage in figures.stages))
    for failure in figures.failures[:3]:
        print("   ", failure)


async def _start(bot: str, port: int, env: dict[str, str], turn_detection: str
                 ) -> asyncio.subprocess.Process:
    command = ([sys.executable, "-m", "bot"] if bot == "ours" else
               [sys.executable, str(ROOT / "bench" / "bare_pipecat_bot.py"), "--port", str(port),
                "--turn-detection", turn_detection])
    return await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)


async def run_bot(bot: str, args: argparse.Namespace, levels: list[int], deepgram: FakeDeepgram,
                  openai: FakeOpenAI, twilio: FakeTwilioRest) -> dict[int, Figures]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PORT": str(port), "PUBLIC_BASE_URL": base,
           "DEEPGRAM_API_KEY": "bench", "DEEPGRAM_BASE_URL": deepgram.ws_base_url,
           "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": openai.api_base,
           "TWILIO_ACCOUNT_SID": twilio.account_sid, "TWILIO_AUTH_TOKEN": TOKEN,
           "TWILIO_API_BASE_URL": twilio.base_url, "TURN_DETECTION": args.turn_detection,
           "IDLE_REPROMPT_SECONDS": "60",
           # The bench finds how many calls fit, so the launcher must not turn any away.
           "MAX_CONCURRENT_CALLS": str(max(args.calls) + 1)}
    process = await _start(bot, port, env, args.turn_detection)
    results: dict[int, Figures] = {}
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(base + "/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
        launcher = psutil.Process(process.pid)
        ours = bot == "ours"
        echo = (args.echo_db, args.echo_ms / 1000) if args.echo else None
        # Warm-up: imports, models, pools. The whole call, so the fake transcribes it in order.
        await level(base, twilio, launcher, 1, 0.0, args.turns, ours, echo)
        idle = _rss(launcher)
        print(f"{bot}: idle RSS {idle / 2**20:.0f} MiB")
        for calls in levels:
            figures, peak, launcher_cpu, bench_cpu = await level(
                base, twilio, launcher, calls, args.arrivals * calls, args.turns, ours, echo)
            _report(bot, calls, figures, peak, idle, launcher_cpu, bench_cpu)
            results[calls] = figures
            if args.until_broken and bot == "ours" and (broken := _over_budget(figures, results[levels[0]])):
                print(f"{bot}: budget broken at {calls} calls: {broken}")
                break
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    return results


def _over_budget(figures: Figures, first: Figures) -> str:
    """Why a level breaks issue 14's budget (reply p95 within 100 ms of the first level's, barge-in
    p95 at most 150 ms, no call failed), or "" when it holds."""
    reasons = []
    if figures.failures:
        reasons.append(f"{len(figures.failures)} calls failed")
    if figures.replies and first.replies and (
            (grown := percentile(figures.replies, 0.95) - percentile(first.replies, 0.95)) > 0.1):
        reasons.append(f"reply p95 {grown * 1000:.0f} ms over the first level's")
    if figures.barge_in and (barge_in := percentile(figures.barge_in, 0.95)) > 0.15:
        reasons.append(f"barge-in p95 {barge_in * 1000:.0f} ms")
    return ", ".join(reasons)


def _ratios(ours: dict[int, Figures], bare: dict[int, Figures]) -> None:
    for calls in sorted(ours.keys() & bare.keys()):
        cells = []
        for name, pick in (("reply", lambda f: f.replies), ("barge-in", lambda f: f.barge_in)):
            for label, quantile in QUANTILES.items():
                if not (pick(ours[calls]) and pick(bare[calls])):
                    continue
                mine, theirs = quantile(pick(ours[calls])), quantile(pick(bare[calls]))
                cells.append(f"{name} {label} {mine / theirs:.2f}x")
        print(f"ours / bare at {calls} calls: " + ", ".join(cells))


async def main(args: argparse.Namespace) -> None:
    # Every caller says the same turns in the same order, one speech-to-text connection each,
    # so the fake transcribes each turn as said, pauses included ("I need", "um", ...).
    script = [text for turn in range(args.turns) for text in (
        TEXTS[CYCLE[turn % len(CYCLE)][1]], TEXTS.get(BACKCHANNELS[turn % len(BACKCHANNELS)] or ""))]
    async with (FakeDeepgram(script=[*script, TEXTS["actually_wait"]], per_connection=True,
                             tts_voice="speech" if args.echo else "tone",
                             final_delay=args.stt_final_ms / 1000) as deepgram,
                FakeOpenAI(lambda _request: Stall(Reply(REPLY), args.model_first_token_ms / 1000)
                           if args.model_first_token_ms else Reply(REPLY)) as openai,
                FakeTwilioRest(auth_token=TOKEN) as twilio):
        load1, load5, _ = os.getloadavg()
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load1:.2f} /"
              f" {load5:.2f} (1 / 5 min); turn detection {args.turn_detection}; speech-to-text"
              f" final after {args.stt_final_ms:.0f} ms; model's first token after"
              f" {args.model_first_token_ms:.0f} ms; {args.turns} turns per call; barge-in"
              f" {os.environ.get('BARGE_IN', 'pause')}; echo "
              + (f"{args.echo_db:.0f} dB, {args.echo_ms:.0f} ms" if args.echo else "none"))
        results = {}
        try:
            for bot in sorted(args.bots, key=lambda bot: bot != "ours"):
                # The bare bot runs the levels ours ran, so every level has its ratio.
                levels = list(results["ours"]) if "ours" in results else args.calls
                results[bot] = await run_bot(bot, args, levels, deepgram, openai, twilio)
        finally:
            await crm.db.close()
        if {"ours", "bare"} <= results.keys():
            _ratios(results["ours"], results["bare"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 10, 25, 50])
    parser.add_argument("--turn-detection", choices=["silence", "smart-turn"], default="smart-turn")
    parser.add_argument("--bots", type=lambda s: s.split(","), default=["ours"],
                        help="ours, bare (bench/bare_pipecat_bot.py) or both: ours,bare")
    parser.add_argument("--until-broken", action="store_true",
                        help="stop our bot's sweep after the first level that breaks the budget")
    parser.add_argument("--turns", type=int, default=len(CYCLE),
                        help="caller turns per call before the barge-in (cycling through the kinds)")
    parser.add_argument("--stt-final-ms", type=float, default=250.0,
                        help="how long the speech-to-text fake takes to send each final")
    parser.add_argument("--model-first-token-ms", type=float, default=0.0,
                        help="how long the model fake takes to its first token (0: at once)")
    parser.add_argument("--arrivals", type=float, default=0.2,
                        help="seconds between call arrivals within a level (0: all at once)")
    parser.add_argument("--echo", action="store_true",
                        help="a speakerphone: the agent's voice (recorded speech) back on the line")
    parser.add_argument("--echo-db", type=float, default=-20.0, help="the echo's level")
    parser.add_argument("--echo-ms", type=float, default=150.0, help="the echo's delay")
    asyncio.run(main(parser.parse_args()))
