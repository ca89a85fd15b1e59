"""`python -m reminders.daily [--at HH:MM]`: run `python -m reminders` every day at that shop time
(SHOP_TIMEZONE), for a host without a scheduler of its own (the compose file's `reminders`
service; Kubernetes has its CronJob, a server its crontab).

Each run is a process of its own, as cron would start it; its exit code is printed and the next
day's run goes on whatever it was (3, outside REMINDER_CALL_WINDOW, included). The runs
themselves are safe to repeat, so a restart of this loop around the hour does no harm.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

from config.settings import get_settings


def next_run(now: datetime, at: clock_time) -> datetime:
    """The first `at` (wall-clock time in `now`'s zone) after `now`."""
    run = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    # Adding a day to an aware time keeps its wall-clock time: 10:00 stays 10:00 across DST.
    return run if run > now else run + timedelta(days=1)


def seconds_until(now: datetime, then: datetime) -> float:
    # In UTC: two times of one zone subtract as wall-clock times, an hour off across a DST change.
    return (then.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m reminders.daily", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at", type=clock_time.fromisoformat, default=clock_time(10), metavar="HH:MM",
                        help="shop time of the daily run (default 10:00)")
    args = parser.parse_args()
    zone = get_settings().tz  # a bad setting stops here with one line, exit code 2
    while True:
        now = datetime.now(zone)
        run = next_run(now, args.at)
        print(f"next reminder run at {run:%Y-%m-%d %H:%M %Z}", flush=True)
        time.sleep(max(seconds_until(now, run), 0))
        code = subprocess.call([sys.executable, "-m", "reminders"])
        print(f"python -m reminders exited with {code}", flush=True)


if __name__ == "__main__":
    main()
