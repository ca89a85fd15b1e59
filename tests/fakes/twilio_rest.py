"""Fake Twilio REST API: the Calls resource (create, update).

Why: the app places reminder calls (``POST .../Calls.json``), hangs up
(``POST .../Calls/{CallSid}.json`` with ``Status=completed``) and transfers
(the same with ``Twiml``), all through ``telephony/rest.py``; tests run that real
client code against this server, check what it sent, and inject failures for
retry paths.

Pointing clients at it:

* twilio 9.x ``twilio.rest.Client``: the REST root lives on the ``Api`` domain
  object as ``client.api.base_url`` (``"https://api.twilio.com"``), read on every
  request (``Domain.absolute_url``). Set it once::

      client = Client(account_sid, auth_token)
      client.api.base_url = fake.base_url          # what TWILIO_API_BASE_URL holds

  This is the smallest switch the library offers (no monkeypatching: it is the
  domain's own public attribute) and it works for sync calls and ``*_async``
  calls alike. Keep ``edge``/``region`` (and env ``TWILIO_EDGE``/``TWILIO_REGION``)
  unset: with either set, ``Client.get_hostname`` rewrites the host, which would
  mangle ``127.0.0.1``. :meth:`FakeTwilioRest.client` returns such a client.

Behaviour: form-encoded POSTs, HTTP Basic auth checked against
``account_sid:auth_token`` (the app has no API keys); a wrong or missing
credential gets 401 ``{"code": 20003, "message": "Authenticate", ...}``.
``Calls.json`` answers 201 with a call resource (sid ``CA`` + 32 hex, status
``queued``, RFC 2822 dates as Twilio sends them). ``Calls/{sid}.json`` with
``Status=completed`` ends the call, ``Twiml``/``Url`` redirect a live call (400
code 21220 once it has ended); unknown sids get 404 code 20404, which the app
takes for a call that already ended. Calls the app did not create here (inbound
ones) are added with :meth:`register_call`. Failures are injected with
:meth:`fail_next` (next N requests to an endpoint) and :meth:`fail_number`
(every create to a given ``To``). Validation codes for missing ``To`` (21201),
``From`` (21603) and ``Url``/``Twiml`` (21205) follow Twilio's error catalogue as
far as known; they are not checked against the live API.

Optional helpers drive the app the way Twilio would after a create:
:meth:`fetch_twiml` requests the call's ``Url`` and :meth:`send_status_callback`
posts to its ``StatusCallback``, both signed with ``X-Twilio-Signature``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from ._server import LoopbackServer
from .twilio_caller import new_sid, twilio_signature

if TYPE_CHECKING:
    from twilio.rest import Client

API_VERSION = "2010-04-01"


def _rfc2822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC)).replace("-0000", "+0000")


@dataclass
class TwilioRequest:
    """One POST the fake received (after routing), with the answer it gave."""

    call_sid: str | None  # None for a create
    form: dict[str, list[str]]
    auth: tuple[str, str] | None
    at: float
    status: int = 0
    response: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        """First value of form field ``key``."""
        values = self.form.get(key)
        return values[0] if values else default

    def getall(self, key: str) -> list[str]:
        return list(self.form.get(key, []))


@dataclass
class _Failure:
    status: int
    code: int
    message: str


_DEFAULT_FAILURES: dict[int, tuple[int, str]] = {
    400: (21211, "Invalid 'To' Phone Number"),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service Unavailable"),
}


class FakeTwilioRest(LoopbackServer):
    """Twilio's Calls REST resource on loopback; see the module docstring."""

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str = "test-auth-token",
        *,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token
        self.calls: dict[str, dict[str, Any]] = {}  # sid -> call resource JSON
        self.requests: list[TwilioRequest] = []
        self._fail_queue: dict[str, list[_Failure]] = {"create": [], "update": []}
        self._failing_numbers: dict[str, _Failure] = {}

    # -- views -------------------------------------------------------------------

    @property
    def creates(self) -> list[TwilioRequest]:
        """Every ``POST Calls.json`` (including failed ones), in order."""
        return [r for r in self.requests if r.call_sid is None]

    @property
    def created_calls(self) -> list[TwilioRequest]:
        """Successful creates (status 201)."""
        return [r for r in self.creates if r.status == 201]

    @property
    def updates(self) -> list[TwilioRequest]:
        """Every ``POST Calls/{sid}.json``, in order."""
        return [r for r in self.requests if r.call_sid is not None]

    @property
    def hangups(self) -> list[str]:
        """Sids of calls a ``Status=completed`` update was accepted for, in order."""
        return [
            r.call_sid
            for r in self.updates
            if r.status == 200 and r.get("Status") == "completed" and r.call_sid
        ]

    async def wait_for_hangup(
        self,
        call_sid: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> None:
        await self.wait_until(
            lambda: bool(self.hangups) if call_sid is None else call_sid in self.hangups, timeout
        )

    # -- test controls -----------------------------------------------------------------

    def register_call(
        self,
        call_sid: str | None = None,
        *,
        from_: str = "+15005550006",
        to: str = "+15005550001",
        status: str = "in-progress",
        direction: str = "inbound",
    ) -> str:
        """Add a call this fake did not create (e.g. an inbound one); return its sid."""
        sid = call_sid or new_sid("CA")
        self.calls[sid] = self._resource(sid, from_, to, status, direction)
        return sid

    def set_call_status(self, call_sid: str, status: str) -> None:
        """Change a call's status as Twilio would (e.g. the caller hung up: "completed")."""
        call = self.calls[call_sid]
        now = time.time()
        call["status"] = status
        call["date_updated"] = _rfc2822(now)
        if status == "in-progress" and call["start_time"] is None:
            call["start_time"] = _rfc2822(now)
            call["_started"] = now
        if status in ("completed", "canceled", "busy", "no-answer", "failed"):
            call["end_time"] = _rfc2822(now)
            started = call.get("_started")
            call["duration"] = str(int(now - started)) if started else "0"

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        endpoint: str = "create",
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests to ``endpoint`` ("create" or "update")
        with ``status`` in Twilio's error shape (429 -> code 20429, 500 -> 20500, ...)."""
        default_code, default_message = _DEFAULT_FAILURES.get(status, (status * 100, "Error"))
        failure = _Failure(status, code or default_code, message or default_message)
        self._fail_queue[endpoint].extend([failure] * count)

    def fail_number(
        self, to: str, status: int = 400, *, code: int = 21211, message: str | None = None
    ) -> None:
        """Make every create to ``to`` fail (default: 400 code 21211 invalid 'To')."""
        self._failing_numbers[to] = _Failure(status, code, message or f"Invalid 'To' Phone Number: {to}")

    def client(self, *, use_async: bool = False) -> Client:
        """A real ``twilio.rest.Client`` pointed at this fake (``use_async=True``: one
        built on ``AsyncTwilioHttpClient`` for the ``*_async`` methods)."""
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        http_client = AsyncTwilioHttpClient() if use_async else None
        c = Client(self.account_sid, self.auth_token, http_client=http_client)
        c.edge = c.region = None  # env TWILIO_EDGE/REGION would rewrite the host
        c.api.base_url = self.base_url
        return c

    # -- Twilio-side helpers ---------------------------------------------------------------

    def _voice_params(self, call: dict[str, Any], **extra: str) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call["sid"],
            "CallStatus": call["status"],
            "Called": call["to"],
            "Caller": call["from"],
            "Direction": call["direction"],
            "From": call["from"],
            "To": call["to"],
        }
        params.update(extra)
        return params

    async def _signed_post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        signature = twilio_signature(self.auth_token, url, params)
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=params, headers={"X-Twilio-Signature": signature}) as resp,
        ):
            return resp.status, await resp.text()

    async def fetch_twiml(self, call_sid: str, **extra: str) -> tuple[int, str]:
        """POST to the call's ``Url`` as Twilio does when the callee answers; return
        (status, body). Marks the call in-progress. ``extra`` adds form fields
        (e.g. ``AnsweredBy="human"``)."""
        self.set_call_status(call_sid, "in-progress")
        call = self.calls[call_sid]
        url = call.get("_url")
        if not url:
            raise ValueError(f"call {call_sid} was created with Twiml, not Url")
        return await self._signed_post(url, self._voice_params(call, **extra))

    async def send_status_callback(self, call_sid: str, status: str, **extra: str) -> tuple[int, str]:
        """Set the call's status and POST it to its ``StatusCallback``; return (status, body)."""
        self.set_call_status(call_sid, status)
        call = self.calls[call_sid]
        url = call.get("_status_callback")
        if not url:
            raise ValueError(f"call {call_sid} has no StatusCallback")
        call["_callback_seq"] = call.get("_callback_seq", -1) + 1
        params = self._voice_params(
            call,
            CallbackSource="call-progress-events",
            SequenceNumber=str(call["_callback_seq"]),
            Timestamp=_rfc2822(time.time()),
            **({"CallDuration": call["duration"]} if call.get("duration") else {}),
            **extra,
        )
        return await self._signed_post(url, params)

    # -- HTTP ------------------------------------------------------------------------

    def _setup_routes(self, app: web.Application) -> None:
        base = f"/{API_VERSION}/Accounts/{{account}}/Calls"
        app.router.add_post(base + ".json", self._create)
        app.router.add_post(base + "/{call}.json", self._update)

    def _resource(self, sid: str, from_: str, to: str, status: str, direction: str) -> dict[str, Any]:
        now = time.time()
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "direction": direction,
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": from_,
            "from_formatted": from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": new_sid("PN"),
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": _rfc2822(now) if status == "in-progress" else None,
            "status": status,
            "subresource_uris": {
                "notifications": uri.replace(".json", "/Notifications.json"),
                "recordings": uri.replace(".json", "/Recordings.json"),
                "events": uri.replace(".json", "/Events.json"),
            },
            "to": to,
            "to_formatted": to,
            "trunk_sid": None,
            "uri": uri,
            "_started": now if status == "in-progress" else None,
        }

    @staticmethod
    def _public(call: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in call.items() if not k.startswith("_")}

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
            headers=headers,
        )

    async def _record(self, request: web.Request, call_sid: str | None) -> TwilioRequest:
        post = await request.post()
        form: dict[str, list[str]] = {}
        for key, value in post.items():
            form.setdefault(key, []).append(str(value))
        auth: tuple[str, str] | None = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            with contextlib.suppress(ValueError):
                login, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
                auth = (login, password)
        rec = TwilioRequest(call_sid, form, auth, time.monotonic())
        self.requests.append(rec)
        return rec

    def _check(self, request: web.Request, rec: TwilioRequest, endpoint: str) -> web.Response | None:
        """The error for a request with the wrong credentials or account, or an injected failure."""
        if rec.auth != (self.account_sid, self.auth_token):
            return self._error(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            return self._error(404, 20404, f"The requested resource {request.path} was not found")
        if self._fail_queue[endpoint]:
            f = self._fail_queue[endpoint].pop(0)
            return self._error(f.status, f.code, f.message)
        return None

    def _answer(self, rec: TwilioRequest, response: web.Response) -> web.Response:
        rec.status = response.status
        if isinstance(response.text, str):
            try:
                rec.response = json.loads(response.text)
            except ValueError:
                rec.response = {}
        return response

    async def _create(self, request: web.Request) -> web.Response:
        rec = await self._record(request, None)
        problem = self._check(request, rec, "create")
        if problem is not None:
            return self._answer(rec, problem)
        to, from_ = rec.get("To"), rec.get("From")
        if not to:
            return self._answer(rec, self._error(400, 21201, "No 'To' number is specified"))
        if not from_:
            return self._answer(rec, self._error(400, 21603, "A 'From' phone number is required."))
        if not (rec.get("Url") or rec.get("Twiml") or rec.get("ApplicationSid")):
            return self._answer(
                rec, self._error(400, 21205, "Either Url, Twiml or ApplicationSid is required.")
            )
        if to in self._failing_numbers:
            f = self._failing_numbers[to]
            return self._answer(rec, self._error(f.status, f.code, f.message))
        sid = new_sid("CA")
        call = self._resource(sid, from_, to, "queued", "outbound-api")
        call["_url"] = rec.get("Url")
        call["_twiml"] = rec.get("Twiml")
        call["_status_callback"] = rec.get("StatusCallback")
        self.calls[sid] = call
        return self._answer(rec, web.json_response(self._public(call), status=201))

    async def _update(self, request: web.Request) -> web.Response:
        sid = request.match_info["call"]
        rec = await self._record(request, sid)
        problem = self._check(request, rec, "update")
        if problem is not None:
            return self._answer(rec, problem)
        if sid not in self.calls:
            return self._answer(
                rec, self._error(404, 20404, f"The requested resource {request.path} was not found")
            )
        call = self.calls[sid]
        ended = call["status"] in ("completed", "canceled", "busy", "no-answer", "failed")
        if rec.get("Status") == "completed" and not ended:
            self.set_call_status(sid, "completed")
        elif rec.get("Twiml") or rec.get("Url"):
            if ended:
                return self._answer(rec, self._error(400, 21220, "Call is not in-progress. Cannot redirect."))
            call["_twiml"] = rec.get("Twiml") or call.get("_twiml")
            call["_url"] = rec.get("Url") or call.get("_url")
            call["date_updated"] = _rfc2822(time.time())
        return self._answer(rec, web.json_response(self._public(call), status=200))
