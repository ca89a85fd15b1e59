"""Shop rules and input parsing: pure functions, no database."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from calendar_adapter.errors import InvalidRequest
from calendar_adapter.inputs import parse_day, parse_id, parse_start
from calendar_adapter.rules import Service, ShopRules
from config.settings import Settings
from tests.calendar_adapter.support import NOW, TUESDAY, TZ, at

SUNDAY_NIGHT = {  # open in the small hours of Sunday, so a clock change falls inside
    "mon": [], "tue": [], "wed": [], "thu": [], "fri": [], "sat": [], "sun": [(time(1), time(4))],
}


def rules(**overrides: object) -> ShopRules:
    return ShopRules(Settings(_env_file=None, shop_timezone="America/New_York", **overrides))


def clock(starts: list[datetime]) -> list[str]:
    """Shop wall time with its offset, which tells the repeated hour apart."""
    return [start.astimezone(TZ).strftime("%H:%M%z") for start in starts]


def test_weekday_grid_skips_lunch_and_stops_at_closing() -> None:
    starts = rules().starts(TUESDAY, 30)
    assert clock(starts) == [
        "09:00-0500", "09:30-0500", "10:00-0500", "10:30-0500", "11:00-0500", "11:30-0500",
        "13:00-0500", "13:30-0500", "14:00-0500", "14:30-0500", "15:00-0500", "15:30-0500",
        "16:00-0500", "16:30-0500",
    ]


def test_whole_duration_must_fit_before_lunch_and_closing() -> None:
    starts = clock(rules().starts(TUESDAY, 90))
    assert "10:30-0500" in starts and "11:00-0500" not in starts and "11:30-0500" not in starts
    assert starts[-1] == "15:30-0500"


def test_saturday_morning_only_and_sunday_closed() -> None:
    assert clock(rules().starts(date(2026, 3, 7), 60))[-1] == "12:00-0500"
    assert rules().starts(date(2026, 3, 8), 30) == []


def test_holiday_has_no_periods() -> None:
    assert rules(shop_holidays=[TUESDAY]).periods(TUESDAY) == []


def test_spring_forward_day_has_only_the_real_hours() -> None:
    # 2026-03-08: 01:00 EST to 04:00 EDT is two real hours; 2:00-2:59 does not exist.
    starts = rules(shop_hours=SUNDAY_NIGHT).starts(date(2026, 3, 8), 30)
    assert clock(starts) == ["01:00-0500", "01:30-0500", "03:00-0400", "03:30-0400"]
    # A 90-minute service starting 01:30 EST really ends at 04:00 EDT: it fits.
    assert clock(rules(shop_hours=SUNDAY_NIGHT).starts(date(2026, 3, 8), 90)) == [
        "01:00-0500",
        "01:30-0500",
    ]


def test_fall_back_day_repeats_an_hour_as_distinct_instants() -> None:
    starts = rules(shop_hours=SUNDAY_NIGHT).starts(date(2026, 11, 1), 30)
    assert clock(starts) == [
        "01:00-0400", "01:30-0400", "01:00-0500", "01:30-0500", "02:00-0500", "02:30-0500",
        "03:00-0500", "03:30-0500",
    ]
    assert len(set(starts)) == len(starts)
    assert all(b - a == timedelta(minutes=30) for a, b in pairwise(starts))


def test_nine_am_stays_nine_am_across_the_change() -> None:
    friday, monday = rules().starts(date(2026, 3, 6), 30)[0], rules().starts(date(2026, 3, 9), 30)[0]
    assert friday.astimezone(TZ).isoformat() == "2026-03-06T09:00:00-05:00"
    assert monday.astimezone(TZ).isoformat() == "2026-03-09T09:00:00-04:00"
    assert friday.utcoffset() == monday.utcoffset() == timedelta(0)  # UTC inside


@pytest.mark.parametrize(
    ("spoken", "name", "minutes"),
    [
        ("oil", "oil change", 30),
        ("An Oil Change", "oil change", 30),
        ("full synthetic oil change", "oil change", 30),
        ("tyre rotation", "tire rotation", 30),
        ("tires rotated", "tire rotation", 30),
        ("rotate my tyres", "tire rotation", 30),
        ("brakes", "brake service", 90),
        ("A/C", "air conditioning service", 60),
        ("check engine light", "diagnostics", 60),
        ("alignment", "wheel alignment", 60),
        # Unknown services keep the caller's words and take the default length.
        ("oil leak", "oil leak", 60),
        ("  Windshield   Chip ", "windshield chip", 60),
    ],
)
def test_service_names_are_normalised(spoken: str, name: str, minutes: int) -> None:
    assert rules().service(spoken) == Service(name, minutes)


def test_every_spelling_of_a_service_has_one_identity() -> None:
    shop = rules()
    known = {shop.service(spoken).identity for spoken in ("oil change", "an oil change", "Oil Change", "oil")}
    unknown = {shop.service(spoken).identity for spoken in ("windshield chip", "a Windshield chips")}
    assert len(known) == len(unknown) == 1
    assert len(known | unknown | {shop.service("brake service").identity}) == 3


def test_configured_durations_and_default_apply() -> None:
    custom = rules(service_durations={"oil change": 45}, default_service_minutes=90)
    assert custom.service("oil") == Service("oil change", 45)
    # "brakes" is only an alias when a brake service is configured.
    assert custom.service("brakes") == Service("brakes", 90)


@pytest.mark.parametrize("spoken", ["", "   ", None, "x" * 81])
def test_service_must_be_named_briefly(spoken: str | None) -> None:
    with pytest.raises(InvalidRequest):
        rules().service(spoken)


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (at(date(2026, 3, 2), 7), "already passed"),
        (at(date(2026, 3, 2), 8, 30), "60 minutes notice"),
        (at(date(2026, 5, 2), 9), "up to 60 days ahead"),
        (at(date(2026, 3, 8), 10), "closed on Sundays"),
        (at(TUESDAY, 7), "outside our hours; on Tuesdays we are open 9:00 AM to 12:00 PM and 1:00 PM"),
        (at(TUESDAY, 12, 30), "outside our hours"),
        (at(TUESDAY, 10, 15), "not one of those times"),
        (at(TUESDAY, 11, 30), "cannot start at 11:30 AM: we close at 12:00 PM for a break"),
        (at(TUESDAY, 16, 30), "cannot start at 4:30 PM: we close at 5:00 PM."),
    ],
)
def test_check_start_refuses_with_a_reason(start: datetime, reason: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        rules().check_start(start, Service("brake service", 90), NOW)
    assert reason in refused.value.reason


def test_check_start_accepts_a_good_time() -> None:
    rules().check_start(at(TUESDAY, 9, 30), Service("brake service", 90), NOW)


def test_holiday_reason_names_the_day() -> None:
    with pytest.raises(InvalidRequest, match="closed on Tuesday, March 3 for a holiday"):
        rules(shop_holidays=[TUESDAY]).check_day(TUESDAY, NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-03", date(2026, 3, 3)),
        (" 2026-03-03 ", date(2026, 3, 3)),
        ("2026-03-03T23:30:00-08:00", date(2026, 3, 4)),  # already the 4th in New York
        (date(2026, 3, 3), date(2026, 3, 3)),
    ],
)
def test_parse_day(value: object, expected: date) -> None:
    assert parse_day(value, TZ) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-02-30", "There is no February 30, 2026; February 2026 has 28 days."),
        ("2026-13-01", "There is no month 13"),
        ("next tuesday-ish", "I could not read 'next tuesday-ish' as a date"),
    ],
)
def test_parse_day_refuses(value: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_day(value, TZ)
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-03T10:00", "2026-03-03T10:00:00-05:00"),  # naive means shop time
        ("2026-03-03 10:00", "2026-03-03T10:00:00-05:00"),
        ("2026-03-03T15:00:00Z", "2026-03-03T10:00:00-05:00"),  # offsets are converted
        ("2026-03-03T07:00:00-08:00", "2026-03-03T10:00:00-05:00"),
        (datetime(2026, 3, 3, 10), "2026-03-03T10:00:00-05:00"),
        (datetime(2026, 3, 3, 16, tzinfo=ZoneInfo("Europe/Berlin")), "2026-03-03T10:00:00-05:00"),
        ("2026-11-01T01:30", "2026-11-01T01:30:00-04:00"),  # an ambiguous time: the first
    ],
)
def test_parse_start(value: object, expected: str) -> None:
    assert parse_start(value, TZ).astimezone(TZ).isoformat() == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-02-30T10:00", "There is no February 30, 2026"),
        ("2026-03-03", "Please give a time as well as the day"),
        ("tomorrow at ten", "I could not read 'tomorrow at ten' as a time"),
        ("2026-03-08T02:30", "the clocks go forward, so 2:30 AM does not exist"),
        ("9999-12-31T23:30", "not a year we can book in"),
    ],
)
def test_parse_start_refuses(value: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_start(value, TZ)
    assert reason in refused.value.reason


@pytest.mark.parametrize(("value", "expected"), [(42, 42), ("42", 42), (" #42 ", 42)])
def test_parse_id(value: object, expected: int) -> None:
    assert parse_id(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["abc", "", "0", "-3", True, "99999999999999999999", 4.5])
def test_parse_id_refuses(value: object) -> None:
    with pytest.raises(InvalidRequest, match="I could not find appointment"):
        parse_id(value)  # type: ignore[arg-type]
