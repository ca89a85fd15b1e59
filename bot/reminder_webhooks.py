"""Twilio's webhook for reminder calls placed by `python -m reminders`.

The call is created with synchronous answering-machine detection, so Twilio requests
`POST /twilio/reminder?appointment_id=N` only once it knows who answered (`AnsweredBy`):
a machine gets a short voicemail and a hang-up (and the customer a text); a person gets the
agent in reminder mode on our media stream. The call's status callback is the inbound one,
`POST /twilio/status`.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

import crm
from bot.calls import ActiveCalls
from bot.twilio_webhooks import SignedForm, twiml
from config import lines
from config.settings import Settings, get_settings
from crm.identity import CallerId
from pipeline import services
from reminders import selection, voicemail
from telephony.streams import connect_stream
from telephony.texts import Texts
from telephony.twiml import say_and_hang_up

log = logging.getLogger(__name__)

MACHINE = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})


def call_back_number(settings: Settings) -> str | None:
    return settings.twilio_phone_number or settings.service_desk_number


async def _no_agent(calls: ActiveCalls, settings: Settings, call_sid: str) -> str | None:
    """Why the person who answered cannot be handed to the agent, or None (a place is kept)."""
    if calls.draining:
        return "draining"
    missing = services.missing_keys(settings)
    if missing:
        return ", ".join(missing) + " not set"
    if not await calls.expect(call_sid, settings.max_concurrent_calls):
        return "over capacity"
    return None


def router(calls: ActiveCalls, texts: Texts | None = None) -> APIRouter:
    routes = APIRouter(prefix="/twilio")

    @routes.post("/reminder")
    async def reminder_answered(
        form: SignedForm, appointment_id: Annotated[int, Query(ge=1)]
    ) -> Response:
        settings = get_settings()
        call_sid = form.get("CallSid")
        if not call_sid:
            raise HTTPException(status_code=400, detail="CallSid is missing")
        customer, shop = form.get("To"), form.get("From")
        machine = form.get("AnsweredBy", "") in MACHINE
        try:
            appointment = await selection.reminded(appointment_id)
            await crm.open_call_log(call_sid, "outbound", shop, customer,
                                    appointment.customer_id if appointment else None,
                                    caller_id=CallerId.DIALLED)
            if machine:
                await crm.record_outcome(call_sid, "voicemail")
        except crm.DatabaseUnavailable:
            log.exception("reminder call %s: no database, leaving a message without the time", call_sid)
            return twiml(say_and_hang_up(
                voicemail.message(settings.shop_name, None, call_back_number(settings))))
        if appointment is None or not appointment.active:
            log.info("reminder call %s: appointment %s is no longer active", call_sid, appointment_id)
            if machine:
                return twiml(say_and_hang_up(None))
            return twiml(say_and_hang_up(lines.NO_LONGER_NEEDED.format(shop=settings.shop_name)))
        spoken = voicemail.message(settings.shop_name, appointment.start_time.astimezone(settings.tz),
                                   call_back_number(settings))
        if machine:
            if texts is not None:  # what the machine heard, in writing too
                texts.about(settings, "reminder", appointment.customer_id, appointment.service_type,
                            appointment.start_time)
            return twiml(say_and_hang_up(spoken))
        unavailable = await _no_agent(calls, settings, call_sid)
        if unavailable:  # no agent to hand the person to: the message will do
            log.warning("reminder call %s: agent unavailable (%s), leaving the message", call_sid,
                        unavailable)
            return twiml(say_and_hang_up(spoken))
        return twiml(connect_stream(settings, call_sid, customer=customer, shop=shop,
                                    direction="outbound", appointment_id=str(appointment_id),
                                    caller_id=CallerId.DIALLED))

    return routes
