"""Calendar speed on the local backend against the seeded database (run by hand).

    python -m crm init && python -m crm seed
    python bench/calendar_bench.py [--checks 2000] [--bookings 300] [--runs 5] [--concurrency 50]

Per run: `check_availability` for random open days in the coming weeks and random services;
`book_appointment` one at a time, each on a slot just seen open, for random customers; then
as many bookings drawn up front and spread over `--concurrency` tasks (bookings/s; some race
for the same slot and are refused, which is counted). What a phase booked is deleted when it
ends (and whatever an interrupted earlier run left behind, at the start), so the seeded data
is left as it was. Prints the machine, each run and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import calendar_adapter  # noqa: E402
import crm  # noqa: E402
from calendar_adapter.rules import ShopRules  # noqa: E402
from config.settings import get_settings  # noqa: E402
from crm import db  # noqa: E402
from crm.appointments import ACTIVE_SQL  # noqa: E402

Request = tuple[str, str, int, int]  # start time, service, customer id, vehicle id
_KEYS = "bench:"  # idempotency-key prefix of every benchmark booking
from bench.stats import percentile  # noqa: E402


async def _timed(call: Awaitable[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    """Milliseconds the call took, and its answer."""
    start = time.perf_counter()
    answer = await call
    return (time.perf_counter() - start) * 1000, answer


async def _requests(
    rng: random.Random, days: list[date], services: list[str], people: list[tuple[int, int]], count: int
) -> list[Request]:
    """`count` bookings on slots open at the moment of asking (the agent checks first)."""
    found: list[Request] = []
    misses = 0
    while len(found) < count:
        service = rng.choice(services)
        slots = (await calendar_adapter.check_availability(rng.choice(days), service))["slots"]
        if slots:
            found.append((rng.choice(slots), service, *rng.choice(people)))
        elif (misses := misses + 1) > 1000:
            raise SystemExit("the coming weeks are fully booked; use fewer --bookings or more --days")
    return found


async def _book(request: Request, key: str) -> dict[str, Any]:
    start, service, customer_id, vehicle_id = request
    return await calendar_adapter.book_appointment(
        start, service, customer_id, vehicle_id, idempotency_key=key
    )


async def _clean(prefix: str) -> int:
    """Delete the bookings whose idempotency keys start with `prefix`; forget their callers."""
    async with db.connection() as conn:
        rows = await (
            await conn.execute(
                "DELETE FROM appointments WHERE idempotency_key LIKE %s RETURNING customer_id",
                (prefix + "%",),
            )
        ).fetchall()
    for customer_id in {row["customer_id"] for row in rows}:
        await crm.forget_customer(customer_id)
    return len(rows)


async def _run(
    args: argparse.Namespace, rng: random.Random, people: list[tuple[int, int]]
) -> dict[str, float]:
    rules = ShopRules(get_settings())
    today = datetime.now(rules.tz).date()
    ahead = [today + timedelta(days=n) for n in range(1, min(args.days, rules.max_days_ahead) + 1)]
    days = [day for day in ahead if rules.periods(day)]
    services = sorted(rules.durations)
    prefix = f"{_KEYS}{secrets.token_hex(4)}:"
    deleted = 0
    try:
        checks = [
            (await _timed(calendar_adapter.check_availability(rng.choice(days), rng.choice(services))))[0]
            for _ in range(args.checks)
        ]
        booked, refused_alone = [], 0
        for n in range(args.bookings):  # each on a slot just seen open, as in a call
            (request,) = await _requests(rng, days, services, people, 1)
            took, answer = await _timed(_book(request, f"{prefix}s{n}"))
            booked.append(took)
            refused_alone += not answer["success"]
        deleted += await _clean(prefix)  # the concurrent phase finds the same room

        # Drawn up front from one picture of the calendar, so some of them collide.
        requests = await _requests(rng, days, services, people, args.bookings)
        queue = iter(enumerate(requests))
        concurrent: list[dict[str, Any]] = []

        async def worker() -> None:
            for n, request in queue:
                concurrent.append(await _book(request, f"{prefix}c{n}"))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - start
    finally:
        deleted += await _clean(prefix)
    succeeded = sum(answer["success"] for answer in concurrent)
    return {
        "check p50": percentile(checks, 0.5),
        "check p99": percentile(checks, 0.99),
        "book p50": percentile(booked, 0.5),
        "book p99": percentile(booked, 0.99),
        "bookings/s": succeeded / elapsed,
        "attempts/s": len(concurrent) / elapsed,
        "refused alone": refused_alone,
        "refused racing": len(concurrent) - succeeded,
        "deleted": deleted,
    }


async def main(args: argparse.Namespace) -> None:
    async with db.connection() as conn:
        people = [
            (row["customer_id"], row["id"])
            for row in await (await conn.execute("SELECT id, customer_id FROM vehicles")).fetchall()
        ]
        counts = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM customers) AS customers,"
                " (SELECT count(*) FROM vehicles) AS vehicles,"
                " (SELECT count(*) FROM appointments) AS appointments,"
                " (SELECT count(*) FROM appointments WHERE scheduled_at > now()"
                f"   AND status IN {ACTIVE_SQL}) AS upcoming,"
                " current_setting('server_version') AS postgres"
            )
        ).fetchone()
    if len(people) < 100:
        raise SystemExit("seed the database first: python -m crm init && python -m crm seed")
    leftover = await _clean(_KEYS)
    if leftover:
        print(f"deleted {leftover} bookings an interrupted earlier run left behind")
    settings = get_settings()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs,"
        f" load average {' '.join(f'{load:.2f}' for load in os.getloadavg())};"
        f" PostgreSQL {counts['postgres']};"
        f" {counts['customers']} customers, {counts['vehicles']} vehicles,"
        f" {counts['appointments']} appointments ({counts['upcoming']} upcoming);"
        f" {settings.shop_bays} bays, backend local"
    )
    rng = random.Random(args.seed)
    results = []
    for run in range(1, args.runs + 1):
        figures = await _run(args, rng, people)
        results.append(figures)
        print(
            f"run {run}: "
            + ", ".join(
                f"{name} {value:.2f}" if name.endswith(("p50", "p99")) else f"{name} {value:.0f}"
                for name, value in figures.items()
            )
        )
    print(
        f"median of {args.runs} runs (ms; bookings/s with {args.concurrency} tasks): "
        + ", ".join(f"{name} {statistics.median(r[name] for r in results):.2f}" for name in results[0])
    )
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    await calendar_adapter.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=2000, help="check_availability calls per run")
    parser.add_argument(
        "--bookings", type=int, default=300, help="sequential bookings per run, and as many concurrent ones"
    )
    parser.add_argument("--concurrency", type=int, default=50, help="tasks booking at once")
    parser.add_argument("--days", type=int, default=56, help="how many days ahead to pick from")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    os.environ["CALENDAR_BACKEND"] = "local"  # never book benchmark traffic on a real Google calendar
    asyncio.run(main(arguments))
