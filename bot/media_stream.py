"""`WS /twilio/stream`: a Twilio media stream becomes a call pipeline, if it proves it belongs.

The stream's first two messages (`connected`, `start`) are read here; a stream that does not
carry a valid token for its call and parameters, or whose call already has a stream, is closed
with 1008 before any pipeline starts. So is one whose handshake is broken in any way, with one
log line and no traceback; a client that left mid-handshake is simply let go.

A stream whose claim finds the database down cannot become a call (nothing could be looked up
or stored), but its caller is not left in silence: through Twilio's REST API the call is told
to apologise and dial the service desk (or to ask the caller to call back), and the call log
learns it through the journal once the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

import crm
from bot.calls import ActiveCalls
from config import lines
from config.settings import get_settings
from crm import journal
from crm.identity import CallerId
from pipeline.call import run_call
from pipeline.lines import TwilioLine
from pipeline.opening import CallStart
from telephony.rest import TwilioRest
from telephony.serializer import UnfitMessage, stream_message
from telephony.streams import stream_token_problem
from telephony.texts import Texts
from telephony.twiml import to_the_desk
from telephony.warm_transfer import DeskLegs

log = logging.getLogger(__name__)

HANDSHAKE_SECONDS = 10
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
# Twilio's SIDs are two letters and 32 hex digits; anything this loose is still safe to log.
_SID = re.compile(r"[A-Za-z0-9]{2,64}")
_APPOINTMENT_ID = re.compile(r"[0-9]{1,18}")


class HandshakeError(Exception):
    """Why a stream's handshake is refused; a short reason fit for logs."""


async def _message(websocket: WebSocket) -> dict[str, Any]:
    received = await websocket.receive()
    if received["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(received.get("code", 1000))
    data = received.get("text")
    if data is None:
        data = received.get("bytes") or b""
    try:
        return stream_message(data)
    except UnfitMessage as exc:
        raise HandshakeError(str(exc)) from None


def _sid(value: Any) -> str:
    if not (isinstance(value, str) and _SID.fullmatch(value)):
        raise HandshakeError("start without a valid callSid and streamSid")
    return value


async def read_start(websocket: WebSocket) -> tuple[CallStart, dict[str, str]]:
    """Twilio's `connected` then `start`; returns the call and its custom parameters."""
    message = await _message(websocket)
    if message.get("event") == "connected":
        message = await _message(websocket)
    start = message.get("start")
    if message.get("event") != "start" or not isinstance(start, dict):
        raise HandshakeError("expected a start message")
    parameters = start.get("customParameters", {})
    if not (isinstance(parameters, dict) and all(isinstance(v, str) for v in parameters.values())):
        raise HandshakeError("customParameters that are not an object of strings")
    call_sid = _sid(start.get("callSid"))
    stream_sid = _sid(start.get("streamSid") or message.get("streamSid"))
    account_sid = start.get("accountSid")
    appointment = _APPOINTMENT_ID.fullmatch(parameters.get("appointment_id", ""))
    return CallStart(
        call_sid=call_sid,
        stream_sid=stream_sid,
        account_sid=account_sid if isinstance(account_sid, str) else None,
        direction="outbound" if parameters.get("direction") == "outbound" else "inbound",
        customer_number=parameters.get("customer") or None,
        shop_number=parameters.get("shop") or None,
        appointment_id=int(appointment[0]) if appointment else None,
        # Believed as far as the webhook found it could be (the stream token vouches it is the
        # webhook's word); a stream without that word is taken as unattested.
        caller_id=next((c for c in CallerId if c == parameters.get("caller_id")), CallerId.UNATTESTED),
    ), parameters


async def _admission_problem(start: CallStart, parameters: dict[str, str],
                             calls: ActiveCalls) -> str | None:
    """Why this stream may not become a call, or None when it may (its call's one stream).
    Raises `crm.DatabaseUnavailable` when the claim cannot be asked."""
    problem = stream_token_problem(parameters, start.call_sid)
    if problem:
        return problem
    if calls.draining and not calls.expecting(start.call_sid):
        return "launcher is draining"  # a call answered before the drain still gets its stream
    claimed = await crm.claim_stream(start.call_sid)
    return None if claimed else "no open call for this stream, or it already has one"


def router(calls: ActiveCalls, telephony: TwilioRest | None, desk: DeskLegs | None = None,
           texts: Texts | None = None) -> APIRouter:
    routes = APIRouter()

    @routes.websocket("/twilio/stream")
    async def media_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            start, parameters = await asyncio.wait_for(read_start(websocket), HANDSHAKE_SECONDS)
        except WebSocketDisconnect:
            return  # nobody left to refuse
        except TimeoutError:
            await _refuse(websocket, "bad handshake: timed out")
            return
        except HandshakeError as exc:
            await _refuse(websocket, f"bad handshake: {exc}")
            return
        try:
            problem = await _admission_problem(start, parameters, calls)
        except crm.DatabaseUnavailable as exc:
            log.warning("call %s: database unavailable to claim the stream (%s): handing the call"
                        " on", start.call_sid, exc)
            await _hand_on(websocket, start.call_sid, telephony)
            return
        if problem:
            await _refuse(websocket, problem, start.call_sid)
            return
        with calls.holding(start.call_sid) as wrap_up:
            await run_call(TwilioLine(websocket, start), start, get_settings(), telephony, wrap_up, desk,
                           texts)

    return routes


async def _hand_on(websocket: WebSocket, call_sid: str, telephony: TwilioRest | None) -> None:
    """The apology and the service desk (or a request to call back) instead of the agent, then
    the stream closed; what the caller heard goes to the call log through the journal."""
    settings = get_settings()
    response, said = to_the_desk(settings, lines.UNAVAILABLE)
    if telephony is None:
        log.error("call %s: no Twilio account to hand the call on with: it ends silent", call_sid)
    else:
        try:
            await telephony.follow(call_sid, response)
        except Exception:
            log.exception("call %s: could not hand the call on through Twilio", call_sid)
    await journal.keep(
        journal.entry("append_turn", call_sid, role="agent", text=said, at=journal.now()),
        journal.entry("close_call_log", call_sid,
                      outcome="transferred" if settings.service_desk_number else "error"))
    # After the call was redirected: closing first would end its <Connect>, and so the call.
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.close(code=TRY_AGAIN_LATER, reason="database unavailable")


async def _refuse(websocket: WebSocket, reason: str, call_sid: str | None = None) -> None:
    log.warning("refusing media stream%s: %s", f" for {call_sid}" if call_sid else "", reason)
    with contextlib.suppress(WebSocketDisconnect):  # the client left meanwhile: nothing to close
        await websocket.close(code=POLICY_VIOLATION, reason=reason[:120])
