"""`python -m reminders.daily`: the next run is the next day's HH:MM shop time, DST included."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, time
from zoneinfo import ZoneInfo

from reminders.daily import next_run, seconds_until

NEW_YORK = ZoneInfo("America/New_York")


def test_later_today_or_tomorrow() -> None:
    morning = datetime(2026, 12, 2, 8, 30, tzinfo=NEW_YORK)
    assert next_run(morning, time(10)) == datetime(2026, 12, 2, 10, 0, tzinfo=NEW_YORK)
    assert seconds_until(morning, next_run(morning, time(10))) == 90 * 60
    on_the_hour = datetime(2026, 12, 2, 10, 0, tzinfo=NEW_YORK)
    assert next_run(on_the_hour, time(10)) == datetime(2026, 12, 3, 10, 0, tzinfo=NEW_YORK)


def test_across_a_clock_change_the_wall_clock_time_is_kept() -> None:
    # Clocks go forward at 02:00 on 2026-03-08 in New York: 10:00 comes 8 real hours after 01:00.
    night = datetime(2026, 3, 8, 1, 0, tzinfo=NEW_YORK)
    run = next_run(night, time(10))
    assert (run.hour, run.utcoffset().total_seconds()) == (10, -4 * 3600)
    assert seconds_until(night, run) == 8 * 3600
    # And back on 2026-11-01: from 10:00 on the 31st, 25 real hours to the next 10:00.
    saturday = datetime(2026, 10, 31, 10, 0, tzinfo=NEW_YORK)
    assert seconds_until(saturday, next_run(saturday, time(10))) == 25 * 3600


def test_help_and_a_bad_time() -> None:
    help_text = subprocess.run([sys.executable, "-m", "reminders.daily", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "--at HH:MM" in help_text
    bad = subprocess.run([sys.executable, "-m", "reminders.daily", "--at", "25:00"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid fromisoformat value" in bad.stderr
