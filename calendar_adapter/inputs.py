"""What the language model passes in, validated: dates, start times and ids may arrive as
strings ("2026-03-10", "2026-03-10T09:30", with or without an offset) or as Python objects.
Anything unusable becomes an `InvalidRequest` whose reason can be read to the caller.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from calendar_adapter.errors import InvalidRequest
from calendar_adapter.speech import say_day, say_time

_DATE_PART = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})")


def _impossible_date(text: str) -> str | None:
    """Why `text` starts with a year-month-day that no calendar has, if it does."""
    match = _DATE_PART.match(text)
    if not match:
        return None
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        return f"There is no month {month}; please give the date as year, month, day."
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return (
            f"There is no {calendar.month_name[month]} {day}, {year}; "
            f"{calendar.month_name[month]} {year} has {days} days."
        )
    return None


def _unreadable(value: object, what: str) -> InvalidRequest:
    text = str(value).strip()
    reason = _impossible_date(text) or (
        f"I could not read {text!r} as a {what}; please give it like 2026-03-10"
        + (" 09:30." if what == "time" else ".")
    )
    return InvalidRequest(reason)


def parse_day(value: str | date | datetime, tz: ZoneInfo) -> date:
    """A calendar day in the shop's zone; a full timestamp counts as the day it falls on there."""
    if isinstance(value, datetime):
        return _instant(value, tz).astimezone(tz).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return _instant(datetime.fromisoformat(text), tz).astimezone(tz).date()
    except ValueError:
        raise _unreadable(value, "date") from None


def parse_start(value: str | date | datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a start time; a time without an offset is shop local time."""
    if isinstance(value, datetime):
        return _instant(value, tz)
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    try:
        date.fromisoformat(text)
    except ValueError:
        pass
    else:
        # A bare day is not a start time; saying so beats guessing midnight.
        raise InvalidRequest("Please give a time as well as the day, like 2026-03-10 09:30.")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _unreadable(value, "time") from None
    return _instant(parsed, tz)


def _instant(moment: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of `moment`; one without an offset is wall time in `tz`."""
    try:
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
        instant = moment.replace(tzinfo=tz).astimezone(UTC)
        round_trip = instant.astimezone(tz).replace(tzinfo=None)
    except OverflowError:  # the years 1 and 9999 sit at the edge of what datetime holds
        raise InvalidRequest(f"{moment:%Y} is not a year we can book in.") from None
    # A wall time inside the spring-forward gap does not survive a round trip through UTC.
    if round_trip != moment:
        raise InvalidRequest(
            f"On {say_day(moment.date())} the clocks go forward, so {say_time(moment)} "
            "does not exist that day."
        )
    return instant


_MAX_ID = 2**63 - 1  # bigint


def parse_id(value: int | str, what: str = "appointment") -> int:
    """A positive integer id; "#42" or " 42 " are accepted as spoken."""
    text = str(value).strip().lstrip("#")
    if isinstance(value, bool) or not text.isdigit() or not 0 < int(text) <= _MAX_ID:
        raise InvalidRequest(f"I could not find {what} {str(value).strip()!r}; please check the number.")
    return int(text)
