"""The benchmark report's PNG plots of call_bench's levels."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bot.call_views import STAGES, spans

_KEY = re.compile(r"^(\w+) (\d+) calls (.+)$")


def _series(figures: dict[str, float], name: str) -> dict[str, tuple[list[int], list[float]]]:
    """{bot: (concurrent calls, values)} of one per-level figure."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for key, value in figures.items():
        if (match := _KEY.match(key)) and match[3] == name:
            calls, values = series.setdefault(match[1], ([], []))
            calls.append(int(match[2]))
            values.append(value)
    return series


def _plot(path: Path, figures: dict[str, float], names: list[tuple[str, str]], title: str) -> None:
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5))
    for ax, (name, label) in zip([axes] if len(names) == 1 else axes, names, strict=True):
        for bot, (calls, values) in _series(figures, name).items():
            ax.plot(calls, values, marker="o", label=bot)
        ax.set(xlabel="concurrent calls", ylabel=label)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _waterfall(path: Path, figures: dict[str, float]) -> bool:
    """A typical turn of the fewest concurrent calls measured: each stage's median as a bar from
    when its work starts (the same spans `python -m bot calls show` draws)."""
    levels = sorted({int(m[2]) for key in figures if (m := _KEY.match(key)) and m[3].startswith("stage ")})
    if not levels:
        return False
    stages = {stage: figures[key] for stage in STAGES
              if (key := f"ours {levels[0]} calls stage {stage} ms") in figures}
    bars = list(spans(stages).items())
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(bars) + 1.2))
    for row, (_, (start, end)) in enumerate(reversed(bars)):
        ax.barh(row, end - start, left=start)
        ax.text(end, row, f" {end:.0f} ms", va="center")
    ax.set_yticks(range(len(bars)), [STAGES[stage] for stage, _ in reversed(bars)])
    ax.set(xlabel="ms from the end of the caller's speech (medians)")
    ax.set_xlim(0, max(end for _, (_, end) in bars) * 1.2)
    fig.suptitle(f"A typical turn's stages, {levels[0]} call{'s' if levels[0] > 1 else ''} at once")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write(directory: Path, call_figures: dict[str, float]) -> list[str]:
    """Writes the plots of call_bench's figures into `directory`; returns their file names."""
    if not call_figures:
        return []
    plots = {"reply_and_cpu.png": ([("reply p95 ms", "reply p95 (ms)"),
                                    ("CPU cores", "launcher CPU (cores)")], "Reply p95 and launcher CPU"),
             "memory.png": ([("peak RSS MiB", "launcher peak RSS (MiB)")], "Memory")}
    for name, (names, title) in plots.items():
        _plot(directory / name, call_figures, names, title)
    waterfall = ["waterfall.png"] if _waterfall(directory / "waterfall.png", call_figures) else []
    return [*waterfall, *plots]
