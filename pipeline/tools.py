"""The tools the language model may call, wired to `crm` and `calendar_adapter`.

Each tool answers JSON. What a call may read and change is decided by `crm.identity`, never by
the prompt: the caller's own record, and records the caller proves on the call. Bookings are
made on a record the call may see (created from `customer_name` for a new caller). Writes
are shielded from barge-in cancellation and carry an idempotency key, so a
caller talking over the agent never leaves a half-known booking, and a retry never books twice.
A tool that fails makes the agent apologise and offer a transfer instead of going quiet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import EndWorkerFrame, FunctionCallResultProperties, TTSSpeakFrame
from pipecat.services.llm_service import FunctionCallParams, LLMService

import calendar_adapter
import crm
from crm.identity import Proof
from crm.phones import e164
from crm.settings import Settings
from pipeline.session import CallSession

log = logging.getLogger(__name__)

APOLOGY = ("I'm sorry, I'm having trouble reaching our scheduling system right now. "
           "I can transfer you to a service advisor, or you can call back a little later.")
TRANSFERRING = "Sure, I'm connecting you with a service advisor now. Please hold."

_TIME = {"type": "string", "description": "ISO 8601 date-time in shop time, e.g. 2026-12-01T10:00"}
_SERVICE = {"type": "string",
            "description": "What the car needs, e.g. oil change, tire rotation, brake service"}
_APPOINTMENT = {"type": "integer", "description": "The appointment's id from the caller's record"}
_REASON = {"type": "string", "description": "Why, in a few words"}

SCHEMAS = {
    "lookup_customer": FunctionSchema(
        "lookup_customer",
        "Find a customer, their vehicles and upcoming appointments by phone. Another number than"
        " the caller's (or the caller's own, when the answer asks for it) needs the caller to say"
        " the last name on the record and the make of one of its vehicles or its VIN's last four.",
        {"phone": {"type": "string", "description": "Phone number in any format"},
         "last_name": {"type": "string", "description": "The last name the caller says is on the record"},
         "vehicle_make": {"type": "string", "description": "The make of one of its vehicles, as said"},
         "vin_last4": {"type": "string", "description": "The last four characters of a vehicle's VIN"}},
        ["phone"]),
    "get_vehicle_info": FunctionSchema(
        "get_vehicle_info", "Decode a VIN, or get the service history of a vehicle on the record.",
        {"vin": {"type": "string", "description": "17-character VIN"},
         "vehicle_id": {"type": "integer", "description": "Vehicle id from the customer record"}},
        []),
    "check_availability": FunctionSchema(
        "check_availability", "Open appointment start times on a day.",
        {"date": {"type": "string", "description": "YYYY-MM-DD"}, "service_type": _SERVICE},
        ["date"]),
    "book_appointment": FunctionSchema(
        "book_appointment", "Book a service appointment for the caller after they agreed.",
        {"start_time": _TIME, "service_type": _SERVICE,
         "vehicle_id": {"type": "integer", "description": "Which of the caller's vehicles"},
         "customer_name": {"type": "string", "description": "First and last name of a new caller"},
         "callback_number": {"type": "string",
                             "description": "A new caller's phone number, when their caller ID is withheld"},
         "notes": {"type": "string", "description": "Anything the technician should know"}},
        ["start_time", "service_type"]),
    "reschedule_appointment": FunctionSchema(
        "reschedule_appointment", "Move one of the caller's appointments to a new time.",
        {"appointment_id": _APPOINTMENT, "start_time": _TIME},
        ["appointment_id", "start_time"]),
    "cancel_appointment": FunctionSchema(
        "cancel_appointment", "Cancel one of the caller's appointments after they confirmed.",
        {"appointment_id": _APPOINTMENT}, ["appointment_id"]),
    "confirm_appointment": FunctionSchema(
        "confirm_appointment", "Mark the reminded appointment as confirmed by the customer.",
        {"appointment_id": _APPOINTMENT}, ["appointment_id"]),
    "transfer_to_human": FunctionSchema(
        "transfer_to_human", "Hand the call to a service advisor.", {"reason": _REASON},
        ["reason"]),
    "end_call": FunctionSchema(
        "end_call", "Say goodbye and hang up when the conversation is finished.",
        {"reason": _REASON}, ["reason"]),
}

Action = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class CallTools:
    """The tools of one call, bound to its session."""

    def __init__(self, session: CallSession, settings: Settings) -> None:
        self._session = session
        self._settings = settings
        self._actions: dict[str, Action] = {
            "lookup_customer": self._lookup_customer,
            "get_vehicle_info": self._get_vehicle_info,
            "check_availability": self._check_availability,
            "book_appointment": self._book,
            "reschedule_appointment": self._reschedule,
            "cancel_appointment": self._cancel,
        }
        if session.start.appointment_id is not None:
            self._actions["confirm_appointment"] = self._confirm

    def schema(self) -> ToolsSchema:
        names = [*self._actions, "transfer_to_human", "end_call"]
        return ToolsSchema(standard_tools=[SCHEMAS[name] for name in names])

    def register(self, llm: LLMService) -> None:
        for name, action in self._actions.items():
            llm.register_function(name, self._answering(action))
        llm.register_function("transfer_to_human", self._transfer_to_human)
        llm.register_function("end_call", self._end_call)

    def _answering(self, action: Action) -> Callable[[FunctionCallParams], Awaitable[None]]:
        async def handler(params: FunctionCallParams) -> None:
            try:
                # Shielded: a barge-in cancels the handler, never a booking half-way.
                result = await asyncio.shield(action(dict(params.arguments)))
            except Exception:
                log.exception("call %s: tool %s failed", self._session.call_sid,
                              params.function_name)
                await params.result_callback(
                    {"error": "the system is unavailable; the caller was offered a transfer"},
                    properties=FunctionCallResultProperties(run_llm=False))
                await params.llm.push_frame(TTSSpeakFrame(APOLOGY))
                return
            await params.result_callback(result)

        return handler

    # --- reading ---------------------------------------------------------------------------

    async def _lookup_customer(self, args: dict[str, Any]) -> dict[str, Any]:
        proof = Proof(*(_text(args.get(name)) for name in ("last_name", "vehicle_make", "vin_last4")))
        answer = await self._session.access.lookup(str(args.get("phone", "")), proof)
        if "verified" in answer:
            self._session.proof(answer["customer"]["id"] if answer["verified"] else None)
            await self._refresh_record()
        return answer

    async def _get_vehicle_info(self, args: dict[str, Any]) -> dict[str, Any]:
        vehicle_id = _whole(args.get("vehicle_id"))
        vin = _text(args.get("vin"))
        if vin is None and vehicle_id is None:
            return {"found": False, "reason": "Give a VIN or a vehicle id from the caller's record."}
        return await self._session.access.vehicle_info(vin=vin, vehicle_id=None if vin else vehicle_id)

    async def _check_availability(self, args: dict[str, Any]) -> dict[str, Any]:
        return await calendar_adapter.check_availability(args.get("date", ""),
                                                         args.get("service_type"))

    # --- writing ---------------------------------------------------------------------------

    async def _book(self, args: dict[str, Any]) -> dict[str, Any]:
        vehicle_id = _whole(args.get("vehicle_id"))
        if args.get("vehicle_id") is not None:
            owner = None if vehicle_id is None else await self._session.access.owner_of_vehicle(vehicle_id)
            if owner is None:
                return {"success": False, "reason": "That vehicle is not on the caller's record."}
            customer_id = owner["customer"]["id"]
        elif self._session.customer_id is not None:
            customer_id = self._session.customer_id
        else:
            refusal = await self._adopt_new_caller(args.get("customer_name"), args.get("callback_number"))
            if refusal:
                return refusal
            customer_id = self._session.customer_id
        start, service = str(args.get("start_time", "")), str(args.get("service_type", ""))
        result = await calendar_adapter.book_appointment(
            start, service, customer_id, vehicle_id, _text(args.get("notes")),
            idempotency_key=f"{self._session.call_sid}:book:{start}:{service}")
        return await self._after_write(result, "booked")

    async def _reschedule(self, args: dict[str, Any]) -> dict[str, Any]:
        start = str(args.get("start_time", ""))
        return await self._on_changeable(
            args, lambda appointment_id: calendar_adapter.reschedule_appointment(appointment_id, start),
            "rescheduled")

    async def _cancel(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._on_changeable(args, calendar_adapter.cancel_appointment, "cancelled")

    async def _confirm(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._on_changeable(args, calendar_adapter.confirm_appointment, "confirmed")

    async def _on_changeable(self, args: dict[str, Any],
                             change: Callable[[int], Awaitable[dict[str, Any]]],
                             outcome: str) -> dict[str, Any]:
        """`change` an upcoming appointment of a record the call may change, and note the outcome."""
        appointment_id = _whole(args.get("appointment_id"))
        refusal = (await self._session.access.changeable(appointment_id) if appointment_id is not None
                   else "Give the appointment's id from the caller's record.")
        if refusal:
            return {"success": False, "reason": refusal}
        return await self._after_write(await change(appointment_id), outcome)

    async def _adopt_new_caller(self, name: Any, callback: Any) -> dict[str, Any] | None:
        """Make a caller not on file a customer, under their caller ID or the number they gave."""
        if not _text(name):
            return {"success": False, "reason": "Ask for the caller's first and last name first."}
        access = self._session.access
        number = access.number
        if number is None:
            try:
                number = e164(str(callback or ""), self._settings.phone_region)
            except ValueError:
                return {"success": False,
                        "reason": "The caller ID is withheld: ask for a phone number to reach them"
                                  " and pass it as callback_number."}
            if (await crm.lookup_customer(number)).get("found") and not access.may_change(number):
                return {"success": False,
                        "reason": "That number is on file for a customer. Ask for the last name on the"
                                  " record and a vehicle's make (or its VIN's last four) and call"
                                  " lookup_customer with them, or ask for another number."}
        first, _, last = str(name).strip().partition(" ")
        created = await crm.create_customer(number, first, last)
        access.adopt(number)
        self._session.identified(created["customer"]["id"])
        self._session.record = access.view(await crm.lookup_customer(number))
        return None

    async def _after_write(self, result: dict[str, Any], outcome: str) -> dict[str, Any]:
        if result.get("success"):
            self._session.outcome(outcome)
            await self._refresh_record()
        return result

    async def _refresh_record(self) -> None:
        """The caller's own record as it now stands, for the tools that rely on it."""
        if self._session.record.get("found"):
            number = self._session.record["customer"]["phone"]
            self._session.record = self._session.access.view(await crm.lookup_customer(number))

    # --- handing the call on ---------------------------------------------------------------

    async def _transfer_to_human(self, params: FunctionCallParams) -> None:
        if not self._settings.service_desk_number:
            await params.result_callback({
                "transferred": False,
                "reason": "No advisor line is configured: offer to take a message instead."})
            return
        self._session.ending = "transferred"
        self._session.outcome("transferred")
        await params.result_callback({"transferred": True},
                                     properties=FunctionCallResultProperties(run_llm=False))
        # The transfer itself happens once this has played (pipeline/call.py).
        await params.llm.push_frame(TTSSpeakFrame(TRANSFERRING))
        await params.llm.push_frame(EndWorkerFrame(reason="transfer"))

    async def _end_call(self, params: FunctionCallParams) -> None:
        self._session.ending = "agent"
        await params.result_callback({"ending": True},
                                     properties=FunctionCallResultProperties(run_llm=False))
        await params.llm.push_frame(
            TTSSpeakFrame(f"Thanks for calling {self._settings.shop_name}. Goodbye!"))
        await params.llm.push_frame(EndWorkerFrame(reason="end_call"))


def _text(value: Any) -> str | None:
    """An optional text argument: None when missing or blank."""
    if value is None:
        return None
    return str(value).strip() or None


def _whole(value: Any) -> int | None:
    """An optional id argument: None when missing or not a whole number."""
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
