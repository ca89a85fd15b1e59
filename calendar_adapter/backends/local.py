"""The default backend: appointments live only in PostgreSQL, so there is nothing else to
keep in step and nothing outside the shop rules that closes the shop."""

from __future__ import annotations

from datetime import datetime

from calendar_adapter.store import Booking


class LocalBackend:
    async def blocked(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        return []

    async def create_event(self, booking: Booking) -> str | None:
        return None

    async def move_event(self, booking: Booking) -> str | None:
        return booking.calendar_event_id

    async def delete_event(self, booking: Booking) -> None:
        return None

    async def close(self) -> None:
        return None
