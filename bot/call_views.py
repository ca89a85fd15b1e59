"""`python -m bot calls`: the recent calls, one line each; `python -m bot calls show CALL_SID`: one
call's transcript and, per answered turn, where the caller's wait went.

Everything comes from the call log (crm/call_logs.py): the per-turn figures are the ones
processors/latency_meter.py records, each stage counted from the end of the caller's speech.
Times are shop time (SHOP_TIMEZONE); numbers are masked as in the logs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import crm
from config import log_privacy
from config.phones import masked
from config.settings import get_settings
from crm.call_logs import get_call_log, recent_call_logs
from crm.errors import DatabaseUnavailable

EXIT_NO_SUCH_CALL = 2
# The stages of a caller's wait as the latency meter stores them (`stages_ms`), and their labels,
# in the order they are shown.
STAGES = {
    "turn_end": "end of turn",
    "stt_final": "speech-to-text final",
    "first_token": "model first token",
    "first_audio": "first audio",
}
WATERFALL_COLUMNS = 50


def add_commands(commands: argparse._SubParsersAction) -> None:
    """`calls` and `calls show` on `python -m bot`'s parser."""
    calls = commands.add_parser(
        "calls", help="list recent calls; `calls show CALL_SID` for one call's transcript and timings",
        description="The recent calls, newest first: when (shop time), the customer's number (masked),"
        " direction, outcome, answered turns and the slowest reply (end of the caller's speech to the"
        " agent's first audio).")
    calls.add_argument("--limit", type=int, default=20, help="how many calls (default 20)")
    views = calls.add_subparsers(dest="view")
    show = views.add_parser(
        "show", help="one call's transcript and per-turn latency stages",
        description="One call's transcript, then per answered turn the stages of the caller's wait"
        " (end-of-turn wait, speech-to-text final, model first token, first audio; barge-in when the"
        " turn cut the agent off), in milliseconds from the end of the caller's speech, as a table"
        " and as a text waterfall.")
    show.add_argument("call_sid", metavar="CALL_SID")


def main(args: argparse.Namespace) -> int:
    """Run `calls` or `calls show`; the exit code."""
    log_privacy.install(logging.WARNING)
    tz = get_settings().tz  # a bad setting stops here with one line

    async def run() -> int:
        try:
            return await _view(args, tz)
        except DatabaseUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            await crm.close()

    return asyncio.run(run())


async def _view(args: argparse.Namespace, tz: ZoneInfo) -> int:
    if args.view == "show":
        row = await get_call_log(args.call_sid)
        if row is None:
            print(f"no call with SID {args.call_sid!r} in the call log", file=sys.stderr)
            return EXIT_NO_SUCH_CALL
        print("\n".join(call_detail(row, tz)))
        return 0
    print("\n".join(call_list(await recent_call_logs(max(args.limit, 1)), tz)))
    return 0


def _customer_number(row: dict[str, Any]) -> str:
    # From the shop to the customer on a reminder, from the customer to the shop otherwise.
    number = row["to_number"] if row["direction"] == "outbound" else row["from_number"]
    return masked(number) if number else "-"


def _turns(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [figures for figures in row["metrics"] or [] if "latency_ms" in figures]


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f} s"


def _table(header: list[str], rows: Iterable[list[str]], right: set[int]) -> Iterator[str]:
    rows = list(rows)
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for cells in [header, *rows]:
        yield "  ".join(cell.rjust(width) if i in right else cell.ljust(width)
                        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))).rstrip()


def call_list(rows: list[dict[str, Any]], tz: ZoneInfo) -> list[str]:
    if not rows:
        return ["no calls in the call log yet"]
    lines = []
    for row in rows:
        turns = _turns(row)
        worst = max((figures["latency_ms"] for figures in turns), default=None)
        lines.append([row["started_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                      row["call_sid"], _customer_number(row), row["direction"],
                      row["outcome"] or ("in progress" if row["ended_at"] is None else "-"),
                      str(len(turns)), _seconds(worst)])
    header = [f"started ({tz.key})", "call SID", "number", "direction", "outcome", "turns", "worst reply"]
    return list(_table(header, lines, right={5, 6}))


def _clock(at: str | datetime, tz: ZoneInfo) -> str:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(tz).strftime("%H:%M:%S")


def call_detail(row: dict[str, Any], tz: ZoneInfo) -> list[str]:
    started = row["started_at"].astimezone(tz)
    ended = "still going"
    if row["ended_at"]:
        took = round((row["ended_at"] - row["started_at"]).total_seconds())
        ended = f"ended {_clock(row['ended_at'], tz)} ({took} s)"
    lines = [f"call {row['call_sid']}: {row['direction']}, {_customer_number(row)},"
             f" {started:%Y-%m-%d %H:%M:%S %Z}, {ended}, outcome {row['outcome'] or '-'}", "",
             "transcript:"]
    transcript = row["transcript"] or []
    lines += [f"  {_clock(turn['at'], tz)}  {turn['role']:<6}  {turn['text']}" for turn in transcript]
    if not transcript:
        lines.append("  (none: purged after CALL_LOG_RETENTION_DAYS, or nothing was said)")
    turns = _turns(row)
    if not turns:
        return [*lines, "", "no answered turns, so no timings"]
    lines += ["", "turns, in ms from the end of the caller's speech:"]
    header = ["turn", *STAGES.values(), "barge-in"]
    cells = [[str(figures["turn"]), *(_ms(_stages(figures).get(stage)) for stage in STAGES),
              _ms(figures.get("barge_in_ms"))] for figures in turns]
    lines += ["  " + line for line in _table(header, cells, right=set(range(len(header))))]
    lines += ["", *waterfall(turns)]
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _stages(figures: dict[str, Any]) -> dict[str, float]:
    # Figures stored before the stages were: only the whole wait is known.
    return figures.get("stages_ms") or {"first_audio": figures["latency_ms"]}


def spans(stages: dict[str, float]) -> dict[str, tuple[float, float]]:
    """When each stage's work ran: speech-to-text and the turn decision from the end of speech,
    the model from the turn's end, the voice from the model's first token."""
    turn_end = stages.get("turn_end", 0.0)
    starts = {"turn_end": 0.0, "stt_final": 0.0, "first_token": turn_end,
              "first_audio": stages.get("first_token", turn_end)}
    return {stage: (min(starts[stage], stages[stage]), stages[stage]) for stage in STAGES if stage in stages}


def waterfall(turns: list[dict[str, Any]]) -> list[str]:
    """Each turn's stages as bars on one scale for the whole call, so turns compare."""
    longest = max(max(_stages(figures).values()) for figures in turns) or 1.0
    per_column = longest / WATERFALL_COLUMNS
    width = max(len(label) for label in STAGES.values())
    lines = [f"waterfall (one column = {per_column:.0f} ms):"]
    for figures in turns:
        lines.append(f"  turn {figures['turn']}")
        for stage, (start, end) in spans(_stages(figures)).items():
            first = round(start / per_column)
            bar = " " * first + "#" * max(round(end / per_column) - first, 1)
            lines.append(f"    {STAGES[stage]:<{width}}  |{bar:<{WATERFALL_COLUMNS}}| {end:.0f}")
        if "barge_in_ms" in figures:
            lines.append(f"    (this turn cut the agent off: its audio was cleared"
                         f" {figures['barge_in_ms']:.0f} ms after the caller started speaking)")
    return lines
