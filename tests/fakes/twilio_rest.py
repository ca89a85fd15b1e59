"""Fake Twilio REST API: the Calls resource (create, update, list) and sending texts.

Why: the app places reminder calls (``POST .../Calls.json``), hangs up
(``POST .../Calls/{CallSid}.json`` with ``Status=completed``), transfers
(the same with ``Twiml``) and, when a create's answer went astray, looks for the
call in the list (``GET .../Calls.json?To=...&From=...``), all through
``telephony/rest.py``; tests run that real client code against this server, check
what it sent, and inject failures over the wire for the retry paths.

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
ones) are added with :meth:`register_call`. ``GET Calls.json`` lists calls newest
first, filtered by ``To`` and ``From``, paged by ``PageSize``/``Page`` (Twilio's
default page of 50); any other query parameter (``StartTime>`` and the like) is
answered 400, so a client cannot come to rely on a filter this fake ignores.
Twilio's Call resource holds no ``Url``, and neither does the list.

Failures without effect are injected with :meth:`fail_next` (next N requests to
an endpoint: "create", "update", "list" or "message") and :meth:`fail_number` (every create
to a given ``To``); :meth:`create_then` creates the call and then answers an
error, never answers (until the fake stops) or drops the connection, the case
in which Twilio acted and the client cannot tell. :attr:`clock_offset` puts
Twilio's clock (the dates it writes) ahead of or behind the test's. Validation
codes for missing ``To`` (21201), ``From`` (21603) and ``Url``/``Twiml`` (21205)
follow Twilio's error catalogue as far as known; they are not checked against the
live API.

Texts: ``POST Messages.json`` (``To``, ``From``, ``Body``) answers 201 with a message
resource (sid ``SM`` + 32 hex, status ``queued``); :attr:`messages` and :meth:`texts_to`
show what was sent, and :meth:`text_in` posts a customer's text to the launcher's
messaging webhook, signed, as Twilio does when one arrives.

Optional helpers drive the app the way Twilio would after a create:
:meth:`fetch_twiml` requests the call's ``Url`` and :meth:`send_status_callback`
posts to its ``StatusCallback``, both signed with ``X-Twilio-Signature``.
:meth:`callee` does either by itself for every call created to a number, as the
phone there would: answer (its ``Url``'s answer kept in :attr:`answers`), be busy,
not answer (Twilio's ``no-answer``), fail, or keep ringing until hung up.
:attr:`conference_redirects` lists the live calls redirected into a ``<Conference>``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from ._server import LoopbackServer
from .twilio_caller import new_sid, twilio_signature

if TYPE_CHECKING:
    from twilio.rest import Client

API_VERSION = "2010-04-01"
LIST_FILTERS = frozenset({"To", "From", "PageSize", "Page"})  # what the list implements
DEFAULT_PAGE_SIZE = 50  # Twilio's
Endpoint = Literal["create", "update", "list", "message"]
Callee = Literal["answer", "busy", "no-answer", "failed", "ring"]


def _rfc2822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC)).replace("-0000", "+0000")


@dataclass
class TwilioRequest:
    """One request the fake received (after routing), with the answer it gave (status 0: none)."""

    endpoint: Endpoint
    call_sid: str | None  # an update's
    form: dict[str, list[str]]  # the form fields, or a list's query parameters
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
    how: Literal["error", "stall", "drop"] = "error"
    to: str | None = None  # only creates to this number (create_then)


_DEFAULT_FAILURES: dict[int, tuple[int, str]] = {
    400: (21211, "Invalid 'To' Phone Number"),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service Unavailable"),
}


def _failure(status: int, code: int | None = None, message: str | None = None, **more: Any) -> _Failure:
    """An error in Twilio's shape, its code and message by default the catalogue's for `status`."""
    default_code, default_message = _DEFAULT_FAILURES.get(status, (status * 100, "Error"))
    return _Failure(status, code or default_code, message or default_message, **more)


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
        self.calls: dict[str, dict[str, Any]] = {}  # sid -> call resource JSON, oldest first
        self.requests: list[TwilioRequest] = []
        self.clock_offset = 0.0  # seconds Twilio's clock is ahead of the test's (negative: behind)
        self._fail_queue: dict[Endpoint, list[_Failure]] = {"create": [], "update": [], "list": [],
                                                            "message": []}
        self._failing_numbers: dict[str, _Failure] = {}
        self._after_create: list[_Failure] = []
        self._callees: dict[str, tuple[Callee, float]] = {}
        self.answers: dict[str, tuple[int, str]] = {}  # sid -> its Url's (status, body), by callee()
        self._released = asyncio.Event()  # set when the fake stops: stalled requests end then

    # -- views -------------------------------------------------------------------

    @property
    def creates(self) -> list[TwilioRequest]:
        """Every ``POST Calls.json`` (including failed ones), in order."""
        return [r for r in self.requests if r.endpoint == "create"]

    @property
    def created_calls(self) -> list[TwilioRequest]:
        """Successful creates (status 201)."""
        return [r for r in self.creates if r.status == 201]

    @property
    def messages(self) -> list[TwilioRequest]:
        """Texts sent (``POST Messages.json`` answered 201), in order: ``get("To")``, ``get("Body")``."""
        return [r for r in self.requests if r.endpoint == "message" and r.status == 201]

    def texts_to(self, to: str) -> list[str]:
        """The bodies of the texts sent to ``to``, in order."""
        return [str(r.get("Body")) for r in self.messages if r.get("To") == to]

    @property
    def updates(self) -> list[TwilioRequest]:
        """Every ``POST Calls/{sid}.json``, in order."""
        return [r for r in self.requests if r.endpoint == "update"]

    @property
    def lists(self) -> list[TwilioRequest]:
        """Every ``GET Calls.json``, in order."""
        return [r for r in self.requests if r.endpoint == "list"]

    def calls_to(self, to: str) -> list[str]:
        """Sids of the calls to ``to``, oldest first, however their create was answered: what
        rang that phone."""
        return [sid for sid, call in self.calls.items() if call["to"] == to]

    @property
    def conference_redirects(self) -> list[tuple[str, str]]:
        """(sid, conference name) of every accepted redirect into a ``<Conference>``, in order."""
        found = []
        for r in self.updates:
            twiml = r.get("Twiml") or ""
            if r.status == 200 and "<Conference" in twiml and r.call_sid:
                found.append((r.call_sid, ET.fromstring(twiml).findtext("Dial/Conference") or ""))
        return found

    async def wait_for_call_to(
        self,
        to: str,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> str:
        """The sid of the first call created to ``to``, once there is one."""
        await self.wait_until(lambda: bool(self.calls_to(to)), timeout)
        return self.calls_to(to)[0]

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
        now = self._now()
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
        endpoint: Endpoint = "create",
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests to ``endpoint`` with ``status`` in Twilio's error
        shape (429 -> code 20429, 500 -> 20500, ...), doing nothing else: no call is created."""
        self._fail_queue[endpoint].extend([_failure(status, code, message)] * count)

    def create_then(
        self,
        how: Literal["error", "stall", "drop"] = "error",
        count: int = 1,
        *,
        to: str | None = None,
        status: int = 500,
    ) -> None:
        """Let the next ``count`` creates (to ``to`` only, when given) create their call, and
        then answer ``status`` in Twilio's error shape ("error"), answer nothing until the fake
        stops ("stall": past any client timeout) or close the connection unanswered ("drop")."""
        self._after_create.extend([_failure(status, how=how, to=to)] * count)

    def callee(self, to: str, behaviour: Callee, *, after: float = 0.3) -> None:
        """Have every call created to ``to`` answered ``after`` seconds later ("answer": its
        ``Url`` is requested, signed, the answer kept in :attr:`answers`), end busy, unanswered
        or failed then (its ``StatusCallback`` posted), or ring until hung up ("ring")."""
        self._callees[to] = (behaviour, after)

    async def _pick_up(self, sid: str, behaviour: Callee, after: float) -> None:
        await asyncio.sleep(after)
        if self.calls[sid]["status"] != "queued":
            return  # hung up meanwhile
        if behaviour == "answer":
            self.answers[sid] = await self.fetch_twiml(sid)
        else:
            await self.send_status_callback(sid, behaviour)

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

    async def text_in(self, url: str, *, from_: str, to: str, body: str) -> tuple[int, str]:
        """POST an incoming text to the number's messaging webhook ``url``, signed, as Twilio
        does; return (status, body)."""
        sid = new_sid("SM")
        return await self._signed_post(url, {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "MessageSid": sid,
            "SmsMessageSid": sid, "SmsSid": sid, "SmsStatus": "received", "From": from_, "To": to,
            "Body": body, "NumMedia": "0", "NumSegments": "1",
        })

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
            Timestamp=_rfc2822(self._now()),
            **({"CallDuration": call["duration"]} if call.get("duration") else {}),
            **extra,
        )
        return await self._signed_post(url, params)

    # -- HTTP ------------------------------------------------------------------------

    async def stop(self) -> None:
        self._released.set()
        await super().stop()

    def _now(self) -> float:
        return time.time() + self.clock_offset

    def _setup_routes(self, app: web.Application) -> None:
        base = f"/{API_VERSION}/Accounts/{{account}}/Calls"
        app.router.add_post(base + ".json", self._create)
        app.router.add_get(base + ".json", self._list)
        app.router.add_post(base + "/{call}.json", self._update)
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._message)

    def _resource(self, sid: str, from_: str, to: str, status: str, direction: str) -> dict[str, Any]:
        now = self._now()
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

    async def _record(
        self, request: web.Request, endpoint: Endpoint, call_sid: str | None = None
    ) -> TwilioRequest:
        fields = request.query if endpoint == "list" else await request.post()
        form: dict[str, list[str]] = {}
        for key, value in fields.items():
            form.setdefault(key, []).append(str(value))
        auth: tuple[str, str] | None = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            with contextlib.suppress(ValueError):
                login, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
                auth = (login, password)
        rec = TwilioRequest(endpoint, call_sid, form, auth, time.monotonic())
        self.requests.append(rec)
        return rec

    def _check(self, request: web.Request, rec: TwilioRequest) -> web.Response | None:
        """The error for a request with the wrong credentials or account, or an injected failure."""
        if rec.auth != (self.account_sid, self.auth_token):
            return self._error(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            return self._error(404, 20404, f"The requested resource {request.path} was not found")
        if self._fail_queue[rec.endpoint]:
            f = self._fail_queue[rec.endpoint].pop(0)
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
        rec = await self._record(request, "create")
        problem = self._check(request, rec)
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
        behaviour, after = self._callees.get(to, ("ring", 0.0))
        if behaviour != "ring":
            self._spawn(self._pick_up(sid, behaviour, after))
        created = web.json_response(self._public(call), status=201)
        fault = next((f for f in self._after_create if f.to in (None, to)), None)
        if fault is None:
            return self._answer(rec, created)
        self._after_create.remove(fault)
        if fault.how == "stall":
            await self._released.wait()
            return created  # to a client long gone, so not recorded as answered
        if fault.how == "drop":
            assert request.transport is not None
            request.transport.close()
            return created  # never written: the connection is closed
        return self._answer(rec, self._error(fault.status, fault.code, fault.message))

    async def _message(self, request: web.Request) -> web.Response:
        rec = await self._record(request, "message")
        problem = self._check(request, rec)
        if problem is not None:
            return self._answer(rec, problem)
        to, from_, body = rec.get("To"), rec.get("From"), rec.get("Body")
        if not to:
            return self._answer(rec, self._error(400, 21604, "A 'To' phone number is required."))
        if not from_:
            return self._answer(rec, self._error(400, 21603, "A 'From' phone number is required."))
        if not body:
            return self._answer(rec, self._error(400, 21602, "Message body is required."))
        now = _rfc2822(self._now())
        sid = new_sid("SM")
        return self._answer(rec, web.json_response({
            "account_sid": self.account_sid, "api_version": API_VERSION, "body": body,
            "date_created": now, "date_updated": now, "date_sent": None, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": from_, "messaging_service_sid": None,
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid,
            "status": "queued", "to": to,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }, status=201))

    async def _list(self, request: web.Request) -> web.Response:
        rec = await self._record(request, "list")
        problem = self._check(request, rec)
        if problem is not None:
            return self._answer(rec, problem)
        unknown = sorted(set(rec.form) - LIST_FILTERS)
        if unknown:
            return self._answer(rec, self._error(400, 20001, f"fake: filter {unknown[0]} is not implemented"))
        try:
            size, page = int(rec.get("PageSize") or DEFAULT_PAGE_SIZE), int(rec.get("Page") or 0)
        except ValueError:
            return self._answer(rec, self._error(400, 20001, "PageSize and Page must be numbers"))
        to, from_ = rec.get("To"), rec.get("From")
        matching = [self._public(call) for call in reversed(self.calls.values())
                    if to in (None, call["to"]) and from_ in (None, call["from"])]
        start = page * size
        calls = matching[start:start + size]
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls.json"
        filters = {key: value for key, value in (("To", to), ("From", from_)) if value}

        def page_uri(number: int) -> str:
            return f"{uri}?{urlencode({**filters, 'PageSize': size, 'Page': number})}"

        return self._answer(rec, web.json_response({
            "calls": calls,
            "start": start,
            "end": start + len(calls) - 1,
            "page": page,
            "page_size": size,
            "uri": page_uri(page),
            "first_page_uri": page_uri(0),
            "previous_page_uri": page_uri(page - 1) if page else None,
            "next_page_uri": page_uri(page + 1) if start + size < len(matching) else None,
        }))

    async def _update(self, request: web.Request) -> web.Response:
        sid = request.match_info["call"]
        rec = await self._record(request, "update", sid)
        problem = self._check(request, rec)
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
            call["date_updated"] = _rfc2822(self._now())
        return self._answer(rec, web.json_response(self._public(call), status=200))
