"""The default backend: appointments live only in PostgreSQL, so there are no events to keep
in step and nothing outside the shop rules that closes the shop."""

from __future__ import annotations

from datetime import datetime


class LocalBackend:
    async def blocked(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        return []

    async def close(self) -> None:
        return None
