"""One calendar interface, two backends, chosen by `CALENDAR_BACKEND`.

PostgreSQL decides capacity on both (see `calendar_adapter.store`); a backend only keeps an
outside calendar in step with the rows and reports times that calendar closes the shop.
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

    async def create_event(self, booking: Booking) -> str | None:
        """Put the appointment on the calendar; its event id, or None if events are not kept."""
        ...

    async def move_event(self, booking: Booking) -> str | None:
        """Give the appointment's event its (new) times; the event id it has afterwards."""
        ...

    async def delete_event(self, booking: Booking) -> None:
        """Remove the appointment's event; one already gone is fine."""
        ...

    async def close(self) -> None: ...


_current: tuple[Settings, CalendarBackend] | None = None


def backend() -> CalendarBackend:
    """The backend for the current settings, rebuilt when the settings are reloaded."""
    global _current
    settings = get_settings()
    if _current is None or _current[0] is not settings:
        if settings.calendar_backend == "google":
            from calendar_adapter.backends.google import GoogleBackend

            chosen: CalendarBackend = GoogleBackend(settings)
        else:
            from calendar_adapter.backends.local import LocalBackend

            chosen = LocalBackend()
        _current = (settings, chosen)
    return _current[1]


async def close() -> None:
    global _current
    if _current is not None:
        await _current[1].close()
        _current = None
