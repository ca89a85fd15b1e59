"""The benchmark report's Markdown: machine, each stage's figures, the seed targets, the last run."""

from __future__ import annotations

from typing import Any

# The seed guide's performance targets (ms) that a stage measures: (target, stage, figure, scale).
TARGETS = [
    ("Customer lookup (cached) < 2 ms", "lookup", "cached p99 ms", 2, 1),
    ("Customer lookup (DB) < 30 ms", "lookup", "uncached p99 ms", 30, 1),
    ("Calendar freebusy < 1 s", "calendar", "check p99", 1000, 1),
    ("Appointment booking < 2 s", "calendar", "book p99", 2000, 1),
    ("STT transcript (final) < 500 ms", "offline_speech", "STT end of segment to transcription p95",
     500, 1000),
    ("TTS first byte < 300 ms", "offline_speech", "TTS text to first audio p95", 300, 1000),
    ("Barge-in response < 200 ms", "calls", "ours 1 calls barge-in p95 ms", 200, 1),
]


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"  # no 2.65e+03 in a table


def _change(now: float, before: float | None) -> str:
    if before is None:
        return "-"
    change = ("+" if now >= before else "") + _number(now - before)
    return change + (f" ({(now - before) / before:+.0%})" if before else "")


def _stage(name: str, stage: dict[str, Any], previous: dict[str, Any]) -> list[str]:
    lines = [f"## {name}", ""]
    if not stage["ok"]:
        return [*lines, f"**Failed** after {stage['seconds']:.0f} s: `{stage['error']}`", ""]
    before = previous.get("stages", {}).get(name, {}).get("figures", {})
    lines += [f"{stage['seconds']:.0f} s.", "", "| figure | value | change since last run |",
              "|---|---|---|"]
    lines += [f"| {key} | {_number(value)} | {_change(value, before.get(key))} |"
              for key, value in stage["figures"].items()]
    return [*lines, ""]


def _targets(stages: dict[str, Any]) -> list[str]:
    lines = ["## Against the seed targets", "", "| target | measured (ms) | met |", "|---|---|---|"]
    for label, name, key, limit, scale in TARGETS:
        value = stages.get(name, {}).get("figures", {}).get(key)
        if value is None:
            lines.append(f"| {label} | not measured | - |")
        else:
            met = "yes" if value * scale < limit else "no"
            lines.append(f"| {label} | {key}: {_number(value * scale)} | {met} |")
    return [*lines, ""]


def markdown(report: dict[str, Any], previous: dict[str, Any], plots: list[str]) -> str:
    """The README for one run; `previous` is the last run's report ({} for none)."""
    machine = report["machine"]
    lines = ["# Benchmark report", "",
             f"- date: {report['date']} ({'quick' if report['quick'] else 'full'} run)",
             f"- commit: {report['commit']}",
             f"- machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']:.1f} GiB RAM",
             f"- load average before / after: {machine['load_before']} / {machine['load_after']}",
             f"- previous run: {previous.get('date', 'none')}", ""]
    lines += _targets(report["stages"])
    for name, stage in report["stages"].items():
        lines += _stage(name, stage, previous)
    lines += [f"![{plot}]({plot})" for plot in plots]
    return "\n".join(lines) + "\n"
