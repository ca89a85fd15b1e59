"""What the agent knows before the first word: its instructions, the caller, and its greeting.

The caller's record is looked up before the pipeline starts, so the greeting is personal
without a tool round trip and the model starts with the caller's vehicles in context.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from calendar_adapter.speech import say_when
from crm.identity import CallerId
from crm.settings import Settings

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
When the caller asks for a person, is upset, or you cannot help, call transfer_to_human.
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


def _vehicle(record: dict[str, Any], vehicle_id: int | None = None) -> dict[str, Any] | None:
    vehicles = record.get("vehicles") or []
    matching = [v for v in vehicles if v["id"] == vehicle_id] if vehicle_id else vehicles[:1]
    return matching[0] if matching else None


def _car(vehicle: dict[str, Any]) -> str:
    return f"{vehicle['year']} {vehicle['make']} {vehicle['model']}"


def greeting(settings: Settings, record: dict[str, Any]) -> str:
    shop = settings.shop_name
    if not record.get("found"):
        return f"Thanks for calling {shop}, this is the virtual service assistant. How can I help?"
    name = record["customer"]["first_name"]
    upcoming = record.get("upcoming_appointments") or []
    if upcoming:
        visit = upcoming[0]
        when = say_when(datetime.fromisoformat(visit["start_time"]))
        return (f"Hi {name}, thanks for calling {shop}. I see your {visit['service_type']} "
                f"on {when}. Are you calling about that?")
    vehicles = record.get("vehicles") or []
    if len(vehicles) == 1:
        return f"Hi {name}, thanks for calling {shop}. Calling about the {_car(vehicles[0])}?"
    return f"Hi {name}, thanks for calling {shop}. How can I help today?"


def reminder_greeting(settings: Settings, record: dict[str, Any], appointment: dict[str, Any]) -> str:
    name = record["customer"]["first_name"] if record.get("found") else "there"
    vehicle = _vehicle(record, appointment.get("vehicle_id"))
    car = f" for your {_car(vehicle)}" if vehicle else ""
    when = say_when(datetime.fromisoformat(appointment["start_time"]))
    return (f"Hi {name}, this is {settings.shop_name} with a reminder of your "
            f"{appointment['service_type']}{car} on {when}. Can you still make it?")


def system_prompt(
    settings: Settings,
    now: datetime,
    record: dict[str, Any],
    caller_id: CallerId,
    appointment: dict[str, Any] | None = None,
) -> str:
    """The model's instructions; `record` is the caller's own, as the call may see it."""
    rules = RULES.format(shop=settings.shop_name, now=say_when(now), tz=settings.shop_timezone)
    as_json = json.dumps({k: v for k, v in record.items() if k != "found"}, default=str)
    if appointment is not None:
        return rules + REMINDER.format(appointment=json.dumps(appointment, default=str),
                                       record=as_json)
    if record.get("found"):
        return rules + KNOWN.format(record=as_json) + ("" if caller_id.trusted else UNATTESTED)
    if caller_id is CallerId.WITHHELD:
        return rules + WITHHELD
    return rules + UNKNOWN.format(phone=record.get("phone"))
