"""The Google backend over HTTP against the fake Calendar API: what it sends, how free/busy
blocks close the shop, and how events follow the rows through the outbox after the booking
has committed: a slow or failing Google delays the event, never the booking, and no change is
made twice or lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calendar_adapter import (
    CalendarConfigError,
    SyncPass,
    book_appointment,
    cancel_appointment,
    check_availability,
    reschedule_appointment,
    run_sync_worker,
    sync_calendar,
)
from calendar_adapter.backends import backend
from calendar_adapter.outbox import MAX_BACKOFF_SECONDS
from crm import db
from tests.calendar_adapter.conftest import Configure
from tests.calendar_adapter.support import NOW, TUESDAY, TZ, appointments, at, iso, make_customers, queued
from tests.fakes.google_calendar import FakeGoogleCalendar

Customer = tuple[int, int]
STALL_SECONDS = 3.0  # well past a booking's own time, within the backend's 5 s timeout


def wall(values: list[str]) -> list[str]:
    return [datetime.fromisoformat(value).astimezone(TZ).strftime("%H:%M") for value in values]


def later() -> datetime:
    """A clock past every back-off, so a pass retries what failed."""
    return datetime.now(UTC) + timedelta(seconds=MAX_BACKOFF_SECONDS + 1)


async def timed(call: Awaitable[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    answer = await call
    return time.perf_counter() - started, answer


async def event_of(appointment_id: int) -> str | None:
    (row,) = await appointments("id = %s", (appointment_id,))
    return row["calendar_event_id"]


# -- the events --------------------------------------------------------------------------------


async def test_each_appointment_gets_one_transparent_event(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", *customer, notes="bring coupon", now=NOW)
    assert google.requests_to("insert") == []  # the booking itself only read free/busy
    assert [row["appointment_id"] for row in await queued()] == [booked["appointment_id"]]
    assert (await sync_calendar()).synced == 1
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
    assert insert.body["id"] == row["calendar_event_id"]  # chosen by us, before asking
    assert await queued() == []


async def test_requests_carry_a_token_from_the_refresh_flow(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await sync_calendar()
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


async def test_our_own_events_do_not_count_as_busy(google: FakeGoogleCalendar, shop: Configure) -> None:
    shop(SHOP_BAYS="2")
    (first, _), (second, _) = await make_customers(2)
    assert (await book_appointment(iso(TUESDAY, 9), "oil", first, now=NOW))["success"]
    await sync_calendar()
    assert len(google.events) == 1
    # One bay is still free at nine: the event on the calendar must not close the shop.
    assert "09:00" in wall((await check_availability(TUESDAY, "oil", now=NOW))["slots"])
    assert (await book_appointment(iso(TUESDAY, 9), "oil", second, now=NOW))["success"]


async def test_reschedule_patches_the_event_times(google: FakeGoogleCalendar, customer: Customer) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "brake service", customer[0], now=NOW)
    await sync_calendar()
    (row,) = await appointments()
    await reschedule_appointment(booked["appointment_id"], "2026-03-10T13:00", now=NOW)
    assert google.requests_to("patch") == []
    await sync_calendar()
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


async def test_reschedule_recreates_an_event_deleted_by_hand(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await sync_calendar()
    (before,) = await appointments()
    google.events.clear()
    google.deleted.add(before["calendar_event_id"])
    moved = await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 14), now=NOW)
    assert moved["success"], moved
    await sync_calendar()
    assert [r.status for r in google.requests_to("patch")] == [410]
    (after,) = await appointments()
    assert after["calendar_event_id"] != before["calendar_event_id"]
    assert google.events[after["calendar_event_id"]]["start"]["dateTime"] == iso(TUESDAY, 14)


async def test_cancel_deletes_the_event(google: FakeGoogleCalendar, customer: Customer) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await sync_calendar()
    (row,) = await appointments()
    assert (await cancel_appointment(booked["appointment_id"], now=NOW))["success"]
    assert row["calendar_event_id"] in google.events  # until the worker gets to it
    await sync_calendar()
    (delete,) = google.requests_to("delete")
    assert (delete.method, delete.status) == ("DELETE", 204)
    assert delete.path.endswith(f"/events/{row['calendar_event_id']}")
    assert google.events == {}
    assert await event_of(booked["appointment_id"]) is None


@pytest.mark.parametrize("gone", [404, 410])
async def test_cancel_accepts_an_event_that_is_already_gone(
    google: FakeGoogleCalendar, customer: Customer, gone: int
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await sync_calendar()
    google.fail_next("delete", gone)
    answer = await cancel_appointment(booked["appointment_id"], now=NOW)
    assert answer["success"] and answer["status"] == "cancelled"
    assert await sync_calendar() == SyncPass(synced=1, failed=False)
    assert await queued() == [] and await event_of(booked["appointment_id"]) is None


@pytest.fixture
async def fail_at_commit() -> AsyncIterator[None]:
    """Make a commit fail: a deferred trigger that rejects appointments whose notes say so,
    checked only when the transaction commits."""
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


async def test_a_booking_that_does_not_commit_queues_no_event(
    google: FakeGoogleCalendar, customer: Customer, fail_at_commit: None
) -> None:
    with pytest.raises(Exception, match="rejected at commit"):
        await book_appointment(iso(TUESDAY, 9), "oil", customer[0], notes="fail at commit", now=NOW)
    assert await appointments() == [] and await queued() == []
    await sync_calendar()
    assert google.requests_to("insert") == [] and google.events == {}


# -- Google slow or failing: the booking does not wait, the event follows ----------------------


async def test_a_stalled_google_does_not_slow_bookings(google: FakeGoogleCalendar) -> None:
    (first, _), (second, _) = await make_customers(2)
    await check_availability(TUESDAY, "oil", now=NOW)  # connected and holding a token
    healthy, answer = await timed(book_appointment(iso(TUESDAY, 9), "oil", first, now=NOW))
    assert answer["success"]
    google.stall(STALL_SECONDS)
    worker = asyncio.create_task(run_sync_worker())
    try:
        await google.wait_until(lambda: len(google.requests_to("insert")) == 1)  # the worker waits on it
        stalled, answer = await timed(book_appointment(iso(TUESDAY, 9), "oil", second, now=NOW))
        assert answer["success"], answer
        # Waiting for Google would have taken the whole stall; the booking took its usual time.
        assert stalled < healthy + STALL_SECONDS / 2, (healthy, stalled)
        google.recover()
        await google.wait_until(lambda: len(google.events) == 2, timeout=STALL_SECONDS + 10)
        await google.wait_until(lambda: len(google.requests_to("insert")) == 2)
        async with asyncio.timeout(10):
            # The worker notes each event on its appointment after Google answers: polling the
            # outbox is the only way to see it has.
            while await queued():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    rows = await appointments()
    assert sorted(row["calendar_event_id"] for row in rows) == sorted(google.events)
    assert [r.status for r in google.requests_to("insert")] == [200, 200]


@pytest.mark.parametrize("status", [500, 429])
async def test_a_failing_google_delays_the_event_not_the_booking(
    google: FakeGoogleCalendar, status: int
) -> None:
    (first, _), (second, _) = await make_customers(2)
    await check_availability(TUESDAY, "oil", now=NOW)
    healthy, answer = await timed(book_appointment(iso(TUESDAY, 9), "oil", first, now=NOW))
    await sync_calendar()
    google.go_down(status)
    failing, answer = await timed(book_appointment(iso(TUESDAY, 9), "oil", second, now=NOW))
    assert answer["success"], answer
    assert failing < healthy + 1.0, (healthy, failing)
    assert (await sync_calendar()).failed
    (waiting,) = await queued()
    assert waiting["appointment_id"] == answer["appointment_id"] and waiting["attempts"] == 1
    assert str(status) in waiting["last_error"]
    assert waiting["next_attempt_at"] > datetime.now(UTC)
    assert (await sync_calendar()).synced == 0  # backing off: Google is not asked again yet
    assert len(google.requests_to("insert")) == 2
    google.recover()
    assert await sync_calendar(now=later()) == SyncPass(synced=1, failed=False)
    assert await queued() == []
    event_id = await event_of(answer["appointment_id"])
    assert event_id is not None and google.events[event_id]["start"]["dateTime"] == iso(TUESDAY, 9)
    assert len(google.events) == 2


async def test_a_cancelled_booking_loses_its_event_once_google_is_back(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await sync_calendar()
    (event_id,) = google.events
    google.go_down(500)
    assert (await cancel_appointment(booked["appointment_id"], now=NOW))["success"]
    assert (await sync_calendar()).failed
    assert event_id in google.events
    google.recover()
    await sync_calendar(now=later())
    assert google.events == {} and event_id in google.deleted
    assert await event_of(booked["appointment_id"]) is None and await queued() == []


async def test_changes_made_while_google_is_down_are_made_once_in_their_final_form(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await sync_calendar()
    google.go_down(503)
    await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 14), now=NOW)
    assert (await sync_calendar()).failed
    await reschedule_appointment(booked["appointment_id"], iso(TUESDAY, 15), now=NOW)
    google.recover()
    await sync_calendar(now=later())
    assert [r.status for r in google.requests_to("patch")] == [503, 200]
    (event,) = google.events.values()
    assert event["start"]["dateTime"] == iso(TUESDAY, 15)


async def test_a_booking_cancelled_before_google_came_back_leaves_no_event(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    google.go_down(500)
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    await sync_calendar()
    await cancel_appointment(booked["appointment_id"], now=NOW)
    google.recover()
    await sync_calendar(now=later())
    assert google.events == {} and await queued() == []


# -- answers lost after Google did the work: found again by the event's id, never made twice ----


async def created_unheard(google: FakeGoogleCalendar, customer: Customer) -> tuple[int, str]:
    """A booking whose event Google created without the worker hearing so: (appointment, event)."""
    booked = await book_appointment(iso(TUESDAY, 9), "oil", customer[0], now=NOW)
    google.fail_next("insert", 500, after_work=True)
    assert (await sync_calendar()).failed
    (made,) = google.events
    return booked["appointment_id"], made


async def test_a_create_whose_answer_was_lost_is_not_made_twice(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    appointment_id, made = await created_unheard(google, customer)
    await reschedule_appointment(appointment_id, iso(TUESDAY, 14), now=NOW)
    await sync_calendar(now=later())
    assert [r.status for r in google.requests_to("insert")] == [500, 409]
    assert list(google.events) == [made] and await event_of(appointment_id) == made
    assert google.events[made]["start"]["dateTime"] == iso(TUESDAY, 14)  # and it has the new time


async def test_a_cancel_after_a_lost_create_answer_deletes_the_event(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    appointment_id, made = await created_unheard(google, customer)
    await cancel_appointment(appointment_id, now=NOW)
    await sync_calendar(now=later())
    assert google.events == {} and made in google.deleted


async def test_an_event_id_whose_event_was_deleted_meanwhile_is_replaced(
    google: FakeGoogleCalendar, customer: Customer
) -> None:
    appointment_id, made = await created_unheard(google, customer)
    del google.events[made]  # deleted by hand before we ever heard of it
    google.deleted.add(made)
    clock = later()
    assert (await sync_calendar(now=clock)).failed  # the id is taken: a new one is chosen
    await sync_calendar(now=clock + timedelta(seconds=MAX_BACKOFF_SECONDS))
    (event_id,) = google.events
    assert event_id != made and await event_of(appointment_id) == event_id
    assert await queued() == []


# -- several workers -----------------------------------------------------------------------------


async def test_two_workers_at_once_make_each_change_once(google: FakeGoogleCalendar) -> None:
    customers = await make_customers(6)
    for hour, (customer_id, _) in zip((9, 10, 11, 13, 14, 15), customers, strict=True):
        assert (await book_appointment(iso(TUESDAY, hour), "oil", customer_id, now=NOW))["success"]
    google.stall(0.2)  # each request takes a while, so the two passes run side by side
    passes = await asyncio.gather(sync_calendar(), sync_calendar())
    assert sum(one.synced for one in passes) == 6
    assert all(one.synced for one in passes), passes  # both took rows, neither took the other's
    assert [r.status for r in google.requests_to("insert")] == [200] * 6
    rows = await appointments()
    assert sorted(row["calendar_event_id"] for row in rows) == sorted(google.events)
    assert await queued() == []


# -- failures the caller hears about, and settings ---------------------------------------------


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
