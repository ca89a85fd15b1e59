"""Twilio's webhooks: an incoming call gets TwiML that opens our media stream; the status
callback closes the call log if the stream has not already."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from twilio.twiml.voice_response import Connect, VoiceResponse

import crm
from bot.calls import ActiveCalls
from bot.twilio_security import TOKEN_PARAMETER, mint_stream_token, verified_form
from crm.identity import caller_id
from crm.settings import Settings, get_settings
from pipeline import services

log = logging.getLogger(__name__)

SignedForm = Annotated[dict[str, str], Depends(verified_form)]

TERMINAL = {"completed": "caller_hung_up", "busy": "no_input", "no-answer": "no_input",
            "canceled": "no_input", "failed": "error"}
UNAVAILABLE = "Sorry, our phone assistant is not available right now."
BUSY = "Thanks for calling {shop}. All of our lines are busy right now."


def twiml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type="application/xml")


def stream_url(settings: Settings) -> str:
    base = settings.base_url
    return ("wss://" + base.removeprefix("https://") if base.startswith("https://")
            else "ws://" + base.removeprefix("http://")) + "/twilio/stream"


def stream_parameters(call_sid: str, **parameters: str | None) -> dict[str, str]:
    """What the media stream's `start` must carry: the call facts given (empty ones left out)
    and a token that binds them, by name and value, to this call."""
    facts = {name: str(value) for name, value in parameters.items() if value}
    return {**facts, TOKEN_PARAMETER: mint_stream_token(call_sid, facts)}


def connect_stream(settings: Settings, call_sid: str, **parameters: str | None) -> VoiceResponse:
    """TwiML that joins the call to our media stream."""
    connect = Connect()
    stream = connect.stream(url=stream_url(settings))
    for name, value in stream_parameters(call_sid, **parameters).items():
        stream.parameter(name=name, value=value)
    return VoiceResponse().append(connect)


def fallback(settings: Settings) -> VoiceResponse:
    """Apologise and hand the caller to a person (or end the call when there is none)."""
    response = VoiceResponse()
    response.say(UNAVAILABLE + (" Let me connect you with the service desk."
                                if settings.service_desk_number else " Please call back later."))
    if settings.service_desk_number:
        response.dial(settings.service_desk_number)
    return response


def busy_words(settings: Settings) -> str:
    return BUSY.format(shop=settings.shop_name) + (
        " Let me connect you with a service advisor." if settings.service_desk_number
        else " Please call us back in a few minutes. Thank you, goodbye.")


def busy(settings: Settings) -> VoiceResponse:
    """Over capacity: an apology, then the service desk or, without one, a hang-up."""
    response = VoiceResponse()
    response.say(busy_words(settings))
    if settings.service_desk_number:
        response.dial(settings.service_desk_number)
    else:
        response.hangup()
    return response


def router(calls: ActiveCalls) -> APIRouter:
    routes = APIRouter(prefix="/twilio")

    @routes.post("/voice")
    async def incoming_call(form: SignedForm) -> Response:
        settings = get_settings()
        call_sid = form.get("CallSid")
        if not call_sid:
            raise HTTPException(status_code=400, detail="CallSid is missing")
        if calls.draining:
            return Response(status_code=503)  # Twilio then tries the number's fallback URL
        missing = services.missing_keys(settings)
        if missing:
            log.error("call %s: cannot answer, %s not set", call_sid, ", ".join(missing))
            return twiml(fallback(settings))
        caller, shop = form.get("From"), form.get("To")
        identified = caller_id(caller, form.get("StirVerstat"), settings.phone_region)
        full = not calls.expect(call_sid, settings.max_concurrent_calls)
        try:
            await crm.open_call_log(call_sid, "inbound", caller, shop, caller_id=identified)
            if full:
                log.warning("call %s: over capacity (%d calls), answered with the busy message",
                            call_sid, settings.max_concurrent_calls)
                await crm.append_turn(call_sid, "agent", busy_words(settings))
                await crm.record_outcome(
                    call_sid, "transferred" if settings.service_desk_number else "completed")
                return twiml(busy(settings))
        except crm.DatabaseUnavailable:
            calls.forget(call_sid)
            log.exception("call %s: no call log, answering with the fallback", call_sid)
            return twiml(fallback(settings))
        return twiml(connect_stream(settings, call_sid, customer=caller, shop=shop,
                                    direction="inbound", caller_id=identified))

    @routes.post("/status")
    async def call_status(form: SignedForm) -> Response:
        call_sid, status = form.get("CallSid"), form.get("CallStatus", "")
        if not call_sid:
            raise HTTPException(status_code=400, detail="CallSid is missing")
        if status in TERMINAL:
            calls.forget(call_sid)
            await crm.close_call_log(call_sid, TERMINAL[status])
        return Response(status_code=204)

    return routes
