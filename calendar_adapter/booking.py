"""Booking, moving, cancelling and confirming appointments.

Each change is one database transaction: the row (the database picks the bay and refuses a
double booking, or a second appointment of the same customer at the same time) and, on a
calendar that keeps events, the outbox row through which a worker brings the event in line
after the commit (`calendar_adapter.outbox`). The only outside call on the way, reading the
shop calendar's free/busy, is made before the transaction, so no booking waits on Google
while holding its day's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calendar_adapter import inputs, outbox, store
from calendar_adapter.availability import alternatives
from calendar_adapter.backends import backend
from calendar_adapter.errors import (
    AppointmentNotFound,
    CalendarError,
    CustomerBusy,
    InvalidRequest,
    SlotUnavailable,
)
from calendar_adapter.rules import Service, ShopRules
from calendar_adapter.speech import say_day, say_time, say_when
from calendar_adapter.store import BaysFull, Booking, CustomerOverlap
from crm import db
from crm.appointments import CANCELLED, COMPLETED, NO_SHOW
from crm.customers import forget_customer

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


@dataclass(frozen=True)
class _Wish:
    """A service wanted for a customer, so a refusal offers times that suit both: the shop
    has a bay free, and the customer has no other appointment then."""

    rules: ShopRules
    service: Service
    customer: int
    now: datetime
    moving: int | None = None  # an appointment being moved, which must not block its own new time

    async def refusal(self, exc: CalendarError, near: datetime) -> CalendarError:
        """`exc` with the open times nearest to `near`."""
        found = await alternatives(
            self.rules, near, self.service.minutes, self.now, ignore=self.moving, customer=self.customer
        )
        return type(exc)(exc.reason, found)


def booking_key(scope: str, customer_id: int, start: datetime, service: Service) -> str:
    """The key of one booking within `scope` (a call), however it was spelled: the customer,
    the start as a UTC instant, and the service as the shop knows it."""
    return f"{scope}:{customer_id}:{start.isoformat()}:{service.identity}"


async def _start(wish: _Wish, start_time: str | datetime) -> datetime:
    """The UTC instant asked for; one that cannot be read is refused with the next openings."""
    try:
        return inputs.parse_start(start_time, wish.rules.tz)
    except CalendarError as exc:
        raise await wish.refusal(exc, wish.now) from None


async def _check_start(wish: _Wish, start: datetime) -> None:
    """Refuse a start the shop rules or the shop calendar do not allow, offering the open
    times nearest to it."""
    rules, service = wish.rules, wish.service
    try:
        rules.check_start(start, service, wish.now)
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
        raise await wish.refusal(exc, start) from None


async def _bays_full(wish: _Wish, start: datetime) -> CalendarError:
    rules = wish.rules
    bays = "Our only bay is" if rules.bays == 1 else f"All {rules.bays} bays are"
    taken = SlotUnavailable(f"{bays} taken on {rules.say(start)} for a {wish.service.name}.")
    return await wish.refusal(taken, start)


async def _customer_busy(wish: _Wish, start: datetime) -> CalendarError:
    rules = wish.rules
    async with db.connection() as conn:
        held = await store.occupied(
            conn, start, start + timedelta(minutes=wish.service.minutes), wish.moving, customer=wish.customer
        )
    # Empty only if that appointment was cancelled since the database refused this one.
    what = f"at {say_time(rules.local(start))}"
    if held:
        other = held[0]
        until = say_time(rules.local(other.end))
        what = f"for {other.service_type} on {rules.say(other.start)} until {until}"
    busy = CustomerBusy(f"This customer is already booked {what}; their appointments cannot overlap.")
    return await wish.refusal(busy, start)


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
    """Book a free bay; within the scope `idempotency_key` names, a request meaning a booking
    already made answers that booking."""
    customer = inputs.parse_id(customer_id, "customer")
    vehicle = None if vehicle_id is None or vehicle_id == "" else inputs.parse_id(vehicle_id, "vehicle")
    wish = _Wish(rules, rules.service(service_type), customer, now)
    start = await _start(wish, start_time)
    key = booking_key(idempotency_key, customer, start, wish.service) if idempotency_key else None
    if key:
        async with db.connection() as conn:
            earlier = await store.by_key(conn, key)
        if earlier is not None:  # a retried call: the first attempt's booking is the answer
            return answer(rules, earlier)
    await _check_start(wish, start)
    try:
        async with db.connection() as conn, conn.transaction():
            await store.check_party(conn, customer, vehicle)
            booked = await store.insert(
                conn,
                bays=rules.bays,
                customer_id=customer,
                vehicle_id=vehicle,
                service_type=wish.service.name,
                start=start,
                day=rules.local(start).date(),
                minutes=wish.service.minutes,
                notes=(notes or "").strip() or None,
                key=key,
            )
            if booked is None:  # the same request, racing this one, committed first
                booked = await store.by_key(conn, key or "")
                assert booked is not None
            else:
                await outbox.queue(conn, booked.appointment.id)
    except BaysFull:
        raise await _bays_full(wish, start) from None
    except CustomerOverlap:
        raise await _customer_busy(wish, start) from None
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
    current = _changeable(rules, found, appointment_id, "moved", now).appointment
    service = Service(current.service_type, current.duration_minutes)
    wish = _Wish(rules, service, current.customer_id, now, moving=appointment_id)
    start = await _start(wish, start_time)
    if start != current.start_time:  # asking again for the time it has is a retry: no checks
        await _check_start(wish, start)
    try:
        async with db.connection() as conn, conn.transaction():
            locked = await store.get(conn, appointment_id, lock=True)
            before = moved = _changeable(rules, locked, appointment_id, "moved", now)
            if before.appointment.start_time != start:
                moved = await store.move(conn, before, start, rules.local(start).date(), rules.bays)
                await outbox.queue(conn, appointment_id)
    except BaysFull:
        raise await _bays_full(wish, start) from None
    except CustomerOverlap:
        raise await _customer_busy(wish, start) from None
    await forget_customer(moved.appointment.customer_id)
    return answer(rules, moved, previous_start_time=rules.local(before.appointment.start_time).isoformat())


async def set_status(
    rules: ShopRules, appointment_id: int | str, status: str, *, now: datetime
) -> dict[str, Any]:
    """Cancel (which frees the bay and has the event removed) or confirm an appointment;
    asking twice answers success with a note."""
    appointment_id = inputs.parse_id(appointment_id)
    async with db.connection() as conn, conn.transaction():
        current = await store.get(conn, appointment_id, lock=True)
        if current is not None and current.appointment.status == status:
            return answer(rules, current, note=f"Appointment {appointment_id} was already {status}.")
        _changeable(rules, current, appointment_id, status, now)
        changed = await store.set_status(conn, appointment_id, status)
        if status == CANCELLED:
            await outbox.queue(conn, appointment_id)
    await forget_customer(changed.appointment.customer_id)
    return answer(rules, changed)
