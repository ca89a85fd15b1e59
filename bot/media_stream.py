"""`WS /twilio/stream`: a Twilio media stream becomes a call pipeline, if it proves it belongs.

The stream's first two messages (`connected`, `start`) are read here; a stream that does not
carry a valid token for its call, or whose call already has a stream, is closed with 1008
before any pipeline starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

import crm
from bot.calls import ActiveCalls
from bot.twilio_security import stream_token_problem
from crm.settings import get_settings
from pipeline.call import run_call
from pipeline.session import CallStart
from pipeline.telephony import Telephony

log = logging.getLogger(__name__)

HANDSHAKE_SECONDS = 10
POLICY_VIOLATION = 1008


class HandshakeError(Exception):
    pass


async def _message(websocket: WebSocket) -> dict[str, Any]:
    try:
        message = json.loads(await websocket.receive_text())
    except json.JSONDecodeError as exc:
        raise HandshakeError("a message that is not JSON") from exc
    if not isinstance(message, dict):
        raise HandshakeError("a message that is not a JSON object")
    return message


async def read_start(websocket: WebSocket) -> tuple[CallStart, dict[str, str]]:
    """Twilio's `connected` then `start`; returns the call and its custom parameters."""
    message = await _message(websocket)
    if message.get("event") == "connected":
        message = await _message(websocket)
    if message.get("event") != "start" or not isinstance(message.get("start"), dict):
        raise HandshakeError(f"expected a start message, got {str(message.get('event'))[:40]!r}")
    start = message["start"]
    parameters = start.get("customParameters") or {}
    stream_sid = start.get("streamSid") or message.get("streamSid")
    call_sid = start.get("callSid")
    if not (isinstance(stream_sid, str) and isinstance(call_sid, str) and isinstance(parameters, dict)):
        raise HandshakeError("start message without streamSid, callSid or customParameters")
    appointment = str(parameters.get("appointment_id", ""))
    direction = "outbound" if parameters.get("direction") == "outbound" else "inbound"
    return CallStart(
        call_sid=call_sid,
        stream_sid=stream_sid,
        account_sid=start.get("accountSid"),
        direction=direction,
        customer_number=parameters.get("customer") or None,
        shop_number=parameters.get("shop") or None,
        appointment_id=int(appointment) if appointment.isdigit() else None,
    ), {str(k): str(v) for k, v in parameters.items()}


def router(calls: ActiveCalls, telephony: Telephony | None) -> APIRouter:
    routes = APIRouter()

    @routes.websocket("/twilio/stream")
    async def media_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            start, parameters = await asyncio.wait_for(read_start(websocket), HANDSHAKE_SECONDS)
        except (HandshakeError, TimeoutError) as exc:
            await _refuse(websocket, f"bad handshake: {exc or 'timed out'}")
            return
        except WebSocketDisconnect:
            return
        problem = stream_token_problem(parameters.get("token"), start.call_sid)
        if problem is None and calls.draining:
            problem = "launcher is draining"
        if problem is None and not await crm.claim_stream(start.call_sid):
            problem = "no open call for this stream, or it already has one"
        if problem:
            await _refuse(websocket, problem, start.call_sid)
            return
        with calls.holding(start.call_sid):
            await run_call(websocket, start, get_settings(), telephony)

    return routes


async def _refuse(websocket: WebSocket, reason: str, call_sid: str | None = None) -> None:
    log.warning("refusing media stream%s: %s", f" for {call_sid}" if call_sid else "", reason)
    await websocket.close(code=POLICY_VIOLATION, reason=reason[:120])

