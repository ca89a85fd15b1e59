"""The one percentile every benchmark here reports."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the value `q` (0-1) of the way up the sorted values; NaN for none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
