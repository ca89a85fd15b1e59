"""Figures parsed out of the benchmark scripts' printed lines (the scripts stay print-only)."""

from __future__ import annotations

import re

_LEVEL = re.compile(r"^(ours|bare)\s+(\d+) calls: reply p50 (\d+) p95 (\d+) ms.*?"
                    r"peak RSS (\d+) MiB.*?CPU launcher ([\d.]+) cores")
_BARGE_IN = re.compile(r"barge-in p50 \d+ p95 (\d+) ms")
_STAGES = re.compile(r"^(ours|bare)\s+(\d+) calls: median stages from the end of speech: (.+)$")
_BROKEN = re.compile(r"^(ours|bare): budget broken at (\d+) calls")
_RATIOS = re.compile(r"^ours / bare at (\d+) calls: (.+)$")
_RATIO = re.compile(r"([\w-]+ p\d+) ([\d.]+)x")
_SUMMARY = re.compile(r"^(.+): median ([\d.]+)(?: s)?, p95 ([\d.]+)")


def _pairs(text: str) -> dict[str, float]:
    """"name 1.23, other name 4.56" -> {"name": 1.23, "other name": 4.56}."""
    return {name: float(value) for name, value in (cell.rsplit(" ", 1) for cell in text.split(", "))}


def lookup(stdout: str) -> dict[str, float]:
    """lookup_bench.py: its median-of-runs line (ms and lookups/s)."""
    return next((_pairs(line.split(": ", 1)[1]) for line in stdout.splitlines()
                 if line.startswith("median of runs: ")), {})


def calendar(stdout: str) -> dict[str, float]:
    """calendar_bench.py: its median-of-runs line (ms and bookings/s)."""
    return next((_pairs(line.split("): ", 1)[1]) for line in stdout.splitlines()
                 if line.startswith("median of ")), {})


def offline_speech(stdout: str) -> dict[str, float]:
    """offline_speech_bench.py: median and p95 of each summary line, and the WER."""
    figures: dict[str, float] = {}
    for line in stdout.splitlines():
        if match := _SUMMARY.match(line):
            figures[f"{match[1]} median"], figures[f"{match[1]} p95"] = map(float, match.group(2, 3))
        elif line.startswith("WER "):
            figures["WER %"] = float(line.split()[1].rstrip("%"))
    return figures


def calls(stdout: str) -> dict[str, float]:
    """call_bench.py, per bot and level: reply p50/p95 and barge-in p95 (ms), peak RSS, launcher CPU,
    the median of each stage of a turn (ms), the level that broke the budget; and ours over the
    bare bot's, where both ran."""
    figures: dict[str, float] = {}
    for line in stdout.splitlines():
        if match := _LEVEL.match(line):
            key = f"{match[1]} {match[2]} calls"
            figures |= {f"{key} reply p50 ms": float(match[3]), f"{key} reply p95 ms": float(match[4]),
                        f"{key} peak RSS MiB": float(match[5]), f"{key} CPU cores": float(match[6])}
            if barge_in := _BARGE_IN.search(line):
                figures[f"{key} barge-in p95 ms"] = float(barge_in[1])
        elif match := _STAGES.match(line):
            figures |= {f"{match[1]} {match[2]} calls stage {stage} ms": value
                        for stage, value in _pairs(match[3]).items()}
        elif match := _BROKEN.match(line):
            figures[f"{match[1]} budget broken at calls"] = float(match[2])
        elif match := _RATIOS.match(line):  # ours / bare in the same run: what a figure means
            figures |= {f"ours/bare {match[1]} calls {name} x": float(ratio)
                        for name, ratio in _RATIO.findall(match[2])}
    return figures


PARSERS = {"lookup": lookup, "calendar": calendar, "offline_speech": offline_speech, "calls": calls}
