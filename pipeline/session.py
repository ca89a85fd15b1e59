"""One call as it runs: what the tools and the launcher share, and its record in the call log.

Writes to the call log go through one background queue per call, in order, so a slow or
briefly unreachable database never holds up audio, and every turn is stored as it happens.
Each write is a journal entry (`crm/journal.py`): while the database is down it waits there,
in order, and is written once the database is back, so nothing said is lost.
The log is closed last: after the tools' actions still running when the call ended (a caller
may hang up while their booking commits), so what those record is never queued behind the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

import crm
from crm import journal
from crm.customers import CustomerRecord
from crm.identity import CallerAccess
from pipeline import metrics
from pipeline.opening import CallStart
from processors.card_redactor import redact_card_numbers

T = TypeVar("T")

log = logging.getLogger(__name__)


class Ending(Enum):
    """How a call ends, and the call log's outcome for it when nothing else was achieved
    (a booking, say, recorded as it happens, is kept instead)."""

    CALLER_LEFT = "caller_hung_up"
    AGENT_HUNG_UP = "completed"  # the conversation was finished (end_call)
    NO_INPUT = "no_input"  # the caller stayed silent through the re-prompts
    TRANSFERRED = "transferred"
    FAILED = "error"

    @property
    def outcome(self) -> str:
        return self.value


@dataclass
class CallSession:
    """Mutable facts of a live call the tools and the launcher share."""

    start: CallStart
    access: CallerAccess  # which records the call may see and change
    record: CustomerRecord | None  # the customer's own record (None: unknown, withheld)
    ending: Ending = Ending.CALLER_LEFT
    conference: str | None = None  # a warm transfer's, where the caller joins the advisor at the end
    _outcome: str | None = field(default=None, repr=False)  # the last business result recorded
    _writes: asyncio.Queue[journal.Entry | None] = field(default_factory=asyncio.Queue, repr=False)
    _writer: asyncio.Task[None] | None = field(default=None, repr=False)
    _in_flight: set[asyncio.Future[Any]] = field(default_factory=set, repr=False)

    @property
    def call_sid(self) -> str:
        return self.start.call_sid

    @property
    def customer_id(self) -> int | None:
        return self.record.customer.id if self.record else None

    def begin(self) -> None:
        self._writer = asyncio.create_task(self._write_in_order(), name=f"call-log-{self.call_sid}")

    def _write(self, op: str, **args: Any) -> None:
        self._writes.put_nowait(journal.entry(op, self.call_sid, **args))

    async def turn(self, role: crm.call_logs.Role, text: str) -> None:
        # A turn joins transcriptions: a card number split over two is whole only here.
        self._write("append_turn", role=role, text=redact_card_numbers(text), at=journal.now())

    async def figures(self, figures: dict[str, Any]) -> None:
        self._write("append_metrics", figures=figures)
        metrics.turn(figures)

    def identified(self, customer_id: int) -> None:
        """The call's own customer is known (found by caller ID, or just created)."""
        self._write("identify_caller", customer_id=customer_id)

    def proof(self, customer_id: int | None) -> None:
        """The caller proved they belong to `customer_id`'s record, or (None) failed to."""
        self._write("record_proof", customer_id=customer_id)

    def outcome(self, outcome: str) -> None:
        """A business result (booked, rescheduled, cancelled, confirmed, transferred)."""
        self._write("record_outcome", outcome=outcome)
        self._outcome = outcome

    def message(self, name: str, phone: str, reason: str) -> None:
        """A message for a service advisor to call back (`phone` in E.164), stored like the log.
        It names the caller's record only when the call may act on it (a caller ID the network
        vouched for, or a proof): an advisor calling back a number left by someone using another
        customer's caller ID must not take them for that customer."""
        record = self.record.customer if self.record else None
        customer_id = record.id if record and self.access.may_change(record.phone) else None
        self._write("record_callback_request", customer_id=customer_id, name=name, phone=phone,
                    reason=reason, at=journal.now())

    def flag(self, name: str, detail: str) -> None:
        """Something a processor noticed for a person to look at (a caller who sounded upset, say)."""
        self._write("record_flag", name=name, detail=redact_card_numbers(detail), at=journal.now())

    def shielded(self, action: Awaitable[T]) -> Awaitable[T]:
        """`action`, run to its end even if whoever awaits it is cancelled (a barge-in, the
        caller hanging up); the call log stays open until it has ended. A failure after its
        awaiter was cancelled is logged here, as nobody else is left to see it."""
        running = asyncio.ensure_future(action)
        self._in_flight.add(running)
        running.add_done_callback(self._in_flight.discard)
        awaited = asyncio.shield(running)

        def _unheard(done: asyncio.Future[Any]) -> None:
            # The one awaiting it was cancelled, so no one else hears how it failed.
            if awaited.cancelled() and not done.cancelled() and (exc := done.exception()):
                log.error("call %s: an action that outlived a barge-in or hang-up failed",
                          self.call_sid, exc_info=exc)

        running.add_done_callback(_unheard)
        return awaited

    async def finish(self) -> None:
        """Wait for the actions still running, flush pending writes, then close the log by how
        the call ended. Goes on to the end if the call's task is cancelled meanwhile (a server
        shutting down), which then waits for it: the log is never left open with writes queued."""
        closing = asyncio.ensure_future(self._close())
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            await closing
            raise

    async def _close(self) -> None:
        while self._in_flight:
            await asyncio.wait(set(self._in_flight))
        self._write("close_call_log", outcome=self.ending.outcome)
        # What the log keeps: a result recorded during the call wins over how it ended.
        metrics.call_ended(self._outcome or self.ending.outcome)
        self._writes.put_nowait(None)
        if self._writer is not None:
            await self._writer

    async def _write_in_order(self) -> None:
        # To the database, or (down, or this call's earlier writes still waiting) the journal.
        while (write := await self._writes.get()) is not None:
            await journal.write(write)
