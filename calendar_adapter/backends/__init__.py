"""One calendar interface, two backends, chosen by `CALENDAR_BACKEND`.

PostgreSQL decides capacity on both (see `calendar_adapter.store`); a backend reports times
its calendar closes the shop, and one that keeps an event per appointment (Google) is also an
`EventCalendar`, which `calendar_adapter.outbox` keeps in step with the rows after they commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from calendar_adapter.store import Booking
from config.settings import Settings, get_settings


class CalendarBackend(Protocol):
    async def blocked(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Periods within [start, end) when the shop takes no appointments at all."""
        ...

    async def close(self) -> None: ...


class EventCalendar(CalendarBackend, Protocol):
    async def create_event(self, booking: Booking, event_id: str) -> bool:
        """Put the appointment on the calendar as event `event_id`; False if that id is taken
        (by an earlier request that got through unanswered, or an event since deleted)."""
        ...

    async def move_event(self, booking: Booking) -> bool:
        """Give the appointment's event (`booking.calendar_event_id`) its times; False if the
        event is gone."""
        ...

    async def delete_event(self, event_id: str) -> None:
        """Remove an event; one already gone is fine."""
        ...


_current: tuple[Settings, CalendarBackend, EventCalendar | None] | None = None


def _chosen() -> tuple[Settings, CalendarBackend, EventCalendar | None]:
    """The backends for the current settings, rebuilt when the settings are reloaded."""
    global _current
    settings = get_settings()
    if _current is None or _current[0] is not settings:
        if settings.calendar_backend == "google":
            from calendar_adapter.backends.google import GoogleBackend

            google = GoogleBackend(settings)
            _current = (settings, google, google)
        else:
            from calendar_adapter.backends.local import LocalBackend

            _current = (settings, LocalBackend(), None)
    return _current


def backend() -> CalendarBackend:
    return _chosen()[1]


def event_calendar() -> EventCalendar | None:
    """The calendar that keeps events, or None when appointments live in the database only."""
    return _chosen()[2]


async def close() -> None:
    global _current
    if _current is not None:
        await _current[1].close()
        _current = None
