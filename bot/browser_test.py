"""`GET /test`: talk to the agent from a browser on this machine, over WebRTC.

The browser's call runs the same pipeline, tools and call log as a phone call; only its two
ends are Pipecat's WebRTC transport instead of a Twilio media stream (pipeline/lines.py), so
the browser cancels the agent's voice out of the microphone. Because the page lets its user
claim any caller number, it is a developer's tool: served only when enabled (TEST_PAGE), only
to requests made on this machine directly (not through a proxy or tunnel), and only with the
token printed at start-up, which a proxy or tunnel never learns (the Jupyter pattern).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import SmallWebRTCRequest, SmallWebRTCRequestHandler
from pydantic import BaseModel

import crm
from bot.calls import ActiveCalls
from config.phones import e164
from config.settings import Settings, get_settings
from crm.identity import CallerId
from pipeline.call import run_call
from pipeline.lines import BrowserLine
from pipeline.opening import CallStart
from pipeline.services import not_ready

log = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


class Offer(BaseModel):
    """The browser's WebRTC offer (with its ICE candidates gathered) and who it calls as."""

    sdp: str
    type: str
    caller: str


@cache
def page_token() -> str:
    """This process's secret for the page, printed in the start-up banner."""
    return secrets.token_urlsafe(24)


def page_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.port}/test?token={page_token()}"


def _allowed(request: Request, token: str | None) -> None:
    """403 unless the page is enabled, the request comes from this machine and has the token."""
    if not get_settings().test_page_enabled:
        raise HTTPException(status_code=403, detail="the test page is turned off (TEST_PAGE)")
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
    client = request.client.host if request.client else ""
    if client not in LOCAL_HOSTS or host not in LOCAL_HOSTS or any(
            header in request.headers for header in PROXY_HEADERS):
        raise HTTPException(status_code=403, detail="the test page is for this machine only")
    if not hmac.compare_digest((token or "").encode(), page_token().encode()):
        raise HTTPException(status_code=403, detail="open the test page from the link printed at start-up")


def _not_ready(settings: Settings) -> str | None:
    return "; ".join(not_ready(settings)) or None


class BrowserCalls:
    """The page's routes and the calls made from it."""

    def __init__(self, calls: ActiveCalls) -> None:
        self._calls = calls
        self._webrtc = SmallWebRTCRequestHandler()
        self._sids: set[str] = set()  # the page's calls: the only ones it may read
        self._running: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """End the calls still up, as the server's shutdown ends its websockets (a drain has
        wrapped them up before, if there was one)."""
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self._webrtc.close()

    def router(self) -> APIRouter:
        routes = APIRouter(prefix="/test")

        @routes.get("", response_class=HTMLResponse)
        async def page(request: Request, token: str | None = None) -> str:
            _allowed(request, token)
            return (resources.files("bot") / "static" / "browser_test.html").read_text()

        @routes.get("/ready")
        async def ready(request: Request) -> dict[str, str | None]:
            _allowed(request, request.headers.get("x-test-token"))
            return {"missing": _not_ready(get_settings())}

        @routes.post("/offer")
        async def offer(request: Request, body: Offer) -> dict[str, Any]:
            _allowed(request, request.headers.get("x-test-token"))
            return await self._call(body)

        @routes.get("/calls/{call_sid}")
        async def call(request: Request, call_sid: str) -> dict[str, Any]:
            """What the call log holds of one of this page's calls: the live transcript and the
            per-turn figures."""
            _allowed(request, request.headers.get("x-test-token"))
            log_row = await crm.get_call_log(call_sid) if call_sid in self._sids else None
            if log_row is None:
                raise HTTPException(status_code=404, detail="no call of this page with that SID")
            return {"transcript": log_row["transcript"], "turns": log_row["metrics"],
                    "outcome": log_row["outcome"] if log_row["ended_at"] else None}

        return routes

    async def _call(self, body: Offer) -> dict[str, Any]:
        """Answer the browser's offer with a call on the same pipeline as a phone call's."""
        settings = get_settings()
        if problem := _not_ready(settings):
            raise HTTPException(status_code=503, detail=f"the agent cannot talk yet: {problem}")
        try:
            caller = e164(body.caller, settings.phone_region)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        call_sid = "CA" + secrets.token_hex(16)
        if not await self._calls.expect(call_sid, settings.max_concurrent_calls):
            raise HTTPException(status_code=503, detail="all lines are busy: try again in a minute")
        # Its user holds this machine's token, so the number they claim is taken as vouched for.
        await crm.open_call_log(call_sid, "inbound", caller, settings.twilio_phone_number,
                                caller_id=CallerId.ATTESTED)
        start = CallStart(call_sid=call_sid, stream_sid="MZ" + secrets.token_hex(16), account_sid=None,
                          direction="inbound", customer_number=caller,
                          shop_number=settings.twilio_phone_number, caller_id=CallerId.ATTESTED)

        async def converse(connection: SmallWebRTCConnection) -> None:
            with self._calls.holding(call_sid) as wrap_up:
                await run_call(BrowserLine(connection), start, settings, None, wrap_up)

        async def connected(connection: SmallWebRTCConnection) -> None:
            task = asyncio.create_task(converse(connection), name=f"browser-call-{call_sid}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

        try:
            answer = await self._webrtc.handle_web_request(
                SmallWebRTCRequest(sdp=body.sdp, type=body.type), connected)
        except Exception as exc:
            self._calls.forget(call_sid)
            await crm.close_call_log(call_sid, "error")
            raise HTTPException(status_code=400, detail=f"could not answer the offer: {exc}") from None
        self._sids.add(call_sid)
        return {**(answer or {}), "call_sid": call_sid}
