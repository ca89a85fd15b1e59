"""Availability and booking for the service department, on a local or a Google calendar.

Plain async functions, usable without Pipecat and configured from the environment. Each
returns a JSON-ready dict (times ISO 8601 with the shop's offset); a request that cannot be
honoured answers `success: false` with a sentence to speak and the nearest open times,
never an exception. `now` pins the clock (tests, scripts); it defaults to the real time.

On the Google calendar, events follow the bookings through an outbox: `run_sync_worker` (the
launcher runs it) or `sync_calendar` (a script) writes them after the booking has committed.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, date, datetime
from typing import Any

from calendar_adapter import availability, backends, booking, outbox
from calendar_adapter.errors import (
    AppointmentNotFound,
    CalendarConfigError,
    CalendarError,
    CalendarUnavailable,
    CustomerBusy,
    InvalidRequest,
    SlotUnavailable,
)
from calendar_adapter.outbox import SyncPass
from calendar_adapter.rules import ShopRules
from config.settings import get_settings
from crm.appointments import CANCELLED, CONFIRMED


def _shop(now: datetime | None) -> tuple[ShopRules, datetime]:
    """The rules of the moment and the clock as a UTC instant (a naive `now` is shop time)."""
    rules = ShopRules(get_settings())
    if now is None:
        return rules, datetime.now(UTC)
    return rules, (now.replace(tzinfo=rules.tz) if now.tzinfo is None else now).astimezone(UTC)


async def _refusal_as_answer(operation: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """The operation's answer; a CalendarError it raises becomes the refusal the agent speaks."""
    try:
        return await operation
    except CalendarError as exc:
        return exc.answer()


async def check_availability(
    date: str | date | datetime, service_type: str | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """Open start times on `date` where the whole service fits in one bay:
    `{"date", "service_type", "duration_minutes", "slots"}`, plus `reason` and
    `alternatives` when there are none."""
    rules, now = _shop(now)
    return await availability.check(rules, date, service_type, now)


async def book_appointment(
    start_time: str | datetime,
    service_type: str,
    customer_id: int | str,
    vehicle_id: int | str | None = None,
    notes: str | None = None,
    *,
    now: datetime | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Book `start_time` in a free bay. `idempotency_key` names the conversation asking (a
    call's SID): within it, a request that means a booking already made (the same customer,
    start instant and service, however spelled) answers that booking instead of booking twice."""
    rules, now = _shop(now)
    return await _refusal_as_answer(
        booking.book(
            rules,
            start_time,
            service_type,
            customer_id,
            vehicle_id,
            notes,
            now=now,
            idempotency_key=idempotency_key,
        )
    )


async def reschedule_appointment(
    appointment_id: int | str,
    start_time: str | datetime,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Move an appointment to `start_time` (same id, same status). Retrying is safe without a
    key: the retry asks for the time the appointment already has, which changes nothing."""
    rules, now = _shop(now)
    return await _refusal_as_answer(booking.reschedule(rules, appointment_id, start_time, now=now))


async def cancel_appointment(appointment_id: int | str, *, now: datetime | None = None) -> dict[str, Any]:
    """Cancel an appointment, freeing its bay; cancelling twice answers success with a note."""
    rules, now = _shop(now)
    return await _refusal_as_answer(booking.set_status(rules, appointment_id, CANCELLED, now=now))


async def confirm_appointment(appointment_id: int | str, *, now: datetime | None = None) -> dict[str, Any]:
    """Mark an appointment confirmed (the reminder call's outcome)."""
    rules, now = _shop(now)
    return await _refusal_as_answer(booking.set_status(rules, appointment_id, CONFIRMED, now=now))


async def sync_calendar(*, now: datetime | None = None) -> SyncPass:
    """Write the calendar events of the appointments changed since the last pass (Google only;
    on `local` there are none). Stops at the first failure, which is retried with back-off on
    a later pass; safe to run in several processes at once."""
    return await outbox.sync(now=now)


async def run_sync_worker() -> None:
    """`sync_calendar` for as long as the task runs: every second, less often while Google
    fails. Never raises; cancel the task to stop it."""
    await outbox.run_worker()


async def close() -> None:
    """Release the calendar backend and the database and cache connections."""
    import crm

    await backends.close()
    await crm.close()


__all__ = [
    "AppointmentNotFound",
    "CalendarConfigError",
    "CalendarError",
    "CalendarUnavailable",
    "CustomerBusy",
    "InvalidRequest",
    "SlotUnavailable",
    "SyncPass",
    "book_appointment",
    "cancel_appointment",
    "check_availability",
    "close",
    "confirm_appointment",
    "reschedule_appointment",
    "run_sync_worker",
    "sync_calendar",
]
