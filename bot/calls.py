"""The calls this launcher process is holding, for the capacity limit, /health and draining.

A call counts from the moment its webhook is answered with a stream, not only once the stream
arrives: callers ringing at the same instant would otherwise all be let in before any of them
counted. A place kept for a stream that never comes is given back when the call's status
callback says it ended, or after `STREAM_WAIT_SECONDS`: Twilio opens the stream as soon as it
has the TwiML, so by then it is not coming.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

STREAM_WAIT_SECONDS = 30


class ActiveCalls:
    def __init__(self) -> None:
        self._calls: set[str] = set()
        self._expected: dict[str, float] = {}  # call SID -> until when its place is kept
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False

    def __len__(self) -> int:
        return len(self._calls)

    def expect(self, call_sid: str, limit: int) -> bool:
        """Keep a place for a call whose stream is on its way; False when all `limit` are taken."""
        now = time.monotonic()
        self._expected = {sid: until for sid, until in self._expected.items() if until > now}
        if call_sid not in self._expected and len(self._calls) + len(self._expected) >= limit:
            return False
        self._expected[call_sid] = now + STREAM_WAIT_SECONDS
        return True

    def forget(self, call_sid: str) -> None:
        """The call ended before its stream came: give its place back."""
        self._expected.pop(call_sid, None)

    @contextmanager
    def holding(self, call_sid: str) -> Iterator[None]:
        self._expected.pop(call_sid, None)
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
