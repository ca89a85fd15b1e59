"""Fake Google Calendar v3 REST API (and the OAuth token endpoint) on a loopback port.

Why: the Google backend runs its real client code (gcsa over googleapiclient and httplib2,
google-auth refreshing the access token) against this server, so the tests see the exact
requests it sends and can make Google fail in the ways it does.

Pointing the app at it: set the environment from :meth:`FakeGoogleCalendar.settings`
(`CALENDAR_BACKEND=google`, the `GOOGLE_*` variables, `GOOGLE_CALENDAR_API_URL` = this
server); the backend then calls `<url>/calendar/v3/...` and refreshes at `<url>/token`.

Behaviour:

* ``POST /token`` (``grant_type=refresh_token``): checks client id, secret and refresh
  token, answers ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``; a wrong
  one gets 400 ``invalid_grant``. API calls need ``Authorization: Bearer <issued token>``,
  else 401 in Google's error shape (which makes google-auth refresh and retry).
* ``POST /calendar/v3/calendars/{id}/events`` stores the event under the id the client
  chose (base32hex, 5-1024 characters, else 400; one in use or deleted is 409 ``duplicate``)
  or a new one, status ``confirmed``, ``created``/``updated``; ``PATCH``/``DELETE`` on
  ``.../events/{eventId}`` merge into it (top-level keys, as Google's patch does for these
  fields) and delete it, the only other event calls the backend makes. An unknown id is 404 ``notFound``; a
  deleted one is 410 ``deleted``. Only the calendar named in :attr:`calendar_id` exists.
* ``POST /calendar/v3/freeBusy`` answers the stored events that are not
  ``transparency: transparent`` (or cancelled), clipped to ``timeMin``/``timeMax``,
  overlapping ones merged, in UTC; other calendars get ``errors: [notFound]``.
* :meth:`add_block` puts a busy event (a staff meeting) on the calendar;
  :meth:`fail_next` makes the next request(s) to an endpoint (``token``, ``freebusy``,
  ``insert``, ``patch``, ``delete``) answer an error status in
  Google's JSON error shape (with ``after_work``, once the request was carried out: an
  answer lost after Google did the work); :meth:`go_down` makes every request to the endpoints named
  answer one (an outage, or 429s), :meth:`stall` holds their answers (a slow Google: the
  request is carried out at once, only the answer is late, so a client that gave up still
  finds the work done), :meth:`recover` ends both; :attr:`requests` records every request,
  in order.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ._server import LoopbackServer

EVENT_WRITES = ("insert", "patch", "delete")
_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
_REASONS = {
    400: ("badRequest", "Bad Request"),
    401: ("authError", "Invalid Credentials"),
    403: ("rateLimitExceeded", "Rate Limit Exceeded"),
    404: ("notFound", "Not Found"),
    409: ("duplicate", "The requested identifier already exists."),
    410: ("deleted", "Resource has been deleted"),
    429: ("rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("backendError", "Backend Error"),
    503: ("backendError", "Service Unavailable"),
}


@dataclass
class GoogleRequest:
    """One request the fake received, with the answer it gave."""

    endpoint: str  # token, freebusy, insert, patch, delete
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, the form fields of a token request, or None
    authorization: str | None
    status: int = 0


@dataclass
class _Failure:
    status: int
    reason: str
    message: str
    after_work: bool = False


def google_error(status: int, reason: str | None = None, message: str | None = None) -> web.Response:
    default_reason, default_message = _REASONS.get(status, ("backendError", "Error"))
    reason, message = reason or default_reason, message or default_message
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }
    return web.json_response(body, status=status)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGoogleCalendar(LoopbackServer):
    def __init__(
        self,
        *,
        calendar_id: str = "service@shop.example.com",
        client_id: str = "fake-client-id.apps.googleusercontent.com",
        client_secret: str = "fake-client-secret",
        refresh_token: str = "fake-refresh-token",
    ) -> None:
        super().__init__()
        self.calendar_id = calendar_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.events: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.requests: list[GoogleRequest] = []
        self.tokens: list[str] = []
        self._failures: defaultdict[str, deque[_Failure]] = defaultdict(deque)
        self._down: dict[str, _Failure] = {}
        self._stalls: dict[str, float] = {}

    # -- what tests use -------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        """Environment variables that point the app's Google backend here."""
        return {
            "CALENDAR_BACKEND": "google",
            "GOOGLE_CALENDAR_ID": self.calendar_id,
            "GOOGLE_CLIENT_ID": self.client_id,
            "GOOGLE_CLIENT_SECRET": self.client_secret,
            "GOOGLE_REFRESH_TOKEN": self.refresh_token,
            "GOOGLE_CALENDAR_API_URL": self.base_url,
        }

    def add_block(self, start: datetime, end: datetime, summary: str = "Staff meeting") -> str:
        """A busy (opaque) event someone put on the shop calendar; returns its id."""
        event = self._store(
            {
                "summary": summary,
                "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": end.isoformat()},
            }
        )
        return event["id"]

    def fail_next(
        self,
        endpoint: str,
        status: int = 500,
        *,
        count: int = 1,
        reason: str | None = None,
        message: str | None = None,
        after_work: bool = False,
    ) -> None:
        """Answer the next `count` requests to `endpoint` with `status` (Google's error JSON);
        `after_work`: carry each out first, as when the answer is lost on its way back."""
        default_reason, default_message = _REASONS.get(status, ("backendError", "Error"))
        failure = _Failure(status, reason or default_reason, message or default_message, after_work)
        self._failures[endpoint].extend([failure] * count)

    def go_down(self, status: int = 500, endpoints: tuple[str, ...] = EVENT_WRITES) -> None:
        """Answer every request to `endpoints` with `status` until :meth:`recover`."""
        default_reason, default_message = _REASONS.get(status, ("backendError", "Error"))
        for endpoint in endpoints:
            self._down[endpoint] = _Failure(status, default_reason, default_message)

    def stall(self, seconds: float, endpoints: tuple[str, ...] = EVENT_WRITES) -> None:
        """Hold each answer to `endpoints` for `seconds` (after doing the work) until :meth:`recover`."""
        for endpoint in endpoints:
            self._stalls[endpoint] = seconds

    def recover(self) -> None:
        self._down.clear()
        self._stalls.clear()

    def requests_to(self, endpoint: str) -> list[GoogleRequest]:
        return [request for request in self.requests if request.endpoint == endpoint]

    # -- the server -----------------------------------------------------------------

    def _setup_routes(self, app: web.Application) -> None:
        events = "/calendar/v3/calendars/{calendar_id}/events"
        app.router.add_post("/token", self._handle("token", self._token))
        app.router.add_post("/calendar/v3/freeBusy", self._handle("freebusy", self._free_busy))
        app.router.add_post(events, self._handle("insert", self._insert))
        one = events + "/{event_id}"
        app.router.add_patch(one, self._handle("patch", self._patch))
        app.router.add_delete(one, self._handle("delete", self._delete))

    def _handle(self, endpoint: str, handler: Any) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            if endpoint == "token":
                body: Any = dict(await request.post())
            else:
                raw = await request.read()
                body = json.loads(raw) if raw else None
            record = GoogleRequest(
                endpoint,
                request.method,
                request.path,
                dict(request.query),
                body,
                request.headers.get("Authorization"),
            )
            self.requests.append(record)
            failures = self._failures[endpoint]
            failure = failures.popleft() if failures else self._down.get(endpoint)
            if failure is not None and not failure.after_work:
                response = google_error(failure.status, failure.reason, failure.message)
            else:
                response = self._refuse(endpoint, request) or await handler(request, body)
                if failure is not None and response.status < 300:
                    response = google_error(failure.status, failure.reason, failure.message)
            record.status = response.status
            if endpoint in self._stalls:
                await asyncio.sleep(self._stalls[endpoint])
            return response

        return handle

    def _refuse(self, endpoint: str, request: web.Request) -> web.Response | None:
        if endpoint == "token":
            return None
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header.removeprefix("Bearer ") not in self.tokens:
            return google_error(401)
        calendar_id = request.match_info.get("calendar_id")
        if calendar_id is not None and calendar_id != self.calendar_id:
            return google_error(404)
        return None

    async def _token(self, request: web.Request, form: dict[str, str]) -> web.Response:
        expected = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if any(form.get(key) != value for key, value in expected.items()):
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Bad Request"}, status=400
            )
        token = f"ya29.fake-{secrets.token_hex(8)}"
        self.tokens.append(token)
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def _free_busy(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        low, high = _instant(body["timeMin"]), _instant(body["timeMax"])
        calendars: dict[str, Any] = {}
        for item in body.get("items", []):
            if item["id"] != self.calendar_id:
                calendars[item["id"]] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            periods = sorted(
                (max(_instant(e["start"]["dateTime"]), low), min(_instant(e["end"]["dateTime"]), high))
                for e in self.events.values()
                if e.get("transparency") != "transparent" and e.get("status") != "cancelled"
            )
            merged: list[list[datetime]] = []
            for start, end in periods:
                if start >= end:
                    continue
                if merged and start <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            calendars[item["id"]] = {
                "busy": [{"start": _rfc3339(start), "end": _rfc3339(end)} for start, end in merged]
            }
        return web.json_response(
            {
                "kind": "calendar#freeBusy",
                "timeMin": _rfc3339(low),
                "timeMax": _rfc3339(high),
                "calendars": calendars,
            }
        )

    def _store(self, event: dict[str, Any]) -> dict[str, Any]:
        now = _rfc3339(datetime.now(UTC))
        # Event ids are base32hex; hex digits are a subset.
        event_id = event.get("id") or secrets.token_hex(13)
        event = {
            "kind": "calendar#event",
            "etag": f'"{secrets.token_hex(8)}"',
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": now,
            "updated": now,
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "organizer": {"email": self.calendar_id, "self": True},
            **event,
            "id": event_id,
        }
        self.events[event_id] = event
        return event

    def _existing(self, request: web.Request) -> dict[str, Any] | web.Response:
        event_id = request.match_info["event_id"]
        if event_id in self.deleted:
            return google_error(410)
        if event_id not in self.events:
            return google_error(404)
        return self.events[event_id]

    async def _insert(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        if body.get("id") is not None and not _EVENT_ID.fullmatch(str(body["id"])):
            return google_error(400, "invalid", "Invalid resource id value.")
        if body.get("id") in self.events or body.get("id") in self.deleted:
            return google_error(409)
        return web.json_response(self._store(body))

    async def _patch(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        event = self._existing(request)
        if isinstance(event, web.Response):
            return event
        return web.json_response(self._store({**event, **body, "sequence": event["sequence"] + 1}))

    async def _delete(self, request: web.Request, body: None) -> web.Response:
        event = self._existing(request)
        if isinstance(event, web.Response):
            return event
        del self.events[event["id"]]
        self.deleted.add(event["id"])
        return web.Response(status=204)
