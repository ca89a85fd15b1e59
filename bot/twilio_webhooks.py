"""Twilio's webhooks: an incoming call gets TwiML that opens our media stream; the status
callback closes the call log if the stream has not already.

With the database down a call cannot be answered by the agent (no log to claim its stream by):
the caller hears an apology and goes to the service desk (or is asked to call back), and the
call's log is written from the journal once the database is back (`crm/journal.py`). A status
callback's close goes the same way while the database is down or the call's earlier writes
still wait there, so it cannot overtake them.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from twilio.twiml.voice_response import VoiceResponse

import crm
from bot.calls import ActiveCalls
from config import lines
from config.settings import get_settings
from crm import journal
from pipeline import services
from telephony.streams import connect_stream
from telephony.twiml import to_the_desk
from telephony.webhooks import caller_id, verified_form

log = logging.getLogger(__name__)

SignedForm = Annotated[dict[str, str], Depends(verified_form)]


def twiml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type="application/xml")

TERMINAL = {"completed": "caller_hung_up", "busy": "no_input", "no-answer": "no_input",
            "canceled": "no_input", "failed": "error"}


def router(calls: ActiveCalls) -> APIRouter:
    routes = APIRouter(prefix="/twilio")

    @routes.post("/voice")
    async def incoming_call(form: SignedForm) -> Response:
        settings = get_settings()
        call_sid = form.get("CallSid")
        if not call_sid:
            raise HTTPException(status_code=400, detail="CallSid is missing")
        missing = services.missing_keys(settings)
        if missing:
            log.error("call %s: cannot answer, %s not set", call_sid, ", ".join(missing))
            return twiml(to_the_desk(settings, lines.UNAVAILABLE)[0])
        caller, shop = form.get("From"), form.get("To")
        identified = caller_id(caller, form.get("StirVerstat"), settings.phone_region)
        # No place is kept while draining either: a caller ringing then gets the busy answer too.
        full = not await calls.expect(call_sid, settings.max_concurrent_calls)
        try:
            await crm.open_call_log(call_sid, "inbound", caller, shop, caller_id=identified)
            if full:
                log.warning("call %s: %s, answered with the busy message", call_sid,
                            "draining" if calls.draining
                            else f"over capacity ({settings.max_concurrent_calls} calls)")
                busy, said = to_the_desk(settings, lines.BUSY)
                await crm.append_turn(call_sid, "agent", said)
                await crm.record_outcome(
                    call_sid, "transferred" if settings.service_desk_number else "completed")
                return twiml(busy)
        except crm.DatabaseUnavailable as exc:
            calls.forget(call_sid)
            log.warning("call %s: database unavailable (%s), answering with the fallback", call_sid, exc)
            fallback, said = to_the_desk(settings, lines.UNAVAILABLE)
            await journal.keep(
                journal.entry("open_call_log", call_sid, direction="inbound", from_number=caller,
                              to_number=shop, caller_id=str(identified)),
                journal.entry("append_turn", call_sid, role="agent", text=said, at=journal.now()),
                journal.entry("close_call_log", call_sid,
                              outcome="transferred" if settings.service_desk_number else "error"))
            return twiml(fallback)
        return twiml(connect_stream(settings, call_sid, customer=caller, shop=shop,
                                    direction="inbound", caller_id=identified))

    @routes.post("/status")
    async def call_status(form: SignedForm) -> Response:
        call_sid, status = form.get("CallSid"), form.get("CallStatus", "")
        if not call_sid:
            raise HTTPException(status_code=400, detail="CallSid is missing")
        if status in TERMINAL:
            calls.forget(call_sid)
            await journal.write(journal.entry("close_call_log", call_sid, outcome=TERMINAL[status]))
        return Response(status_code=204)

    return routes
