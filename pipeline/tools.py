"""The tools the language model may call, wired to `crm` and `calendar_adapter`.

Each tool is a method whose name, signature and docstring are its schema (Pipecat's direct
functions), and answers JSON. What a call may read and change is decided by `crm.identity`,
never by the prompt: the caller's own record, and records the caller proves on the call.
Bookings are made on a record the call may see (created from `customer_name` for a new
caller). Writes are shielded from barge-in cancellation and carry an idempotency key, so a
caller talking over the agent never leaves a half-known booking, and a retry never books
twice. A tool that fails makes the agent apologise and offer a transfer instead of going quiet;
one that finds the database down has the model offer to take a message (`take_message`, which
works through the outage: it is stored like the call log, `crm/journal.py`).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import EndWorkerFrame, FunctionCallResultProperties, TTSSpeakFrame
from pipecat.services.llm_service import FunctionCallParams

import calendar_adapter
import crm
from config import lines
from config.phones import e164
from config.settings import Settings
from crm.identity import Proof
from pipeline.handover import Done, Handover, summary
from pipeline.new_vehicle import NewVehicle
from pipeline.session import CallSession, Ending
from telephony.texts import CallTexts
from telephony.warm_transfer import DeskLegs

log = logging.getLogger(__name__)

Answer = dict[str, Any]
Tool = Callable[..., Awaitable[Answer]]

# What the model hears when a tool finds the database down (the caller has just heard
# lines.SYSTEM_DOWN): it can still take a message.
SYSTEM_DOWN = ("The shop's system is down right now, so this cannot be done on this call; the caller"
               " was just told so. Without apologising again, offer to take a message: ask for the"
               " caller's name, a number to call them back on and what they need, then call"
               " take_message.")


def _answering(tool: Tool) -> Callable[..., Awaitable[None]]:
    """A tool method that answers JSON, as a direct function: what the model passes beyond the
    signature is left out, a missing argument is said back to the model, and a failure is an
    apology to the caller."""
    signature = inspect.signature(tool)

    @functools.wraps(tool)
    async def direct(self: CallTools, params: FunctionCallParams, **arguments: Any) -> None:
        known = {name: value for name, value in arguments.items() if name in signature.parameters}
        try:
            signature.bind(self, params, **known)
        except TypeError as exc:
            await params.result_callback({"error": str(exc)})
            return
        try:
            # Shielded: a barge-in or a hang-up cancels the handler, never a booking half-way,
            # and the call log is not closed before the booking's outcome is in it.
            answer = await self.session.shielded(tool(self, params, **known))
        except crm.DatabaseUnavailable:
            log.warning("call %s: tool %s: database unavailable", self.session.call_sid,
                        params.function_name)
            # Said at once, before the model's offer to take a message (which takes a moment).
            await params.llm.push_frame(TTSSpeakFrame(lines.SYSTEM_DOWN))
            await params.result_callback({"error": SYSTEM_DOWN})
            return
        except Exception:
            log.exception("call %s: tool %s failed", self.session.call_sid, params.function_name)
            await params.result_callback(
                {"error": "the system is unavailable; the caller was offered a transfer"},
                properties=FunctionCallResultProperties(run_llm=False))
            await params.llm.push_frame(TTSSpeakFrame(lines.APOLOGY))
            return
        await params.result_callback(answer)

    return direct


class CallTools:
    """The tools of one call, bound to its session."""

    def __init__(self, session: CallSession, settings: Settings, texts: CallTexts | None = None,
                 desk: DeskLegs | None = None) -> None:
        self.session = session
        self._settings = settings
        self._handover = Handover(session, settings, desk)
        self._done: list[Done] = []  # what the call did, for the advisor a transfer reaches
        self._texts = texts  # the customer's text after a booking, move or cancellation
        self._vehicle_read_back: NewVehicle | None = None  # what add_vehicle last read back

    def schema(self) -> ToolsSchema:
        tools = [self.lookup_customer, self.get_vehicle_info, self.check_availability,
                 self.book_appointment, self.reschedule_appointment, self.cancel_appointment,
                 self.add_vehicle, self.take_message, self.transfer_to_human, self.end_call]
        if self.session.start.appointment_id is not None:
            tools.append(self.confirm_appointment)
        return ToolsSchema(standard_tools=tools)

    # --- reading ---------------------------------------------------------------------------

    @_answering
    async def lookup_customer(self, params: FunctionCallParams, phone: str, last_name: str | None = None,
                              vehicle_make: str | None = None, vin_last4: str | None = None) -> Answer:
        """Find a customer, their vehicles and upcoming appointments by phone. Another number than
        the caller's (or the caller's own, when the answer asks for it) needs the caller to say
        the last name on the record and the make of one of its vehicles or its VIN's last four.

        Args:
            phone: Phone number in any format.
            last_name: The last name the caller says is on the record.
            vehicle_make: The make of one of its vehicles, as said.
            vin_last4: The last four characters of a vehicle's VIN.
        """
        proof = Proof(_text(last_name), _text(vehicle_make), _text(vin_last4))
        answer = await self.session.access.lookup(str(phone), proof)
        if "verified" in answer:
            self.session.proof(answer["customer"]["id"] if answer["verified"] else None)
            await self._refresh_record()
        return answer

    @_answering
    async def get_vehicle_info(self, params: FunctionCallParams, vin: str | None = None,
                               vehicle_id: int | None = None) -> Answer:
        """Decode a VIN, or get the service history of a vehicle on the record.

        Args:
            vin: 17-character VIN.
            vehicle_id: Vehicle id from the customer record.
        """
        vin, vehicle = _text(vin), _whole(vehicle_id)
        if vin is None and vehicle is None:
            return {"found": False, "reason": "Give a VIN or a vehicle id from the caller's record."}
        return await self.session.access.vehicle_info(vin=vin, vehicle_id=None if vin else vehicle)

    @_answering
    async def check_availability(self, params: FunctionCallParams, date: str,
                                 service_type: str | None = None) -> Answer:
        """Open appointment start times on a day.

        Args:
            date: The day, YYYY-MM-DD.
            service_type: What the car needs, e.g. oil change, tire rotation, brake service.
        """
        return await calendar_adapter.check_availability(str(date), _text(service_type))

    # --- writing ---------------------------------------------------------------------------

    @_answering
    async def book_appointment(self, params: FunctionCallParams, start_time: str, service_type: str,
                               vehicle_id: int | None = None, customer_name: str | None = None,
                               callback_number: str | None = None, notes: str | None = None) -> Answer:
        """Book a service appointment for the caller after they agreed.

        Args:
            start_time: ISO 8601 date-time in shop time, e.g. 2026-12-01T10:00.
            service_type: What the car needs, e.g. oil change, tire rotation, brake service.
            vehicle_id: Which of the caller's vehicles.
            customer_name: First and last name of a new caller.
            callback_number: A new caller's phone number, when their caller ID is withheld.
            notes: Anything the technician should know.
        """
        vehicle = _whole(vehicle_id)
        if vehicle_id is not None:
            owner = None if vehicle is None else await self.session.access.owner_of_vehicle(vehicle)
            if owner is None:
                return {"success": False, "reason": "That vehicle is not on the caller's record."}
            customer_id = owner.customer.id
        elif self.session.customer_id is not None:
            customer_id = self.session.customer_id
        else:
            refusal = await self._adopt_new_caller(customer_name, callback_number)
            if refusal:
                return refusal
            customer_id = self.session.customer_id
        # Within the call, the calendar keys a booking by what it means (customer, instant, service).
        result = await calendar_adapter.book_appointment(
            str(start_time), str(service_type), customer_id, vehicle, _text(notes),
            idempotency_key=self.session.call_sid)
        return await self._after_write(result, "booked")

    @_answering
    async def add_vehicle(self, params: FunctionCallParams, year: int, make: str, model: str,
                          vin: str | None = None, mileage: int | None = None, confirmed: bool = False,
                          customer_name: str | None = None, callback_number: str | None = None) -> Answer:
        """Add a vehicle that is not on file to the caller's record. Call it first without
        confirmed: it answers what to read back. Only once the caller says it is right, call it
        again with the same details and confirmed=true to store it.

        Args:
            year: Model year, e.g. 2019.
            make: Manufacturer, e.g. Honda.
            model: Model, e.g. Civic.
            vin: The VIN if the caller has it, as they spelled it (e.g. "1HG C as in Charlie M8...").
            mileage: The current mileage, if the caller knows it.
            confirmed: True only after the caller confirmed the read-back.
            customer_name: First and last name of a new caller.
            callback_number: A new caller's phone number, when their caller ID is withheld.
        """
        vehicle = NewVehicle.of(year, make, model, vin, mileage)
        if not isinstance(vehicle, NewVehicle):
            return vehicle  # what to ask again
        if str(confirmed).lower() != "true" or vehicle != self._vehicle_read_back:
            self._vehicle_read_back = vehicle  # stored only once the caller heard it and agreed
            return vehicle.read_back()
        if self.session.customer_id is None:
            refusal = await self._adopt_new_caller(customer_name, callback_number)
            if refusal:
                return {**refusal, "added": False}
        added = await crm.add_vehicle(self.session.customer_id, vehicle.year, vehicle.make, vehicle.model,
                                      vehicle.vin, vehicle.mileage)
        self._vehicle_read_back = None
        if added["added"]:
            await self._refresh_record()
            return {"added": True, "vehicle_id": added["vehicle_id"]}
        record = self.session.record
        if added["reason"] == "on_record" and record and self.session.access.may_change(
                record.customer.phone):
            return {"added": False, "already_on_record": True, "vehicle_id": added["vehicle_id"]}
        # Whose record a VIN is on is not for this call to say, nor whether it is the caller's own
        # when the call may not change that record.
        return {"added": False, "reason": "That vehicle cannot be added on this call. Do not guess why:"
                                          " offer to go on without it, or a service advisor."}

    @_answering
    async def reschedule_appointment(self, params: FunctionCallParams, appointment_id: int,
                                     start_time: str) -> Answer:
        """Move one of the caller's appointments to a new time.

        Args:
            appointment_id: The appointment's id from the caller's record.
            start_time: ISO 8601 date-time in shop time, e.g. 2026-12-01T10:00.
        """
        return await self._on_changeable(
            appointment_id, lambda appointment: calendar_adapter.reschedule_appointment(appointment,
                                                                                       str(start_time)),
            "rescheduled")

    @_answering
    async def cancel_appointment(self, params: FunctionCallParams, appointment_id: int) -> Answer:
        """Cancel one of the caller's appointments after they confirmed.

        Args:
            appointment_id: The appointment's id from the caller's record.
        """
        return await self._on_changeable(appointment_id, calendar_adapter.cancel_appointment, "cancelled")

    @_answering
    async def confirm_appointment(self, params: FunctionCallParams, appointment_id: int) -> Answer:
        """Mark the reminded appointment as confirmed by the customer.

        Args:
            appointment_id: The appointment's id from the caller's record.
        """
        return await self._on_changeable(appointment_id, calendar_adapter.confirm_appointment, "confirmed")

    async def _on_changeable(self, appointment_id: Any, change: Callable[[int], Awaitable[Answer]],
                             outcome: str) -> Answer:
        """`change` an upcoming appointment of a record the call may change, and note the outcome."""
        appointment = _whole(appointment_id)
        refusal = (await self.session.access.changeable(appointment) if appointment is not None
                   else "Give the appointment's id from the caller's record.")
        if refusal:
            return {"success": False, "reason": refusal}
        return await self._after_write(await change(appointment), outcome)

    async def _adopt_new_caller(self, name: Any, callback: Any) -> Answer | None:
        """Make a caller not on file a customer, under their caller ID or the number they gave."""
        if not _text(name):
            return {"success": False, "reason": "Ask for the caller's first and last name first."}
        access = self.session.access
        number = access.number
        if number is None:
            try:
                number = e164(str(callback or ""), self._settings.phone_region)
            except ValueError:
                return {"success": False,
                        "reason": "The caller ID is withheld: ask for a phone number to reach them"
                                  " and pass it as callback_number."}
            if await crm.customer_record(number) is not None and not access.may_change(number):
                return {"success": False,
                        "reason": "That number is on file for a customer. Ask for the last name on the"
                                  " record and a vehicle's make (or its VIN's last four) and call"
                                  " lookup_customer with them, or ask for another number."}
        first, _, last = str(name).strip().partition(" ")
        created = await crm.create_customer(number, first, last)
        access.adopt(number)
        self.session.identified(created["customer"]["id"])
        self.session.record = await crm.customer_record(number)
        return None

    async def _after_write(self, result: Answer, outcome: str) -> Answer:
        if result.get("success"):
            self.session.outcome(outcome)
            self._done.append((outcome, result))
            if self._texts is not None:
                self._texts.changed(outcome, result)  # in the background: the answer does not wait
            await self._refresh_record()
        return result

    async def _refresh_record(self) -> None:
        """The caller's own record as it now stands, for the tools that rely on it."""
        if self.session.record is not None:
            self.session.record = await crm.customer_record(self.session.record.customer.phone)

    @_answering
    async def take_message(self, params: FunctionCallParams, name: str, reason: str,
                           callback_number: str | None = None) -> Answer:
        """Leave a message for a service advisor to call the caller back: when the system is
        down, when nobody can take the call now, or when the caller asks for a call back.

        Args:
            name: The caller's name, as they gave it.
            reason: What they need, in a few words.
            callback_number: The number to call back on; leave it out to use the caller ID.
        """
        said_name, need = _text(name), _text(reason)
        if not said_name or not need:
            return {"taken": False, "reason": "Ask for the caller's name and what they need first."}
        number = _text(callback_number) or self.session.access.number
        if number is None:
            return {"taken": False, "reason": "The caller ID is withheld: ask for a number to call"
                                              " back on and pass it as callback_number."}
        try:
            number = e164(number, self._settings.phone_region)
        except ValueError:
            return {"taken": False, "reason": "That is not a number we can call: ask for it again,"
                                              " with the area code."}
        self.session.message(said_name, number, need)
        self._done.append(("message", {}))
        return {"taken": True, "callback_number": number,
                "note": "Read the number back and tell the caller a service advisor will call them."}

    # --- handing the call on ---------------------------------------------------------------

    # Not cancelled when the caller speaks: they are on hold while the desk rings (Pipecat's
    # asynchronous tool, its result given to the model whenever it comes).
    @tool_options(cancel_on_interruption=False)
    async def transfer_to_human(self, params: FunctionCallParams, reason: str) -> None:
        """Hand the call to a service advisor.

        Args:
            reason: What the caller wants, in a few words (the advisor hears it).
        """
        if not self._settings.service_desk_number:
            await params.result_callback({
                "transferred": False,
                "reason": "No advisor line is configured: offer to take a message instead."})
            return
        why = _text(reason) or "to speak with an advisor"
        await self._handover.transfer(params, summary(self.session, why, self._done))

    async def end_call(self, params: FunctionCallParams, reason: str) -> None:
        """Say goodbye and hang up when the conversation is finished.

        Args:
            reason: Why, in a few words.
        """
        self.session.ending = Ending.AGENT_HUNG_UP
        await params.result_callback({"ending": True},
                                     properties=FunctionCallResultProperties(run_llm=False))
        await params.llm.push_frame(TTSSpeakFrame(lines.GOODBYE.format(shop=self._settings.shop_name)))
        await params.llm.push_frame(EndWorkerFrame(reason="end_call"))


def _text(value: Any) -> str | None:
    """An optional text argument: None when missing or blank."""
    if value is None:
        return None
    return str(value).strip() or None


def _whole(value: Any) -> int | None:
    """An id argument: None when missing or not a whole number (the model may send "42")."""
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
