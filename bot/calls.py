"""The calls this launcher process is holding, for the capacity limit, /health and draining.

A call counts from the moment its webhook is answered with a stream, not only once the stream
arrives: callers ringing at the same instant would otherwise all be let in before any of them
counted. A place kept for a stream that never comes is given back when the call's status
callback says it ended, or after `STREAM_WAIT_SECONDS`: Twilio opens the stream as soon as it
has the TwiML, so by then it is not coming. With several launcher processes, the stream may
go to another one: a place is also given back (when a new call finds every place taken, and
while draining) once the database says the call's stream was taken `STREAM_TAKEN_SECONDS` ago
(longer than this process takes from its own claim to holding the call), or the call ended.

Draining (on SIGTERM, see bot/app.py) keeps no place for a new call, so its webhook answers
busy; a call already answered keeps going, and its stream is still let in, since the caller
was told to wait for it. When the drain time is up, the calls left are asked to wrap up: the
agent says so and hands the caller on (pipeline/call.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from crm.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

STREAM_WAIT_SECONDS = 30
STREAM_TAKEN_SECONDS = 2.0
RECHECK_SECONDS = 0.5  # how often a drain asks the database about the streams it waits for
# Of the given call SIDs, those whose stream was taken more than the given seconds ago, or ended.
GoneElsewhere = Callable[[list[str], float], Awaitable[set[str]]]
# How long calls asked to wrap up get: the agent finishes its sentence, says the wrap-up line,
# and the call is handed on through Twilio.
WRAP_UP_SECONDS = 30


class ActiveCalls:
    def __init__(self, gone_elsewhere: GoneElsewhere | None = None) -> None:
        self._gone_elsewhere = gone_elsewhere
        self._calls: dict[str, asyncio.Event] = {}  # call SID -> set when it must wrap up
        self._expected: dict[str, float] = {}  # call SID -> until when its place is kept
        self._changed = asyncio.Event()  # a call ended, a kept place was given back, a hurry
        self._wrapping_up = False
        self._hurried = False
        self.draining = False

    def __len__(self) -> int:
        return len(self._calls)

    async def expect(self, call_sid: str, limit: int) -> bool:
        """Keep a place for a call whose stream is on its way; False when draining or all `limit`
        are taken."""
        if self.draining:
            return False
        self._give_back_expired()
        if call_sid not in self._expected and self._full(limit):
            # Only when full is the database asked whether kept places' streams went elsewhere.
            await self._give_back_gone_elsewhere()
            if self.draining or self._full(limit):  # a drain may have begun meanwhile
                return False
        self._expected[call_sid] = time.monotonic() + STREAM_WAIT_SECONDS
        return True

    def _full(self, limit: int) -> bool:
        return len(self._calls) + len(self._expected) >= limit

    def expecting(self, call_sid: str) -> bool:
        """Whether a place is kept for this call (its webhook was answered here with a stream)."""
        return self._expected.get(call_sid, 0.0) > time.monotonic()

    def forget(self, call_sid: str) -> None:
        """The call ended before its stream came: give its place back."""
        self._expected.pop(call_sid, None)
        self._changed.set()

    @contextmanager
    def holding(self, call_sid: str) -> Iterator[asyncio.Event]:
        """Count the call while it runs; the event it is given is set when it must wrap up."""
        self._expected.pop(call_sid, None)
        wrap_up = asyncio.Event()
        if self._wrapping_up:
            wrap_up.set()
        self._calls[call_sid] = wrap_up
        try:
            yield wrap_up
        finally:
            self._calls.pop(call_sid, None)
            self._changed.set()

    async def drain(self, seconds: float) -> bool:
        """Take no new calls and let the live ones go on for up to `seconds`; then ask those left
        to wrap up and wait `WRAP_UP_SECONDS` for them. False if some were still going."""
        self.draining = True
        if await self.until_idle(seconds):
            return True
        log.warning("asking %d call(s) to wrap up", len(self._calls))
        self._wrapping_up = True
        for wrap_up in self._calls.values():
            wrap_up.set()
        return await self.until_idle(WRAP_UP_SECONDS)

    def hurry(self) -> None:
        """Cut the current wait short (an operator's signal while draining)."""
        self._hurried = True
        self._changed.set()

    async def until_idle(self, seconds: float, *, streams: bool = True) -> bool:
        """Wait up to `seconds` until no call is up and, with `streams`, no stream is on its way
        (once the server has stopped listening, none can come); False if that did not happen, or
        the wait was hurried."""
        deadline = time.monotonic() + seconds
        while True:
            self._give_back_expired()
            if streams:
                await self._give_back_gone_elsewhere()
            if not self._calls and not (streams and self._expected):
                return True
            now = time.monotonic()
            if self._hurried:
                self._hurried = False  # it cuts one wait short, not the next
                return False
            if now >= deadline:
                return False
            self._changed.clear()
            wake = [deadline, *self._expected.values()]
            if streams and self._expected and self._gone_elsewhere is not None:
                wake.append(now + RECHECK_SECONDS)
            with contextlib.suppress(TimeoutError):  # a deadline, an expiry, a recheck: look again
                await asyncio.wait_for(self._changed.wait(), min(wake) - now)

    async def _give_back_gone_elsewhere(self) -> None:
        if not self._expected or self._gone_elsewhere is None:
            return
        try:
            gone = await self._gone_elsewhere(list(self._expected), STREAM_TAKEN_SECONDS)
        except DatabaseUnavailable:
            return  # the places are given back when they expire
        for call_sid in gone:
            self._expected.pop(call_sid, None)

    def _give_back_expired(self) -> None:
        now = time.monotonic()
        self._expected = {sid: until for sid, until in self._expected.items() if until > now}
