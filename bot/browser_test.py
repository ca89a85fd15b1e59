"""`GET /test`: a page that places a test call from the browser, for this machine only.

The page plays Twilio's part over the same media-stream route and token check as a real call,
so it exercises the production path. Because it lets its user claim any caller number, it is a
developer's tool: served only when enabled (TEST_PAGE), only to requests made on this machine
directly (not through a proxy or tunnel), and only with the token printed at start-up, which a
proxy or tunnel never learns (the Jupyter pattern).
"""

from __future__ import annotations

import hmac
import secrets
from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

import crm
from bot.calls import ActiveCalls
from config.phones import e164
from config.settings import Settings, get_settings
from crm.identity import CallerId
from pipeline.services import missing_keys
from telephony.streams import stream_parameters, stream_url

LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


class TestCall(BaseModel):
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


def router(calls: ActiveCalls) -> APIRouter:
    routes = APIRouter(prefix="/test")

    @routes.get("", response_class=HTMLResponse)
    async def page(request: Request, token: str | None = None) -> str:
        _allowed(request, token)
        return (resources.files("bot") / "static" / "browser_test.html").read_text()

    @routes.post("/call")
    async def test_call(request: Request, body: TestCall) -> dict[str, object]:
        _allowed(request, request.headers.get("x-test-token"))
        settings = get_settings()
        missing = missing_keys(settings)
        if missing:
            raise HTTPException(status_code=503, detail=f"set {', '.join(missing)} to talk to the agent")
        try:
            caller = e164(body.caller, settings.phone_region)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        call_sid = "CA" + secrets.token_hex(16)
        if not calls.expect(call_sid, settings.max_concurrent_calls):
            raise HTTPException(status_code=503, detail="all lines are busy: try again in a minute")
        # Its user holds this machine's token, so the number they claim is taken as vouched for.
        await crm.open_call_log(call_sid, "inbound", caller, settings.twilio_phone_number,
                                caller_id=CallerId.ATTESTED)
        parameters = stream_parameters(call_sid, customer=caller, shop=settings.twilio_phone_number,
                                       direction="inbound", caller_id=CallerId.ATTESTED)
        return {"url": stream_url(settings), "call_sid": call_sid,
                "stream_sid": "MZ" + secrets.token_hex(16), "parameters": parameters}

    return routes
