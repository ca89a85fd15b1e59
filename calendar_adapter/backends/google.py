"""Google Calendar backend: one event per appointment on the shop's calendar (`gcsa`).

Appointment events are created *transparent*, so they never show in free/busy; free/busy
therefore reports only what people put on the shop calendar (a staff meeting, a closure),
and such a block closes the shop for all bays. Bays themselves are counted in PostgreSQL.
Free/busy is read while a caller waits; events are written afterwards, by
`calendar_adapter.outbox`, under ids it chooses.

`gcsa` and `googleapiclient` are synchronous and httplib2 is not thread-safe, so each call
runs in a worker thread (`asyncio.to_thread`) with that thread's own HTTP connection.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar
from urllib.parse import urlsplit

import google_auth_httplib2
import httplib2
from gcsa.event import Event
from gcsa.free_busy import FreeBusyQueryError
from gcsa.google_calendar import GoogleCalendar
from google.auth.exceptions import GoogleAuthError
from google.oauth2.credentials import Credentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from calendar_adapter.errors import CalendarConfigError, CalendarUnavailable
from calendar_adapter.store import Booking
from config.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_REQUIRED = (
    "google_calendar_id",
    "google_client_id",
    "google_client_secret",
    "google_refresh_token",
)
# A caller waits on free/busy; a calendar slower than this counts as down.
_TIMEOUT_SECONDS = 5
_GONE = (404, 410)
_TAKEN = (409,)
_UNREACHABLE = "I could not reach the shop's calendar just now. Please try again in a moment."


def _endpoints(api_url: str | None) -> tuple[str | None, str]:
    """(API endpoint, token URI): another endpoint serves the OAuth refresh at its `/token`."""
    if not api_url:
        return None, GOOGLE_TOKEN_URI
    parts = urlsplit(api_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/calendar/v3"):
        path += "/calendar/v3"
    return f"{parts.scheme}://{parts.netloc}{path}/", f"{parts.scheme}://{parts.netloc}/token"


class GoogleBackend:
    def __init__(self, settings: Settings) -> None:
        missing = [name.upper() for name in _REQUIRED if not getattr(settings, name)]
        if missing:
            raise CalendarConfigError(f"CALENDAR_BACKEND=google needs {', '.join(missing)} (not set)")
        endpoint, token_uri = _endpoints(settings.google_calendar_api_url)
        self._calendar_id = str(settings.google_calendar_id)
        self._timezone, self._tz = settings.shop_timezone, settings.tz
        credentials = Credentials(
            token=None,
            refresh_token=settings.google_refresh_token,
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            token_uri=token_uri,
        )
        self._local = threading.local()
        self._connections: list[httplib2.Http] = []
        self._calendar = GoogleCalendar(self._calendar_id, credentials=credentials)
        # `build` wants one http object; each request is then given its own thread's instead.
        self._calendar.service = discovery.build(
            "calendar",
            "v3",
            http=google_auth_httplib2.AuthorizedHttp(credentials, http=self._http()),
            requestBuilder=lambda _http, *args, **kwargs: HttpRequest(
                google_auth_httplib2.AuthorizedHttp(credentials, http=self._http()), *args, **kwargs
            ),
            static_discovery=True,
            client_options={"api_endpoint": endpoint} if endpoint else None,
        )

    def _http(self) -> httplib2.Http:
        """This thread's connection (kept open between calls, never shared across threads)."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = httplib2.Http(timeout=_TIMEOUT_SECONDS)
            self._connections.append(http)
        return http

    async def _call(self, function: Callable[[], T], *, accept: tuple[int, ...] = ()) -> T | None:
        """`function`'s result; None when Google answered one of the statuses in `accept`."""
        try:
            return await asyncio.to_thread(function)
        except HttpError as exc:
            if exc.status_code in accept:
                return None
            log.warning("Google Calendar answered %s: %s", exc.status_code, exc.reason)
            raise CalendarUnavailable(_UNREACHABLE) from exc
        except (GoogleAuthError, FreeBusyQueryError, httplib2.HttpLib2Error, OSError) as exc:
            log.warning("Google Calendar unreachable: %r", exc)
            raise CalendarUnavailable(_UNREACHABLE) from exc

    async def blocked(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        free_busy = await self._call(
            partial(self._calendar.get_free_busy, time_min=start, time_max=end, timezone=self._timezone)
        )
        assert free_busy is not None
        busy = free_busy.calendars.get(self._calendar_id, [])
        return [(period.start.astimezone(UTC), period.end.astimezone(UTC)) for period in busy]

    def _event(self, booking: Booking, event_id: str) -> Event:
        appointment = booking.appointment
        vehicle = f" ({booking.vehicle})" if booking.vehicle else ""
        details = [f"Appointment {appointment.id}", f"Service: {appointment.service_type}"]
        if booking.notes:
            details.append(f"Notes: {booking.notes}")
        return Event(
            f"{appointment.service_type.capitalize()} — {booking.customer_name}{vehicle}",
            start=appointment.start_time.astimezone(self._tz),
            end=appointment.end_time.astimezone(self._tz),
            timezone=self._timezone,
            description="\n".join(details),
            transparency="transparent",
            extendedProperties={"private": {"appointment_id": str(appointment.id)}},
            event_id=event_id,
        )

    async def create_event(self, booking: Booking, event_id: str) -> bool:
        added = partial(self._calendar.add_event, self._event(booking, event_id))
        return await self._call(added, accept=_TAKEN) is not None

    async def move_event(self, booking: Booking) -> bool:
        appointment = booking.appointment
        times = {
            edge: {"dateTime": moment.astimezone(self._tz).isoformat(), "timeZone": self._timezone}
            for edge, moment in (("start", appointment.start_time), ("end", appointment.end_time))
        }
        request = self._calendar.service.events().patch(
            calendarId=self._calendar_id, eventId=booking.calendar_event_id, body=times
        )
        return await self._call(request.execute, accept=_GONE) is not None

    async def delete_event(self, event_id: str) -> None:
        await self._call(partial(self._calendar.delete_event, event_id), accept=_GONE)

    async def close(self) -> None:
        for http in self._connections:
            http.close()
        self._connections.clear()
