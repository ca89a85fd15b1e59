"""`GET /test`: a page that places a test call from the browser, for this machine only.

The page plays Twilio's part over the same media-stream route and token check as a real call,
so it exercises the production path. Because it lets the user claim any caller number, it
answers only requests made on this machine directly: not through a proxy or tunnel.
"""

from __future__ import annotations

import secrets
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

import crm
from bot.twilio_webhooks import stream_parameters, stream_url
from crm.phones import e164
from crm.settings import get_settings
from pipeline.services import missing_keys

LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


class TestCall(BaseModel):
    caller: str


def _local_only(request: Request) -> None:
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
    client = request.client.host if request.client else ""
    if client not in LOCAL_HOSTS or host not in LOCAL_HOSTS or any(
            header in request.headers for header in PROXY_HEADERS):
        raise HTTPException(status_code=403, detail="the test page is for this machine only")


def router() -> APIRouter:
    routes = APIRouter(prefix="/test")

    @routes.get("", response_class=HTMLResponse)
    async def page(request: Request) -> str:
        _local_only(request)
        return (resources.files("bot") / "static" / "browser_test.html").read_text()

    @routes.post("/call")
    async def test_call(request: Request, body: TestCall) -> dict[str, object]:
        _local_only(request)
        settings = get_settings()
        missing = missing_keys(settings)
        if missing:
            raise HTTPException(status_code=503, detail=f"set {', '.join(missing)} to talk to the agent")
        try:
            caller = e164(body.caller, settings.phone_region)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        call_sid = "CA" + secrets.token_hex(16)
        await crm.open_call_log(call_sid, "inbound", caller, settings.twilio_phone_number)
        parameters = stream_parameters(call_sid, customer=caller,
                                       shop=settings.twilio_phone_number, direction="inbound")
        return {"url": stream_url(settings), "call_sid": call_sid,
                "stream_sid": "MZ" + secrets.token_hex(16), "parameters": parameters}

    return routes
