"""The Google backend over HTTP against the fake Calendar API: what it sends, how free/busy
blocks close the shop, and how the row and the event stay consistent when either fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from calendar_adapter import (
    CalendarConfigError,
    book_appointment,
    cancel_appointment,
    check_availability,
    reschedule_appointment,
)
from calendar_adapter.backends import backend
from crm import db
from tests.calendar_adapter.conftest import Configure
from tests.calendar_adapter.support import NOW, TUESDAY, TZ, appointments, at, iso
from tests.fakes.google_calendar import FakeGoogleCalendar

Customer = tuple[int, int]


def wall(values: list[str]) -> list[str]:
    return [datetime.fromisoformat(value).astimezone(TZ).strftime("%H:%M") for value in values]


async def test_each_appointment_gets_one_transparent_event(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", *customer, notes="bring coupon", now=NOW)
    (row,) = await appointments()
    event = google.events[row["calendar_event_id"]]
    assert event["summary"] == "Oil change — Maria Lopez (2019 Honda Civic)"
    assert event["transparency"] == "transparent"  # never shows in free/busy
    assert event["extendedProperties"] == {"private": {"appointment_id": str(booked["appointment_id"])}}
    assert event["start"] == {"dateTime": "2026-03-03T09:00:00-05:00", "timeZone": "America/New_York"}
    assert event["end"] == {"dateTime": "2026-03-03T09:30:00-05:00", "timeZone": "America/New_York"}
    assert "bring coupon" in event["description"]
    (insert,) = google.requests_to("insert")
    assert insert.path == f"/calendar/v3/calendars/{google.calendar_id}/events"


async def test_requests_carry_a_token_from_the_refresh_flow(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    token, *calls = google.requests
    assert token.endpoint == "token"
    assert token.body == {
        "grant_type": "refresh_token",
        "refresh_token": google.refresh_token,
        "client_id": google.client_id,
        "client_secret": google.client_secret,
    }
    assert [call.endpoint for call in calls] == ["freebusy", "insert"]
    assert all(call.authorization == f"Bearer {google.tokens[0]}" for call in calls)
    assert len(google.tokens) == 1  # refreshed once, then reused


async def test_free_busy_blocks_close_the_shop_for_every_bay(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    google.add_block(at(TUESDAY, 10), at(TUESDAY, 11), "Staff meeting")
    slots = wall((await check_availability(TUESDAY, "oil", now=NOW))["slots"])
    assert slots[:4] == ["09:00", "09:30", "11:00", "11:30"]
    hour_long = wall((await check_availability(TUESDAY, "diagnostics", now=NOW))["slots"])
    assert hour_long[:3] == ["09:00", "11:00", "13:00"]  # 9:30 would run into the meeting
    query = google.requests_to("freebusy")[0]
    assert query.body["items"] == [{"id": google.calendar_id}]
    assert query.body["timeZone"] == "America/New_York"

    refused = await book_appointment(iso(TUESDAY, 10, 30), "oil", customer[0], now=NOW)
    assert refused["success"] is False and refused["error"] == "slot_unavailable"
    assert refused["reason"] == (
        "The shop is not taking appointments from 10:00 AM to 11:00 AM on Tuesday, March 3."
    )
    assert wall(refused["alternatives"]) == ["09:30", "11:00", "11:30"]
    assert await appointments() == []


async def test_our_own_events_do_not_count_as_busy(
    google: FakeGoogleCalendar, shop: Configure, customer: Customer
) -> None:
    shop(SHOP_BAYS="2")
    assert (await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW))["success"]
    # One bay is still free at nine: the event on the calendar must not close the shop.
    assert "09:00" in wall((await check_availability(TUESDAY, "oil", now=NOW))["slots"])
    assert (await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW))["success"]


@pytest.mark.parametrize("status", [500, 403])
async def test_a_failed_event_insert_leaves_no_appointment(
    google: FakeGoogleCalendar, customer: Customer, status: int
) -> None:
    google.fail_next("insert", status)
    answer = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    assert answer["success"] is False and answer["error"] == "calendar_unavailable"
    assert answer["reason"] == (
        "I could not reach the shop's calendar just now. Please try again in a moment."
    )
    assert [r.status for r in google.requests_to("insert")] == [status]
    assert await appointments() == []
    assert google.events == {}
    # Nothing is left half-done: the same booking works once Google answers again.
    assert (await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW))["success"]


@pytest.fixture
async def fail_at_commit() -> AsyncIterator[None]:
    """Make a commit fail after the event was created: a deferred trigger that rejects
    appointments whose notes say so, checked only when the transaction commits."""
    async with db.connection() as conn:
        await conn.execute("""
            CREATE FUNCTION test_reject_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'rejected at commit'; END $$;
            CREATE CONSTRAINT TRIGGER test_reject_at_commit AFTER INSERT OR UPDATE ON appointments
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                WHEN (NEW.notes = 'fail at commit') EXECUTE FUNCTION test_reject_at_commit();
        """)
    yield
    async with db.connection() as conn:
        await conn.execute(
            "DROP TRIGGER test_reject_at_commit ON appointments; DROP FUNCTION test_reject_at_commit();"
        )


async def test_a_failed_commit_removes_the_event(
    google: FakeGoogleCalendar, customer: Customer, fail_at_commit: None
) -> None:
    with pytest.raises(Exception, match="rejected at commit"):
        await book_appointment(iso(TUESDAY, 9), "oil", customer[0], notes="fail at commit", now=NOW)
    assert [r.endpoint for r in google.requests][-2:] == ["insert", "delete"]
    (insert,) = google.requests_to("insert")
    assert google.events == {}
    assert google.requests_to("delete")[0].path.endswith("/events/" + next(iter(google.deleted)))
    assert insert.status == 200
    assert await appointments() == []


async def test_reschedule_patches_the_event_times(google: FakeGoogleCalendar, customer: Customer) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "brake service", customer[0], now=NOW)
    (row,) = await appointments()
    await reschedule_appointment(booked["appointment_id"], "2026-03-10T13:00", now=NOW)
    (patch,) = google.requests_to("patch")
    assert patch.method == "PATCH"
    assert patch.path.endswith(f"/events/{row['calendar_event_id']}")
    assert patch.body == {
        "start": {"dateTime": "2026-03-10T13:00:00-04:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2026-03-10T14:30:00-04:00", "timeZone": "America/New_York"},
    }
    event = google.events[row["calendar_event_id"]]
    assert event["start"]["dateTime"] == "2026-03-10T13:00:00-04:00"
    assert event["summary"].startswith("Brake service — Maria Lopez")  # the rest is kept


async def test_a_failed_patch_leaves_the_appointment_where_it_was(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    google.fail_next("patch", 503)
    answer = await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 14), now=NOW)
    assert answer["success"] is False and answer["error"] == "calendar_unavailable"
    (row,) = await appointments()
    assert row["scheduled_at"] == at(TUESDAY, 9)
    assert google.events[row["calendar_event_id"]]["start"]["dateTime"] == iso(TUESDAY, 9)


async def test_reschedule_recreates_an_event_deleted_by_hand(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    (before,) = await appointments()
    google.events.clear()
    google.deleted.add(before["calendar_event_id"])
    moved = await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 14), now=NOW)
    assert moved["success"], moved
    assert [r.status for r in google.requests_to("patch")] == [410]
    (after,) = await appointments()
    assert after["calendar_event_id"] != before["calendar_event_id"]
    assert google.events[after["calendar_event_id"]]["start"]["dateTime"] == iso(TUESDAY, 14)


async def test_cancel_deletes_the_event(google: FakeGoogleCalendar, customer: Customer) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    (row,) = await appointments()
    assert (await cancel_appointment(booked["appointment_id"], now=NOW))["success"]
    (delete,) = google.requests_to("delete")
    assert (delete.method, delete.status) == ("DELETE", 204)
    assert delete.path.endswith(f"/events/{row['calendar_event_id']}")
    assert google.events == {}


@pytest.mark.parametrize("gone", [404, 410])
async def test_cancel_accepts_an_event_that_is_already_gone(
    google: FakeGoogleCalendar, customer: Customer, gone: int
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    google.fail_next("delete", gone)
    answer = await cancel_appointment(booked["appointment_id"], now=NOW)
    assert answer["success"] and answer["status"] == "cancelled"


async def test_a_failed_delete_keeps_the_appointment(google: FakeGoogleCalendar, customer: Customer) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    google.fail_next("delete", 500)
    answer = await cancel_appointment(booked["appointment_id"], now=NOW)
    assert answer["success"] is False and answer["error"] == "calendar_unavailable"
    (row,) = await appointments()
    assert row["status"] == "scheduled" and row["calendar_event_id"] in google.events


async def test_free_busy_failure_is_spoken_not_raised(google: FakeGoogleCalendar, customer: Customer) -> None:
    google.fail_next("freebusy", 500, count=2)  # the check and its alternatives
    answer = await check_availability(TUESDAY, "oil", now=NOW)
    assert answer["slots"] == [] and answer["alternatives"] == []
    assert answer["reason"] == "I could not reach the shop's calendar just now. Please try again in a moment."
    google.fail_next("freebusy", 500, count=2)
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    assert booked["success"] is False and booked["error"] == "calendar_unavailable"
    assert await appointments() == []


async def test_a_rejected_refresh_token_is_a_calendar_failure(
    google: FakeGoogleCalendar, shop: Configure, customer: Customer
) -> None:
    shop(GOOGLE_REFRESH_TOKEN="revoked")
    answer = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    assert answer["error"] == "calendar_unavailable"
    assert [r.endpoint for r in google.requests] == ["token", "token"]  # check + alternatives
    assert google.tokens == [] and await appointments() == []


async def test_the_api_url_may_include_the_calendar_path(google: FakeGoogleCalendar, shop: Configure) -> None:
    shop(GOOGLE_CALENDAR_API_URL=f"{google.base_url}/calendar/v3/")
    assert (await check_availability(TUESDAY, "oil", now=NOW))["slots"]
    assert google.requests_to("freebusy")[0].path == "/calendar/v3/freeBusy"


async def test_missing_google_settings_are_named(shop: Configure) -> None:
    shop(
        CALENDAR_BACKEND="google",
        GOOGLE_CALENDAR_ID="shop@example.com",
        GOOGLE_CLIENT_ID="id",
        GOOGLE_CLIENT_SECRET="",
        GOOGLE_REFRESH_TOKEN="",
    )
    with pytest.raises(CalendarConfigError) as error:
        backend()
    assert str(error.value) == (
        "CALENDAR_BACKEND=google needs GOOGLE_CLIENT_SECRET, GOOGLE_REFRESH_TOKEN (not set)"
    )
