"""Booking, moving, cancelling and confirming appointments.

Each change runs in one database transaction in the same order: change the row (the
database picks the bay and refuses a double booking), change the calendar event, commit.
A calendar failure therefore rolls the row back, and a failure after the event changed
undoes the event, so the row and the event stay consistent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from calendar_adapter import inputs, store
from calendar_adapter.availability import alternatives
from calendar_adapter.backends import backend
from calendar_adapter.errors import (
    AppointmentNotFound,
    CalendarError,
    InvalidRequest,
    SlotUnavailable,
)
from calendar_adapter.rules import Service, ShopRules
from calendar_adapter.speech import say_day, say_time, say_when
from calendar_adapter.store import BaysFull, Booking
from crm import db
from crm.appointments import CANCELLED, COMPLETED, NO_SHOW
from crm.customers import forget_customer

log = logging.getLogger(__name__)

_INACTIVE = {CANCELLED: "was cancelled", COMPLETED: "is completed", NO_SHOW: "was missed"}


def answer(rules: ShopRules, booking: Booking, **extra: Any) -> dict[str, Any]:
    appointment = booking.appointment
    start, end = rules.local(appointment.start_time), rules.local(appointment.end_time)
    return {
        "success": True,
        "appointment_id": appointment.id,
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "when": say_when(start),
        "service_type": appointment.service_type,
        "duration_minutes": appointment.duration_minutes,
        "status": appointment.status,
        "customer_id": appointment.customer_id,
        "vehicle_id": appointment.vehicle_id,
        "vehicle": booking.vehicle,
        **extra,
    }


async def _bookable_start(
    rules: ShopRules,
    start_time: str | datetime,
    service: Service,
    now: datetime,
    *,
    moving: Booking | None = None,
) -> datetime:
    """The start asked for, if the shop rules and the shop calendar allow it; else a refusal
    with the open times nearest to it (to now, if it cannot be read). The time an appointment
    being moved already has needs no checking: asking for it again is a retry."""
    near = now
    try:
        start = near = inputs.parse_start(start_time, rules.tz)
        if moving is not None and start == moving.appointment.start_time:
            return start
        rules.check_start(start, service, now)
        # Asked for the whole day, so the refusal can say when the block really ends.
        periods = rules.periods(rules.local(start).date())
        end = start + timedelta(minutes=service.minutes)
        blocks = [
            (opens, closes)
            for opens, closes in await backend().blocked(periods[0][0], periods[-1][1])
            if opens < end and start < closes
        ]
        if blocks:
            opens, closes = (rules.local(moment) for moment in blocks[0])  # shop time, to say
            raise SlotUnavailable(
                f"The shop is not taking appointments from {say_time(opens)} to "
                f"{say_time(closes)} on {say_day(opens.date())}."
            )
    except CalendarError as exc:
        ignore = moving.appointment.id if moving else None
        found = await alternatives(rules, near, service.minutes, now, ignore=ignore)
        raise type(exc)(exc.reason, found) from None
    return start


async def _bays_full(
    rules: ShopRules, start: datetime, service: Service, now: datetime, *, ignore: int | None = None
) -> SlotUnavailable:
    bays = "Our only bay is" if rules.bays == 1 else f"All {rules.bays} bays are"
    return SlotUnavailable(
        f"{bays} taken on {rules.say(start)} for a {service.name}.",
        await alternatives(rules, start, service.minutes, now, ignore=ignore),
    )


def _changeable(
    rules: ShopRules, booking: Booking | None, appointment_id: int, verb: str, now: datetime
) -> Booking:
    if booking is None:
        raise AppointmentNotFound(f"I could not find appointment {appointment_id}; please check the number.")
    appointment = booking.appointment
    if not appointment.active:
        raise InvalidRequest(
            f"Appointment {appointment_id} {_INACTIVE[appointment.status]}, so it cannot be {verb}."
        )
    if appointment.start_time <= now:
        raise InvalidRequest(
            f"Appointment {appointment_id} was on {rules.say(appointment.start_time)},"
            " which has already passed."
        )
    return booking


async def _undo(action: Awaitable[object], what: str) -> None:
    try:
        await action
    except CalendarError:
        log.error("could not undo %s on the shop calendar; it needs fixing by hand", what)


async def book(
    rules: ShopRules,
    start_time: str | datetime,
    service_type: str,
    customer_id: int | str,
    vehicle_id: int | str | None,
    notes: str | None,
    *,
    now: datetime,
    idempotency_key: str | None,
) -> dict[str, Any]:
    customer = inputs.parse_id(customer_id, "customer")
    vehicle = None if vehicle_id is None or vehicle_id == "" else inputs.parse_id(vehicle_id, "vehicle")
    if idempotency_key:
        async with db.connection() as conn:
            earlier = await store.by_key(conn, idempotency_key)
        if earlier is not None:  # a retried call: the first attempt's booking is the answer
            return answer(rules, earlier)
    service = rules.service(service_type)
    start = await _bookable_start(rules, start_time, service, now)
    calendar = backend()
    event_id: str | None = None
    try:
        async with db.connection() as conn, conn.transaction():
            await store.check_party(conn, customer, vehicle)
            booked = await store.insert(
                conn,
                bays=rules.bays,
                customer_id=customer,
                vehicle_id=vehicle,
                service_type=service.name,
                start=start,
                day=rules.local(start).date(),
                minutes=service.minutes,
                notes=(notes or "").strip() or None,
                key=idempotency_key or None,
            )
            if booked is None:  # the same request, racing this one, committed first
                booked = await store.by_key(conn, idempotency_key or "")
                assert booked is not None
            else:
                event_id = await calendar.create_event(booked)
                if event_id is not None:
                    booked = await store.set_event(conn, booked.appointment.id, event_id)
    except BaysFull:
        raise await _bays_full(rules, start, service, now) from None
    except BaseException:
        if event_id is not None:  # the row did not commit, so its event must go too
            await _undo(
                calendar.delete_event(replace(booked, calendar_event_id=event_id)),
                f"event {event_id}",
            )
        raise
    await forget_customer(customer)
    return answer(rules, booked)


async def reschedule(
    rules: ShopRules, appointment_id: int | str, start_time: str | datetime, *, now: datetime
) -> dict[str, Any]:
    """Move an appointment; asking again for the time it already has changes nothing, which
    is what makes a retried reschedule safe."""
    appointment_id = inputs.parse_id(appointment_id)
    async with db.connection() as conn:
        found = await store.get(conn, appointment_id)
    current = _changeable(rules, found, appointment_id, "moved", now)
    service = Service(current.appointment.service_type, current.appointment.duration_minutes)
    start = await _bookable_start(rules, start_time, service, now, moving=current)
    calendar = backend()
    event_id: str | None = None
    try:
        async with db.connection() as conn, conn.transaction():
            locked = await store.get(conn, appointment_id, lock=True)
            current = moved = _changeable(rules, locked, appointment_id, "moved", now)
            if current.appointment.start_time != start:
                moved = await store.move(conn, current, start, rules.local(start).date(), rules.bays)
                event_id = await calendar.move_event(moved)
                if event_id != moved.calendar_event_id:
                    moved = await store.set_event(conn, appointment_id, event_id)
    except BaysFull:
        raise await _bays_full(rules, start, service, now, ignore=appointment_id) from None
    except BaseException:
        if event_id is not None:  # the move did not commit: put the event back
            await _undo(
                calendar.move_event(replace(current, calendar_event_id=event_id)),
                f"the move of event {event_id}",
            )
        raise
    await forget_customer(moved.appointment.customer_id)
    return answer(rules, moved, previous_start_time=rules.local(current.appointment.start_time).isoformat())


async def set_status(
    rules: ShopRules, appointment_id: int | str, status: str, *, now: datetime
) -> dict[str, Any]:
    """Cancel (which frees the bay and removes the event) or confirm an appointment;
    asking twice answers success with a note."""
    appointment_id = inputs.parse_id(appointment_id)
    calendar = backend()
    event_deleted = False
    try:
        async with db.connection() as conn, conn.transaction():
            current = await store.get(conn, appointment_id, lock=True)
            if current is not None and current.appointment.status == status:
                return answer(rules, current, note=f"Appointment {appointment_id} was already {status}.")
            current = _changeable(rules, current, appointment_id, status, now)
            changed = await store.set_status(conn, appointment_id, status)
            if status == CANCELLED:
                await calendar.delete_event(current)
                event_deleted = current.calendar_event_id is not None
    except BaseException:
        if event_deleted:
            # The event is gone but the row is not cancelled; a new event's id could not be
            # stored either, so this needs a person.
            log.error("appointment %s: event deleted but the cancellation did not commit", appointment_id)
        raise
    await forget_customer(changed.appointment.customer_id)
    return answer(rules, changed)
