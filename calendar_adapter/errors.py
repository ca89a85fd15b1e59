"""Typed refusals the agent can speak: each carries one sentence and the next open times.

The public functions turn them into `{"success": false, "reason", "alternatives"}`; nothing
a caller says should reach the model as a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any


class CalendarError(Exception):
    """Base of the refusals; `code` lets the pipeline tell them apart without parsing text."""

    code = "error"

    def __init__(self, reason: str, alternatives: Sequence[datetime] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.alternatives = list(alternatives)

    def answer(self) -> dict[str, Any]:
        return {
            "success": False,
            "error": self.code,
            "reason": self.reason,
            "alternatives": [when.isoformat() for when in self.alternatives],
        }


class InvalidRequest(CalendarError):
    """Input the shop cannot act on: garbage, an impossible date, a closed day, off the grid."""

    code = "invalid_request"


class SlotUnavailable(CalendarError):
    """A valid time that is taken: every bay is busy, or the shop calendar blocks it."""

    code = "slot_unavailable"


class CustomerBusy(CalendarError):
    """A time the shop has free, but the customer already has another appointment during it:
    one customer is never booked into two bays at once."""

    code = "customer_busy"


class AppointmentNotFound(CalendarError):
    code = "not_found"


class CalendarUnavailable(CalendarError):
    """The shop calendar's free/busy could not be read; nothing was changed, so the caller may
    simply retry. (Event writes never fail a booking: they are made after it, see `outbox`.)"""

    code = "calendar_unavailable"


class CalendarConfigError(ValueError):
    """The chosen backend lacks settings; an operator problem, raised rather than spoken."""
