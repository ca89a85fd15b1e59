"""The calls this launcher process is holding, for /health and for draining on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class ActiveCalls:
    def __init__(self) -> None:
        self._calls: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False

    def __len__(self) -> int:
        return len(self._calls)

    @contextmanager
    def holding(self, call_sid: str) -> Iterator[None]:
        self._calls.add(call_sid)
        self._idle.clear()
        try:
            yield
        finally:
            self._calls.discard(call_sid)
            if not self._calls:
                self._idle.set()

    async def drain(self, seconds: float) -> bool:
        """Refuse new calls and wait for the live ones; False if some were still going."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True
