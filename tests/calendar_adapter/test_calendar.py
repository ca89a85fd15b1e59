"""The calendar's behaviour, run once per backend (`calendar` is None for local, the fake
Google Calendar for google): availability, booking, rescheduling, cancelling, confirming,
capacity and one customer's appointments under real concurrent transactions, idempotent
retries however they are spelled, and bad input."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from calendar_adapter import (
    book_appointment,
    cancel_appointment,
    check_availability,
    confirm_appointment,
    reschedule_appointment,
    sync_calendar,
)
from crm import db
from crm.appointments import ACTIVE
from crm.cache import cache
from crm.customers import cache_key, lookup_customer
from tests.calendar_adapter.conftest import Configure
from tests.calendar_adapter.support import NOW, TUESDAY, TZ, appointments, at, iso, make_customers, queued
from tests.fakes.google_calendar import FakeGoogleCalendar

Calendar = FakeGoogleCalendar | None
SUNDAY_NIGHT = json.dumps({  # open in the small hours of Sunday, so a clock change falls inside
    "mon": [], "tue": [], "wed": [], "thu": [], "fri": [], "sat": [], "sun": [["01:00", "04:00"]],
})


def times(answer: dict[str, Any], key: str = "slots") -> list[str]:
    """Shop wall times ("09:30") of an answer's slots or alternatives."""
    return [datetime.fromisoformat(value).astimezone(TZ).strftime("%H:%M") for value in answer[key]]


def days_of(answer: dict[str, Any]) -> list[date]:
    return [datetime.fromisoformat(value).date() for value in answer["alternatives"]]


def assert_refused(answer: dict[str, Any], error: str, reason: str) -> None:
    assert answer["success"] is False, answer
    assert answer["error"] == error, answer
    assert reason in answer["reason"], answer


async def assert_events_match_rows(calendar: Calendar) -> None:
    """Once the outbox is drained, on Google every active row has exactly one event, at its
    time, and nothing else; on local nothing was ever queued."""
    if calendar is None:
        assert await queued() == []
        assert all(row["calendar_event_id"] is None for row in await appointments())
        return
    await sync_calendar()
    assert await queued() == []
    rows = await appointments()
    active = [row for row in rows if row["status"] in ACTIVE]
    assert sorted(calendar.events) == sorted(row["calendar_event_id"] for row in active)
    for row in active:
        event = calendar.events[row["calendar_event_id"]]
        assert datetime.fromisoformat(event["start"]["dateTime"]) == row["scheduled_at"]
        assert event["extendedProperties"]["private"]["appointment_id"] == str(row["id"])


# -- availability --------------------------------------------------------------------------


async def test_weekday_slots_follow_the_grid_and_skip_lunch(calendar: Calendar) -> None:
    answer = await check_availability("2026-03-03", "oil change", now=NOW)
    assert answer["date"] == "2026-03-03"
    assert answer["service_type"] == "oil change"
    assert answer["duration_minutes"] == 30
    assert times(answer) == [
        "09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "13:00", "13:30", "14:00", "14:30",
        "15:00", "15:30", "16:00", "16:30",
    ]
    assert answer["slots"][0] == "2026-03-03T09:00:00-05:00"  # ISO with the shop's offset
    assert "reason" not in answer


async def test_the_whole_service_must_fit_before_lunch_and_closing(calendar: Calendar) -> None:
    answer = await check_availability(TUESDAY, "brake service", now=NOW)
    assert answer["duration_minutes"] == 90
    assert times(answer) == [
        "09:00", "09:30", "10:00", "10:30", "13:00", "13:30", "14:00", "14:30", "15:00", "15:30",
    ]


async def test_without_a_service_the_default_length_applies(calendar: Calendar) -> None:
    answer = await check_availability("2026-03-03", now=NOW)
    assert (answer["service_type"], answer["duration_minutes"]) == (None, 60)
    assert "11:30" not in times(answer) and "11:00" in times(answer)


async def test_unknown_service_keeps_the_spoken_name(calendar: Calendar, customer: tuple[int, int]) -> None:
    answer = await check_availability("2026-03-03", "Windshield chip", now=NOW)
    assert (answer["service_type"], answer["duration_minutes"]) == ("windshield chip", 60)
    booked = await book_appointment(iso(TUESDAY, 9), "Windshield chip", customer[0], now=NOW)
    assert (booked["service_type"], booked["duration_minutes"]) == ("windshield chip", 60)


async def test_spoken_service_names_book_the_configured_service(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "tires rotated", customer[0], now=NOW)
    assert (booked["service_type"], booked["duration_minutes"]) == ("tire rotation", 30)
    assert (await appointments())[0]["service_type"] == "tire rotation"


async def test_saturday_is_a_morning_and_sunday_is_closed(calendar: Calendar) -> None:
    saturday = await check_availability("2026-03-07", "oil change", now=NOW)
    assert times(saturday)[0] == "09:00" and times(saturday)[-1] == "12:30"
    sunday = await check_availability("2026-03-08", "oil change", now=NOW)
    assert sunday["slots"] == []
    assert sunday["reason"] == "The shop is closed on Sundays."
    # The next open days' first openings: Monday, Tuesday, Wednesday at nine.
    assert days_of(sunday) == [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)]
    assert times(sunday, "alternatives") == ["09:00", "09:00", "09:00"]


async def test_holidays_are_closed(calendar: Calendar, shop: Configure) -> None:
    shop(SHOP_HOLIDAYS="2026-03-03,2026-03-04")
    answer = await check_availability("2026-03-03", now=NOW)
    assert answer["slots"] == []
    assert answer["reason"] == "The shop is closed on Tuesday, March 3 for a holiday."
    assert days_of(answer) == [date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 7)]


async def test_lead_time_hides_the_next_hour(calendar: Calendar) -> None:
    assert times(await check_availability("2026-03-02", "oil", now=NOW))[0] == "09:00"
    later = NOW + timedelta(minutes=15)  # 08:15: nine o'clock is now too soon
    assert times(await check_availability("2026-03-02", "oil", now=later))[0] == "09:30"
    evening = at(date(2026, 3, 2), 16, 10)
    answer = await check_availability("2026-03-02", "oil", now=evening)
    assert answer["slots"] == []
    assert answer["reason"] == "There are no open times left on Monday, March 2."
    assert days_of(answer)[0] == TUESDAY


async def test_booking_horizon(calendar: Calendar, shop: Configure) -> None:
    shop(SHOP_MAX_DAYS_AHEAD="10")
    last = await check_availability("2026-03-12", "oil", now=NOW)
    assert len(last["slots"]) == 14
    beyond = await check_availability("2026-03-13", "oil", now=NOW)
    assert beyond["slots"] == []
    assert beyond["reason"] == "We book up to 10 days ahead, that is through Thursday, March 12."
    assert days_of(beyond) == [date(2026, 3, 12)]  # the furthest bookable opening


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        ("2026-02-30", "There is no February 30, 2026; February 2026 has 28 days."),
        ("2026-13-01", "There is no month 13"),
        ("next tuesday-ish", "I could not read 'next tuesday-ish' as a date"),
        ("2026-02-27", "Friday, February 27, 2026 has already passed."),
    ],
)
async def test_bad_days_get_a_reason_and_the_next_openings(calendar: Calendar, day: str, reason: str) -> None:
    answer = await check_availability(day, "oil change", now=NOW)
    assert answer["slots"] == []
    assert reason in answer["reason"]
    # Offered from today on: today at nine (an hour after the pinned clock), then next days.
    assert answer["alternatives"][0] == "2026-03-02T09:00:00-05:00"
    assert len(answer["alternatives"]) == 3


async def test_dst_spring_forward_day(calendar: Calendar, shop: Configure, customer: tuple[int, int]) -> None:
    shop(SHOP_HOURS=SUNDAY_NIGHT)
    answer = await check_availability("2026-03-08", "oil change", now=NOW)
    assert answer["slots"] == [
        "2026-03-08T01:00:00-05:00", "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:30:00-04:00",
    ]
    # 90 minutes from 01:30 EST end at 04:00 EDT: the real length, not the wall-clock one.
    booked = await book_appointment("2026-03-08T01:30", "brake service", customer[0], now=NOW)
    assert booked["success"], booked
    assert (booked["start_time"], booked["end_time"]) == (
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T04:00:00-04:00",
    )
    gap = await book_appointment("2026-03-08T02:30", "oil change", customer[0], now=NOW)
    assert_refused(gap, "invalid_request", "the clocks go forward, so 2:30 AM does not exist")
    assert gap["alternatives"]


async def test_dst_fall_back_day(calendar: Calendar, shop: Configure, customer: tuple[int, int]) -> None:
    shop(SHOP_HOURS=SUNDAY_NIGHT, SHOP_BAYS="1")
    now = at(date(2026, 10, 26), 8)
    answer = await check_availability("2026-11-01", "oil change", now=now)
    assert answer["slots"][:4] == [
        "2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
    ]
    assert len(answer["slots"]) == 8  # four real hours
    # The two 1:30s are different instants, so one bay takes both.
    first = await book_appointment("2026-11-01T01:30:00-04:00", "oil", customer[0], now=now)
    second = await book_appointment("2026-11-01T01:30:00-05:00", "oil", customer[0], now=now)
    assert first["success"] and second["success"], (first, second)
    assert first["appointment_id"] != second["appointment_id"]
    left = await check_availability("2026-11-01", "oil change", now=now)
    assert "2026-11-01T01:30:00-04:00" not in left["slots"]
    assert "2026-11-01T01:30:00-05:00" not in left["slots"]
    assert len(left["slots"]) == 6


async def test_nine_am_after_the_change_carries_the_summer_offset(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    booked = await book_appointment("2026-03-09T09:00", "oil", customer[0], now=NOW)
    assert booked["start_time"] == "2026-03-09T09:00:00-04:00"
    row = (await appointments())[0]
    assert row["scheduled_at"].astimezone(TZ).hour == 9


# -- capacity --------------------------------------------------------------------------------


async def test_a_full_time_is_refused_with_the_nearest_openings(calendar: Calendar, shop: Configure) -> None:
    shop(SHOP_BAYS="2")
    (a, _), (b, _), (c, _) = await make_customers(3)
    for customer_id in (a, b):
        assert (await book_appointment(iso(TUESDAY, 10), "oil", customer_id, now=NOW))["success"]
    third = await book_appointment(iso(TUESDAY, 10), "oil", c, now=NOW)
    assert_refused(third, "slot_unavailable", "All 2 bays are taken on Tuesday, March 3 at 10:00 AM")
    assert times(third, "alternatives") == ["09:00", "09:30", "10:30"]
    assert "10:00" not in times(await check_availability(TUESDAY, "oil", now=NOW))
    rows = await appointments()
    assert sorted(row["bay"] for row in rows) == [1, 2]
    await assert_events_match_rows(calendar)


async def test_a_longer_service_blocks_every_slot_it_overlaps(calendar: Calendar, shop: Configure) -> None:
    shop(SHOP_BAYS="1")
    (first, _), (second, _) = await make_customers(2)
    assert (await book_appointment(iso(TUESDAY, 9), "brake service", first, now=NOW))["success"]
    assert times(await check_availability(TUESDAY, "oil", now=NOW))[:2] == ["10:30", "11:00"]
    refused = await book_appointment(iso(TUESDAY, 10), "oil", second, now=NOW)
    assert_refused(refused, "slot_unavailable", "Our only bay is taken")
    assert (await book_appointment(iso(TUESDAY, 10, 30), "oil", second, now=NOW))["success"]


async def test_the_whole_service_needs_one_bay_free_throughout(
    calendar: Calendar, shop: Configure, customer: tuple[int, int]
) -> None:
    shop(SHOP_BAYS="2")
    (other, _), = await make_customers(1)
    async with db.connection() as conn:  # bay 1 busy 9-10, bay 2 busy 10-11
        for bay, hour in ((1, 9), (2, 10)):
            await conn.execute(
                "INSERT INTO appointments (customer_id, service_type, scheduled_at,"
                " duration_minutes, bay) VALUES (%s, 'diagnostics', %s, 60, %s)",
                (other, at(TUESDAY, hour), bay),
            )
    # At 9:30 some bay is free at every instant of the hour, but no single bay is.
    slots = times(await check_availability(TUESDAY, "diagnostics", now=NOW))
    assert slots[:3] == ["09:00", "10:00", "10:30"]
    refused = await book_appointment(iso(TUESDAY, 9, 30), "diagnostics", customer[0], now=NOW)
    assert_refused(refused, "slot_unavailable", "bays are taken")


async def test_racing_for_the_last_bay_has_exactly_one_winner(calendar: Calendar) -> None:
    customers = await make_customers(52)
    start = iso(TUESDAY, 14)
    for customer_id, _ in customers[:2]:  # two of the three bays are taken
        assert (await book_appointment(start, "oil", customer_id, now=NOW))["success"]
    answers = await asyncio.gather(
        *(
            book_appointment(start, "oil", customer_id, vehicle_id, now=NOW)
            for customer_id, vehicle_id in customers[2:]
        )
    )
    winners = [answer for answer in answers if answer["success"]]
    losers = [answer for answer in answers if not answer["success"]]
    assert len(winners) == 1 and len(losers) == 49
    for loser in losers:
        assert loser["error"] == "slot_unavailable"
        assert times(loser, "alternatives") == ["13:00", "13:30", "14:30"]
    rows = await appointments("scheduled_at = %s", (at(TUESDAY, 14),))
    assert sorted(row["bay"] for row in rows) == [1, 2, 3]
    await assert_events_match_rows(calendar)


async def test_racing_for_a_free_time_has_one_winner_per_bay(calendar: Calendar) -> None:
    customers = await make_customers(50)
    answers = await asyncio.gather(
        *(
            book_appointment(iso(TUESDAY, 15), "brake service", customer_id, now=NOW)
            for customer_id, _ in customers
        )
    )
    assert sum(answer["success"] for answer in answers) == 3
    rows = await appointments()
    assert len(rows) == 3 and sorted(row["bay"] for row in rows) == [1, 2, 3]
    await assert_events_match_rows(calendar)


# -- idempotency -----------------------------------------------------------------------------


async def test_a_retried_booking_answers_the_first_one(calendar: Calendar, customer: tuple[int, int]) -> None:
    first = await book_appointment(iso(TUESDAY, 9), "oil", *customer, now=NOW, idempotency_key="CA123")
    again = await book_appointment(iso(TUESDAY, 9), "oil", *customer, now=NOW, idempotency_key="CA123")
    assert first["success"] and again == first
    rows = await appointments()
    assert len(rows) == 1 and rows[0]["idempotency_key"].startswith("CA123:")
    await assert_events_match_rows(calendar)
    if calendar is not None:
        assert len(calendar.requests_to("insert")) == 1


# The same booking as a language model may spell it on a retry: Tuesday 10:00 shop time, an oil change.
SPELLINGS = [
    ("2026-03-03T10:00", "oil change"),
    ("2026-03-03T10:00:00", "an oil change"),
    ("2026-03-03T10:00:00-05:00", "Oil Change"),
    ("2026-03-03T15:00:00Z", "oil"),
    ("2026-03-03 10:00", "  OIL   changes for my car "),
]


@pytest.mark.parametrize(("start", "service"), SPELLINGS[1:])
async def test_a_retry_spelled_another_way_answers_the_first_booking(
    calendar: Calendar, customer: tuple[int, int], start: str, service: str
) -> None:
    first = await book_appointment(*SPELLINGS[0], customer[0], now=NOW, idempotency_key="CA1")
    again = await book_appointment(start, service, customer[0], now=NOW, idempotency_key="CA1")
    assert first["success"] and again == first
    assert len(await appointments()) == 1
    await assert_events_match_rows(calendar)


async def test_concurrent_retries_book_once(calendar: Calendar, customer: tuple[int, int]) -> None:
    answers = await asyncio.gather(
        *(
            book_appointment(start, service, customer[0], now=NOW, idempotency_key="CA456")
            for start, service in SPELLINGS * 2
        )
    )
    assert all(answer["success"] for answer in answers), answers
    assert len({answer["appointment_id"] for answer in answers}) == 1
    assert len(await appointments()) == 1
    await assert_events_match_rows(calendar)
    if calendar is not None:
        assert len(calendar.requests_to("insert")) == 1


async def test_a_cancelled_booking_frees_its_key_for_a_new_one(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    first = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW, idempotency_key="CA789")
    assert (await cancel_appointment(first["appointment_id"], now=NOW))["success"]
    again = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW, idempotency_key="CA789")
    assert again["success"] and again["status"] == "scheduled"
    assert again["appointment_id"] != first["appointment_id"]
    assert sorted(row["status"] for row in await appointments()) == ["cancelled", "scheduled"]


async def test_other_times_services_and_customers_are_other_bookings(calendar: Calendar) -> None:
    (maria, _), (spouse, _) = await make_customers(2)
    requests = [
        (iso(TUESDAY, 9), "oil", maria),
        (iso(TUESDAY, 10), "oil", maria),  # another time
        (iso(TUESDAY, 11), "tire rotation", maria),
        (iso(TUESDAY, 9), "oil", spouse),  # another record, on the same call
    ]
    for start, service, customer_id in requests:
        answer = await book_appointment(start, service, customer_id, now=NOW, idempotency_key="CA1")
        assert answer["success"], answer
    assert len(await appointments()) == 4
    # Another service at a time already booked is a new request, refused rather than answered.
    other = await book_appointment(iso(TUESDAY, 9), "tire rotation", maria, now=NOW, idempotency_key="CA1")
    assert_refused(other, "customer_busy", "already booked for oil change")


async def test_the_same_booking_on_another_call_is_refused_not_repeated(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    first = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW, idempotency_key="CA1")
    again = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW, idempotency_key="CA2")
    assert first["success"]
    assert_refused(again, "customer_busy", "already booked for oil change on Tuesday, March 3 at 9:00 AM")
    assert len(await appointments()) == 1


# -- one customer, one appointment at a time ------------------------------------------------------


async def test_a_customer_cannot_hold_two_overlapping_appointments(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    assert (await book_appointment(iso(TUESDAY, 9), "brake service", customer[0], now=NOW))["success"]
    refused = await book_appointment(iso(TUESDAY, 10), "oil", customer[0], now=NOW)
    assert_refused(
        refused, "customer_busy",
        "This customer is already booked for brake service on Tuesday, March 3 at 9:00 AM until 10:30 AM",
    )
    # Two bays are still free at ten, but the offers avoid the customer's own 9:00-10:30.
    assert times(refused, "alternatives") == ["10:30", "11:00", "11:30"]
    (other, _), = await make_customers(1)
    assert (await book_appointment(iso(TUESDAY, 10), "oil", other, now=NOW))["success"]
    assert (await book_appointment(iso(TUESDAY, 10, 30), "oil", customer[0], now=NOW))["success"]
    await assert_events_match_rows(calendar)


async def test_a_move_onto_the_customers_other_appointment_is_refused(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    await book_appointment(iso(TUESDAY, 9), "brake service", customer[0], now=NOW)
    later = await book_appointment(iso(TUESDAY, 14), "oil", customer[0], now=NOW)
    refused = await reschedule_appointment(later["appointment_id"], iso(TUESDAY, 9, 30), now=NOW)
    assert_refused(refused, "customer_busy", "already booked for brake service")
    assert times(refused, "alternatives") == ["10:30", "11:00", "11:30"]
    row = (await appointments("id = %s", (later["appointment_id"],)))[0]
    assert row["scheduled_at"] == at(TUESDAY, 14)
    await assert_events_match_rows(calendar)


async def test_racing_overlapping_bookings_of_one_customer_have_one_winner(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    answers = await asyncio.gather(
        book_appointment(iso(TUESDAY, 9), "brake service", customer[0], now=NOW, idempotency_key="CA1"),
        book_appointment(iso(TUESDAY, 10), "oil", customer[0], now=NOW, idempotency_key="CA2"),
    )
    winners = [answer for answer in answers if answer["success"]]
    (loser,) = [answer for answer in answers if not answer["success"]]
    assert len(winners) == 1, answers
    assert loser["error"] == "customer_busy" and loser["alternatives"], loser
    (row,) = await appointments()
    assert row["id"] == winners[0]["appointment_id"]
    await assert_events_match_rows(calendar)


# -- bad booking requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "service", "error", "reason"),
    [
        ("2026-02-30T10:00", "oil", "invalid_request", "There is no February 30, 2026"),
        ("half past ten-ish", "oil", "invalid_request", "I could not read 'half past ten-ish'"),
        ("2026-03-03", "oil", "invalid_request", "Please give a time as well as the day"),
        ("2026-02-27T10:00", "oil", "invalid_request", "has already passed"),
        ("2026-03-02T08:30", "oil", "invalid_request", "60 minutes notice"),
        ("2026-03-08T10:00", "oil", "invalid_request", "The shop is closed on Sundays."),
        ("2026-03-03T10:15", "oil", "invalid_request", "10:15 AM is not one of those times"),
        ("2026-03-03T18:00", "oil", "invalid_request", "6:00 PM is outside our hours"),
        (
            "2026-03-03T11:30", "brake service", "invalid_request",
            "A brake service takes 90 minutes, so it cannot start at 11:30 AM: we close at 12:00 PM"
            " for a break.",
        ),
        ("2026-06-01T10:00", "oil", "invalid_request", "We book up to 60 days ahead"),
    ],
)
async def test_bad_times_are_refused_with_alternatives(
    calendar: Calendar, customer: tuple[int, int], start: str, service: str, error: str, reason: str
) -> None:
    answer = await book_appointment(start, service, customer[0], now=NOW)
    assert_refused(answer, error, reason)
    assert answer["alternatives"], answer
    assert all(datetime.fromisoformat(alt) > NOW for alt in answer["alternatives"])
    assert await appointments() == []


async def test_refusals_offer_the_same_day_around_the_asked_time(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    answer = await book_appointment("2026-03-03T11:30", "brake service", customer[0], now=NOW)
    assert times(answer, "alternatives") == ["10:00", "10:30", "13:00"]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"service_type": ""}, "Which service is the appointment for?"),
        ({"customer_id": 999_999}, "I could not find customer 999999"),
        ({"customer_id": "Maria"}, "I could not find customer 'Maria'"),
        ({"vehicle_id": 999_999}, "Vehicle 999999 does not exist"),
        ({"vehicle_id": "other"}, "is not on this customer's account"),
    ],
)
async def test_bad_parties_are_refused(
    calendar: Calendar, customer: tuple[int, int], arguments: dict[str, Any], reason: str
) -> None:
    other_vehicle = (await make_customers(1))[0][1]
    request = {"start_time": iso(TUESDAY, 9), "service_type": "oil", "customer_id": customer[0]}
    request.update(arguments)
    if request.get("vehicle_id") == "other":
        request["vehicle_id"] = other_vehicle
    answer = await book_appointment(**request, now=NOW)
    assert_refused(answer, "invalid_request", reason)
    assert await appointments() == []
    await assert_events_match_rows(calendar)
    if calendar is not None:
        assert calendar.requests_to("insert") == []


async def test_a_booking_answer_is_speakable(calendar: Calendar, customer: tuple[int, int]) -> None:
    answer = await book_appointment(
        "2026-03-03T14:30:00Z", "brake job", *customer, notes="  squeaks when cold ", now=NOW
    )
    assert answer == {
        "success": True,
        "appointment_id": answer["appointment_id"],
        "start_time": "2026-03-03T09:30:00-05:00",  # the offset was converted
        "end_time": "2026-03-03T11:00:00-05:00",
        "when": "Tuesday, March 3 at 9:30 AM",
        "service_type": "brake service",
        "duration_minutes": 90,
        "status": "scheduled",
        "customer_id": customer[0],
        "vehicle_id": customer[1],
        "vehicle": "2019 Honda Civic",
    }
    row = (await appointments())[0]
    assert (row["notes"], row["duration_minutes"], row["status"]) == ("squeaks when cold", 90, "scheduled")


async def test_a_booking_without_a_vehicle_names_none(calendar: Calendar, customer: tuple[int, int]) -> None:
    answer = await book_appointment(iso(TUESDAY, 9), "oil change", customer[0], now=NOW)
    assert (answer["vehicle_id"], answer["vehicle"]) == (None, None)
    await assert_events_match_rows(calendar)
    if calendar is not None:
        (event,) = calendar.events.values()
        assert event["summary"] == "Oil change — Maria Lopez"


async def test_booking_forgets_the_cached_caller(calendar: Calendar, customer: tuple[int, int]) -> None:
    phone = "+12025550000"
    assert (await lookup_customer(phone))["found"]
    store = await cache()
    assert (await store.get(cache_key(phone)))[0] is not None
    assert (await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW))["success"]
    assert (await store.get(cache_key(phone)))[0] is None


# -- rescheduling ----------------------------------------------------------------------------


async def test_reschedule_moves_the_same_appointment(calendar: Calendar, customer: tuple[int, int]) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", *customer, now=NOW)
    await assert_events_match_rows(calendar)  # the event exists before the move
    moved = await reschedule_appointment(booked["appointment_id"], "2026-03-04T14:00", now=NOW)
    assert moved["success"], moved
    assert moved["appointment_id"] == booked["appointment_id"]
    assert moved["start_time"] == "2026-03-04T14:00:00-05:00"
    assert moved["previous_start_time"] == booked["start_time"]
    rows = await appointments()
    assert len(rows) == 1 and rows[0]["scheduled_at"] == at(date(2026, 3, 4), 14)
    await assert_events_match_rows(calendar)
    if calendar is not None:
        (patch,) = calendar.requests_to("patch")
        assert patch.body["start"] == {
            "dateTime": "2026-03-04T14:00:00-05:00",
            "timeZone": "America/New_York",
        }


async def test_an_appointment_does_not_block_its_own_new_time(
    calendar: Calendar, shop: Configure, customer: tuple[int, int]
) -> None:
    shop(SHOP_BAYS="1")
    booked = await book_appointment(iso(TUESDAY, 13), "brake service", customer[0], now=NOW)
    moved = await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 13, 30), now=NOW)
    assert moved["success"], moved
    assert moved["end_time"] == "2026-03-03T15:00:00-05:00"
    # The old half hour is free again.
    assert "13:00" in times(await check_availability(TUESDAY, "oil", now=NOW))


async def test_reschedule_keeps_a_confirmed_status(calendar: Calendar, customer: tuple[int, int]) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    assert (await confirm_appointment(booked["appointment_id"], now=NOW))["status"] == "confirmed"
    moved = await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 10), now=NOW)
    assert moved["status"] == "confirmed"


async def test_a_retried_reschedule_changes_nothing(calendar: Calendar, customer: tuple[int, int]) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await assert_events_match_rows(calendar)
    first = await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 10), now=NOW)
    await assert_events_match_rows(calendar)
    again = await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 10), now=NOW)
    assert again["success"] and again["start_time"] == first["start_time"]
    await assert_events_match_rows(calendar)
    if calendar is not None:
        assert len(calendar.requests_to("patch")) == 1


async def test_reschedule_into_a_full_time_is_refused(
    calendar: Calendar, shop: Configure, customer: tuple[int, int]
) -> None:
    shop(SHOP_BAYS="1")
    (neighbour, _), = await make_customers(1)
    await book_appointment(iso(TUESDAY, 10), "brake service", neighbour, now=NOW)
    other = await book_appointment(iso(TUESDAY, 14), "oil", customer[0], now=NOW)
    refused = await reschedule_appointment(other["appointment_id"], iso(TUESDAY, 11), now=NOW)
    assert_refused(refused, "slot_unavailable", "Our only bay is taken on Tuesday, March 3 at 11:00 AM")
    assert times(refused, "alternatives") == ["09:00", "09:30", "11:30"]
    row = (await appointments("id = %s", (other["appointment_id"],)))[0]
    assert row["scheduled_at"] == at(TUESDAY, 14)
    await assert_events_match_rows(calendar)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("cancelled", "was cancelled, so it cannot be moved"),
        ("completed", "is completed, so it cannot be moved"),
    ],
)
async def test_closed_appointments_cannot_be_moved(
    calendar: Calendar, customer: tuple[int, int], status: str, reason: str
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE appointments SET status = %s WHERE id = %s", (status, booked["appointment_id"])
        )
    answer = await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 10), now=NOW)
    assert_refused(answer, "invalid_request", reason)


@pytest.mark.parametrize(
    ("appointment_id", "error", "reason"),
    [
        (999_999, "not_found", "I could not find appointment 999999"),
        ("next week's one", "invalid_request", 'I could not find appointment "next week\'s one"'),
    ],
)
async def test_unknown_appointments_are_refused(
    calendar: Calendar, clean_db: None, appointment_id: Any, error: str, reason: str
) -> None:
    for answer in (
        await reschedule_appointment(appointment_id, iso(TUESDAY, 10), now=NOW),
        await cancel_appointment(appointment_id, now=NOW),
        await confirm_appointment(appointment_id, now=NOW),
    ):
        assert_refused(answer, error, reason)


async def test_reschedule_to_a_bad_time_is_refused(calendar: Calendar, customer: tuple[int, int]) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    answer = await reschedule_appointment(booked["appointment_id"], "2026-03-08T10:00", now=NOW)
    assert_refused(answer, "invalid_request", "The shop is closed on Sundays.")
    assert days_of(answer)[0] == date(2026, 3, 9)


# -- cancelling and confirming -----------------------------------------------------------------


async def test_cancel_frees_the_bay(calendar: Calendar, shop: Configure, customer: tuple[int, int]) -> None:
    shop(SHOP_BAYS="1")
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    assert "09:00" not in times(await check_availability(TUESDAY, "oil", now=NOW))
    cancelled = await cancel_appointment(booked["appointment_id"], now=NOW)
    assert cancelled["success"] and cancelled["status"] == "cancelled"
    assert "09:00" in times(await check_availability(TUESDAY, "oil", now=NOW))
    assert (await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW))["success"]
    rows = await appointments()
    assert [row["status"] for row in rows] == ["cancelled", "scheduled"]
    await assert_events_match_rows(calendar)


async def test_cancelling_twice_answers_success_with_a_note(
    calendar: Calendar, customer: tuple[int, int]
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await assert_events_match_rows(calendar)
    await cancel_appointment(booked["appointment_id"], now=NOW)
    await assert_events_match_rows(calendar)
    again = await cancel_appointment(str(booked["appointment_id"]), now=NOW)
    assert again["success"] and again["status"] == "cancelled"
    assert again["note"] == f"Appointment {booked['appointment_id']} was already cancelled."
    await assert_events_match_rows(calendar)
    if calendar is not None:
        assert len(calendar.requests_to("delete")) == 1


async def test_past_appointments_cannot_be_cancelled(calendar: Calendar, customer: tuple[int, int]) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    answer = await cancel_appointment(booked["appointment_id"], now=at(TUESDAY, 12))
    assert_refused(answer, "invalid_request", "was on Tuesday, March 3 at 9:00 AM, which has already passed")


async def test_confirm(calendar: Calendar, customer: tuple[int, int]) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    confirmed = await confirm_appointment(booked["appointment_id"], now=NOW)
    assert confirmed["success"] and confirmed["status"] == "confirmed"
    again = await confirm_appointment(booked["appointment_id"], now=NOW)
    assert again["note"] == f"Appointment {booked['appointment_id']} was already confirmed."
    await cancel_appointment(booked["appointment_id"], now=NOW)
    refused = await confirm_appointment(booked["appointment_id"], now=NOW)
    assert_refused(refused, "invalid_request", "was cancelled, so it cannot be confirmed")
