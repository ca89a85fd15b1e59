"""What the agent knows before the first word: who is calling, its instructions, its greeting.

The caller's record is looked up before the pipeline starts, so the greeting is personal
without a tool round trip and the model starts with the caller's vehicles in context.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import crm
from calendar_adapter.speech import say_when
from config import lines
from config.settings import Settings
from crm.appointments import Appointment
from crm.customers import CustomerRecord
from crm.identity import CallerAccess, CallerId

log = logging.getLogger(__name__)

RULES = """\
You are the phone assistant of {shop}, a car dealership's service department. You are on a
live phone call: answer in one or two short spoken sentences, no lists, no markdown, no emoji.
Say dates and times the way people do ("Tuesday the 25th at 10 AM"). It is now {now} in the
shop's time zone ({tz}); every time you say or book is shop time.

You can look up customers and vehicles, check the service calendar, and book, move or cancel
appointments with the tools. Never invent availability: call check_availability first and only
offer times it returned. Before booking, moving or cancelling, repeat the service, vehicle, day
and time and get a clear yes. After a tool answers, tell the caller the outcome in plain words.
If a tool says a time is taken or invalid, offer the alternatives it gives.
A car not on the caller's record can be added with add_vehicle: year, make and model, and the
VIN (passed as the caller spells it) and mileage if they have them. Read back what it returns,
the VIN in its groups, and call it again with confirmed=true only after the caller says yes;
a VIN that does not check out is asked for again.
When the caller asks for a person, is upset, or you cannot help, call transfer_to_human.
If a tool says the system is down, or no advisor can take the call, apologise briefly and offer
to take a message: ask for the caller's name, a number to call back on (their caller ID is fine
if they say so) and what they need, then call take_message and tell them an advisor will call.
When the conversation is finished, call end_call; it says goodbye for you, so do not say
goodbye yourself. Never read out internal ids. You only know what the tools tell you about a
customer: a record other than the caller's own opens only when the caller gives its last name
and a vehicle's make (or its VIN's last four) to lookup_customer."""

KNOWN = """
The caller's number matches this customer record (JSON): {record}"""

UNATTESTED = """
The phone network did not vouch for this caller ID. Before moving or cancelling anything, ask
for the last name on the record and the make of one of its vehicles (or its VIN's last four)
and call lookup_customer with the caller's number and those details."""

UNKNOWN = """
The caller's number ({phone}) is not in the CRM. To book, ask for their first and last name
and pass it as customer_name; their number is used automatically."""

WITHHELD = """
The caller's number is withheld. To book, ask for their first and last name and a number to
reach them, and pass them as customer_name and callback_number."""

REMINDER = """
This is an outbound reminder call you placed about this appointment (JSON): {appointment}
The customer record (JSON): {record}
Your goal: confirm they will come (call confirm_appointment), or reschedule or cancel it. Keep
it brief."""


Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class CallStart:
    """What the Twilio `start` message and our TwiML parameters tell about a call."""

    call_sid: str
    stream_sid: str
    account_sid: str | None
    direction: Direction
    customer_number: str | None  # the caller (inbound) or the person we rang (outbound)
    shop_number: str | None
    appointment_id: int | None = None  # set on reminder calls
    caller_id: CallerId = CallerId.UNATTESTED  # how far `customer_number` can be believed


@dataclass(frozen=True)
class Opening:
    """What a call starts with: who is calling, what the agent says first and knows."""

    access: CallerAccess
    record: CustomerRecord | None  # the caller's own; `access` says how much of it the call sees
    greeting: str
    instructions: str


async def open_call(start: CallStart, settings: Settings) -> Opening:
    """Look up the caller and prepare the greeting and the model's instructions."""
    access = CallerAccess.of(start.customer_number, start.caller_id, settings.phone_region)
    try:
        record = await access.own_record()
    except crm.CRMError:
        log.exception("caller lookup failed; answering as for an unknown caller")
        record = None
    # On a reminder call, the appointment it is about (unless it has been cancelled since).
    appointment = (record.upcoming_visit(start.appointment_id)
                   if record is not None and start.appointment_id is not None else None)
    if appointment is not None and record is not None:
        greeting = _reminder_greeting(settings, record, appointment)
    else:
        greeting = _greeting(settings, record)
    instructions = _instructions(settings, datetime.now(settings.tz), access, record, appointment)
    return Opening(access, record, greeting, instructions)


def _greeting(settings: Settings, record: CustomerRecord | None) -> str:
    shop = settings.shop_name
    if record is None:
        return lines.GREETING_UNKNOWN.format(shop=shop)
    name = record.customer.first_name
    if record.upcoming:
        visit = record.upcoming[0]
        return lines.GREETING_UPCOMING.format(name=name, shop=shop, service=visit.service_type,
                                              when=say_when(visit.start_time))
    if len(record.vehicles) == 1:
        return lines.GREETING_ONE_CAR.format(name=name, shop=shop, car=record.vehicles[0].label)
    return lines.GREETING_KNOWN.format(name=name, shop=shop)


def _reminder_greeting(settings: Settings, record: CustomerRecord, appointment: Appointment) -> str:
    vehicle = record.vehicle(appointment.vehicle_id) if appointment.vehicle_id else None
    return lines.REMINDER_GREETING.format(
        name=record.customer.first_name or lines.NAMELESS, shop=settings.shop_name,
        service=appointment.service_type, when=say_when(appointment.start_time),
        car=lines.REMINDER_CAR.format(car=vehicle.label) if vehicle else "") + lines.REMINDER_KEYS


def _instructions(settings: Settings, now: datetime, access: CallerAccess,
                 record: CustomerRecord | None, appointment: Appointment | None = None) -> str:
    """The model's instructions, with the caller's own record as far as the call may see it."""
    rules = RULES.format(shop=settings.shop_name, now=say_when(now), tz=settings.shop_timezone)
    if record is None:
        if access.caller_id is CallerId.WITHHELD:
            return rules + WITHHELD
        return rules + UNKNOWN.format(phone=access.number)
    seen = {k: v for k, v in access.view(record).items() if k != "found"}
    as_json = json.dumps(seen, default=str)
    if appointment is not None:
        visit = next(v for v in seen["upcoming_appointments"] if v["id"] == appointment.id)
        return rules + REMINDER.format(appointment=json.dumps(visit), record=as_json)
    return rules + KNOWN.format(record=as_json) + ("" if access.caller_id.trusted else UNATTESTED)
