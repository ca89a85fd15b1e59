"""The shop's rules as plain functions of the settings: when it is open, which start times
exist, how long a service takes, and why a given time cannot be booked.

Times are built in the shop's zone and stepped in absolute minutes, so a day on which the
clocks change has exactly the real hours it has (the 2 AM gap never yields a slot, and the
repeated hour yields two distinct instants).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from calendar_adapter.errors import InvalidRequest
from calendar_adapter.speech import say_day, say_minutes, say_time, say_when
from config.settings import Settings

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Words that carry no meaning for which service is wanted ("an oil change for my car").
_FILLER = frozenset({
    "a", "an", "the", "my", "our", "your", "for", "please", "car", "vehicle", "truck", "get",
    "do", "done", "and", "to", "some", "just", "i", "need", "want", "like", "would", "on",
    "it", "have", "me", "of",
})
# Spellings and abbreviations callers use, rewritten before matching.
_SPELLING = {
    "tyre": "tire",
    "tyres": "tires",
    "ac": "air conditioning",
    "aircon": "air conditioning",
}
# Short names that mean a configured service; matched on the whole phrase only, so that
# "oil leak" is not mistaken for an oil change.
_ALIASES = {
    "oil": "oil change",
    "lube": "oil change",
    "oil and filter": "oil change",
    "brakes": "brake service",
    "brake job": "brake service",
    "brake pads": "brake service",
    "alignment": "wheel alignment",
    "inspection": "state inspection",
    "battery": "battery replacement",
    "new battery": "battery replacement",
    "check engine light": "diagnostics",
    "air conditioning": "air conditioning service",
    "maintenance": "scheduled maintenance",
    "transmission": "transmission service",
}
_MAX_SERVICE_CHARS = 80


@dataclass(frozen=True)
class Service:
    name: str
    minutes: int

    @property
    def identity(self) -> str:
        """What every spelling of the service has in common ("a windshield chip", "Windshield
        chips"), for telling a retried booking from another one."""
        return " ".join(sorted(_stems(self.name)))


def _stems(phrase: str) -> frozenset[str]:
    """A crude stemmer that is enough for service names: "tires rotated" == "tire rotation"."""
    text = re.sub(r"a/c", "ac", phrase.lower())
    words = " ".join(_SPELLING.get(word, word) for word in re.findall(r"[a-z]+", text)).split()
    stems = set()
    for word in words:
        if word in _FILLER:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        stems.add(word[:5])
    return frozenset(stems)


class ShopRules:
    """Opening hours, slot grid, lead time and service durations, from `Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.tz: ZoneInfo = settings.tz
        self.bays = settings.shop_bays
        self.step = timedelta(minutes=settings.shop_slot_minutes)
        self.lead = timedelta(minutes=settings.shop_min_lead_minutes)
        self.max_days_ahead = settings.shop_max_days_ahead
        self.hours = settings.shop_hours
        self.holidays = frozenset(settings.shop_holidays)
        self.durations = settings.service_durations
        self.default_minutes = settings.default_service_minutes
        self._by_stems = {_stems(name): name for name in self.durations}
        self._aliases = {_stems(alias): name for alias, name in _ALIASES.items() if name in self.durations}

    # -- services ---------------------------------------------------------------

    def service(self, spoken: str | None) -> Service:
        """The configured service a caller means, or their own words with the default length."""
        phrase = " ".join((spoken or "").split()).lower()
        if not phrase:
            raise InvalidRequest("Which service is the appointment for?")
        if len(phrase) > _MAX_SERVICE_CHARS:
            raise InvalidRequest("Please name the service in a few words, like oil change.")
        stems = _stems(phrase)
        name = self._by_stems.get(stems) or self._aliases.get(stems)
        if name is None:
            # "full synthetic oil change" contains every stem of "oil change"; the most
            # specific such service wins, and a tie means we cannot tell.
            contained = sorted(
                ((len(known), name) for known, name in self._by_stems.items() if known <= stems),
                reverse=True,
            )
            if contained and (len(contained) == 1 or contained[0][0] > contained[1][0]):
                name = contained[0][1]
        if name is None:
            return Service(phrase, self.default_minutes)
        return Service(name, self.durations[name])

    # -- the calendar -------------------------------------------------------------
    # Instants are UTC inside: Python compares and subtracts datetimes that share a tzinfo
    # by wall clock, which is wrong on the days the clocks change. Shop time is for output.

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def say(self, moment: datetime) -> str:
        return say_when(self.local(moment))

    def today(self, now: datetime) -> date:
        return self.local(now).date()

    def last_day(self, now: datetime) -> date:
        return self.today(now) + timedelta(days=self.max_days_ahead)

    def periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """Open periods of `day` as UTC instants; empty on a closed day or a holiday."""
        if day in self.holidays:
            return []
        return [
            (
                datetime.combine(day, opens, tzinfo=self.tz).astimezone(UTC),
                datetime.combine(day, closes, tzinfo=self.tz).astimezone(UTC),
            )
            for opens, closes in self.hours[_WEEKDAYS[day.weekday()]]
        ]

    def starts(self, day: date, minutes: int) -> list[datetime]:
        """Grid start times of `day` (UTC) where `minutes` fit inside one open period."""
        length = timedelta(minutes=minutes)
        found = []
        for opens, closes in self.periods(day):
            start = opens
            while start + length <= closes:
                found.append(start)
                start += self.step
        return found

    def check_day(self, day: date, now: datetime) -> None:
        """Refuse a day that is past, too far ahead, a holiday or a closed weekday."""
        if day < self.today(now):
            raise InvalidRequest(f"{say_day(day)}, {day.year} has already passed.")
        if day > self.last_day(now):
            raise InvalidRequest(
                f"We book up to {self.max_days_ahead} days ahead, that is through "
                f"{say_day(self.last_day(now))}."
            )
        if day in self.holidays:
            raise InvalidRequest(f"The shop is closed on {say_day(day)} for a holiday.")
        if not self.periods(day):
            raise InvalidRequest(f"The shop is closed on {day:%A}s.")

    def check_start(self, start: datetime, service: Service, now: datetime) -> None:
        """Refuse a start time the rules forbid (capacity is the database's job)."""
        local = self.local(start)
        if start <= now:
            raise InvalidRequest(f"{say_when(local)} has already passed.")
        if start < now + self.lead:
            minutes = int(self.lead.total_seconds() // 60)
            raise InvalidRequest(
                f"We need at least {say_minutes(minutes)} notice, so {say_time(local)} is too soon."
            )
        self.check_day(local.date(), now)
        periods = self.periods(local.date())
        inside = [(opens, closes) for opens, closes in periods if opens <= start < closes]
        if not inside:
            hours = " and ".join(
                f"{say_time(self.local(o))} to {say_time(self.local(c))}" for o, c in periods
            )
            raise InvalidRequest(
                f"{say_time(local)} is outside our hours; on {local:%A}s we are open {hours}."
            )
        opens, closes = inside[0]
        if (start - opens) % self.step:
            raise InvalidRequest(
                f"Appointments start every {say_minutes(int(self.step.total_seconds() // 60))}"
                f" from {say_time(self.local(opens))}; {say_time(local)} is not one of those times."
            )
        if start + timedelta(minutes=service.minutes) > closes:
            pause = " for a break" if closes < periods[-1][1] else ""
            raise InvalidRequest(
                f"A {service.name} takes {say_minutes(service.minutes)}, so it cannot start at "
                f"{say_time(local)}: we close at {say_time(self.local(closes))}{pause}."
            )
