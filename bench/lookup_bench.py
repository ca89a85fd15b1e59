"""Customer lookup speed against the seeded database (run by hand; figures go in notes).

    python -m crm init && python -m crm seed
    python bench/lookup_bench.py [--lookups 10000] [--runs 5] [--concurrency 50]

Per run: every lookup of a fresh set of phones once uncached (cache emptied first: cache
read, one database round trip, cache write), then again cached; then the same lookups
spread over `--concurrency` tasks for throughput. Prints each run and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import crm  # noqa: E402
from bench.stats import percentile  # noqa: E402
from crm import db  # noqa: E402
from crm.cache import cache  # noqa: E402


def _line(figures: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" if k.endswith("ms") else f"{k} {v:.0f}"
                     for k, v in figures.items())


async def _timed(phones: list[str]) -> list[float]:
    took = []
    for phone in phones:
        start = time.perf_counter()
        answer = await crm.lookup_customer(phone)
        took.append((time.perf_counter() - start) * 1000)
        assert answer["found"], phone
    return took


async def _throughput(phones: list[str], concurrency: int) -> float:
    queue = iter(phones)

    async def worker() -> None:
        for phone in queue:
            await crm.lookup_customer(phone)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(phones) / (time.perf_counter() - start)


async def main(args: argparse.Namespace) -> None:
    async with db.connection() as conn:
        rows = await (await conn.execute("SELECT phone FROM customers")).fetchall()
    everyone = [r["phone"] for r in rows]
    if len(everyone) < 100:
        raise SystemExit("seed the database first: python -m crm seed")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
          f" load average {os.getloadavg()[0]:.2f}; {len(everyone)} customers")
    rng = random.Random(args.seed)
    results = []
    for run in range(1, args.runs + 1):
        phones = [rng.choice(everyone) for _ in range(args.lookups)]
        await (await cache()).clear("customer:")
        distinct = list(dict.fromkeys(phones))
        uncached = await _timed(distinct)
        cached = await _timed(phones)
        await (await cache()).clear("customer:")
        cold_rate = await _throughput(distinct, args.concurrency)
        warm_rate = await _throughput(phones, args.concurrency)
        figures = {
            "uncached p50 ms": percentile(uncached, 0.5),
            "uncached p99 ms": percentile(uncached, 0.99),
            "cached p50 ms": percentile(cached, 0.5), "cached p99 ms": percentile(cached, 0.99),
            f"uncached/s at {args.concurrency}": cold_rate,
            f"cached/s at {args.concurrency}": warm_rate,
        }
        results.append(figures)
        print(f"run {run}: " + _line(figures))
    print("median of runs: " + _line({k: statistics.median(r[k] for r in results)
                                      for k in results[0]}))
    await crm.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
