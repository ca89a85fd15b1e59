"""Phone the customers of one day's scheduled appointments with a reminder.

Each appointment is claimed in the database before it is dialled, so two copies of this
script, or a re-run after a crash, never call anyone twice. Numbers outside REMINDER_ALLOWLIST
are never dialled, and nobody is dialled outside REMINDER_CALL_WINDOW (shop time zone).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import date

import crm
from config import log_privacy
from config.settings import get_settings
from reminders.policy import ReminderConfig, require_dialling
from reminders.run import run
from reminders.summary import EXIT_ATTENTION
from telephony.rest import TwilioRest

EPILOG = """\
exit codes:
  0  every selected appointment was dialled or deliberately skipped
  1  a dial failed, a reminder needs a person (left in 'dialling' by a run that died, or whose
     call Twilio's list of calls could neither show nor rule out), or the database could not be
     reached
  2  bad configuration (one line names the setting)
  3  refused: outside calling hours; run again inside them

settings (environment or .env): REMINDER_ALLOWLIST, REMINDER_CALL_WINDOW (09:00-19:00),
REMINDER_CALLS_PER_SECOND (1), REMINDER_MAX_ATTEMPTS (3), REMINDER_BACKOFF_SECONDS (2),
SHOP_TIMEZONE, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER (caller id),
TWILIO_API_BASE_URL, PUBLIC_BASE_URL (where Twilio reaches the launcher)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reminders", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the appointments' day (default: tomorrow in SHOP_TIMEZONE)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be dialled or skipped, and why; dial nobody, write nothing")
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    config = ReminderConfig.from_settings(settings)
    telephony = None if args.dry_run else TwilioRest(settings)
    try:
        summary = await run(config, telephony, day=args.date, dry_run=args.dry_run,
                            report=lambda line: print(line, flush=True))
        print(summary.render(), flush=True)
        return summary.exit_code()
    except crm.DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ATTENTION
    finally:
        if telephony is not None:
            await telephony.close()
        await crm.close()


def main() -> None:
    args = _parser().parse_args()
    log_privacy.install(logging.WARNING)
    settings = get_settings()  # a bad setting stops here with one line, exit code 2
    ReminderConfig.from_settings(settings)
    require_dialling(settings)
    sys.exit(asyncio.run(_run(args)))


if __name__ == "__main__":
    main()
