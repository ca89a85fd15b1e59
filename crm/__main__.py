"""`python -m crm init` creates or migrates the schema; `python -m crm seed` loads demo data;
`python -m crm purge` deletes call-log transcripts older than CALL_LOG_RETENTION_DAYS;
`python -m crm replay` writes the call-log writes kept while the database was down."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from datetime import date

from config import log_privacy
from config.settings import get_settings
from crm import close, journal, migrate, purge_transcripts, seed
from crm.errors import DatabaseUnavailable


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="create or migrate the schema (idempotent)")
    seeding = commands.add_parser("seed", help="load deterministic demo data")
    defaults = seed.Counts()
    seeding.add_argument("--customers", type=int, default=defaults.customers)
    seeding.add_argument("--vehicles", type=int, default=defaults.vehicles)
    seeding.add_argument("--appointments", type=int, default=defaults.appointments)
    seeding.add_argument("--seed", type=int, default=42, help="same seed, same data")
    seeding.add_argument("--today", type=date.fromisoformat, default=None,
                         help="the day appointments are spread around (default: today, shop time)")
    seeding.add_argument("--reset", action="store_true", help="replace existing demo data")
    commands.add_parser(
        "purge", help="delete call-log transcripts older than CALL_LOG_RETENTION_DAYS",
        description="Empty the transcripts of calls started more than CALL_LOG_RETENTION_DAYS days"
        " ago, keeping each call's row (direction, times, outcome, timings) for statistics."
        " Safe to run daily, and concurrently.")
    commands.add_parser(
        "replay", help="write the call-log writes kept while the database was down",
        description="Write what the call-log journal holds (in Redis, and in CALL_LOG_JOURNAL_PATH"
        " when Redis was down too) to the database, oldest first. The launcher does this by itself"
        " every CALL_LOG_JOURNAL_REPLAY_SECONDS; safe to run at any time, and concurrently.")
    return parser


async def _run(args: argparse.Namespace) -> int:
    try:
        applied = await migrate.migrate()
        if args.command == "init":
            names = ", ".join(f"{m.version:03d}_{m.name}" for m in applied)
            print(f"applied {names}" if applied else "schema is up to date")
            return 0
        if args.command == "replay":
            written = await journal.replay()
            print(f"wrote {written} waiting call-log writes")
            return 0
        if args.command == "purge":
            days = get_settings().call_log_retention_days
            purged = await purge_transcripts(days)
            print(f"purged the transcripts of {purged} call logs older than {days} days")
            return 0
        if min(args.customers, args.vehicles, args.appointments) < 0 or (
            args.vehicles and not args.customers
        ):
            print("counts must be >= 0, and vehicles need customers", file=sys.stderr)
            return 2
        started = time.perf_counter()
        counts = seed.Counts(args.customers, args.vehicles, args.appointments)
        loaded = await seed.seed(counts, args.seed, args.today, args.reset,
                                 progress=sys.stderr.isatty())
        took = time.perf_counter() - started
        print(", ".join(f"{n} {table}" for table, n in loaded.items()) + f" loaded in {took:.1f} s")
        return 0
    except seed.AlreadySeeded as exc:
        print(f"refusing to seed: {exc}", file=sys.stderr)
        return 1
    except (DatabaseUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await close()


def main() -> None:
    args = _parser().parse_args()
    log_privacy.install(logging.WARNING)
    get_settings()  # a bad setting stops here with one line
    sys.exit(asyncio.run(_run(args)))


if __name__ == "__main__":
    main()
