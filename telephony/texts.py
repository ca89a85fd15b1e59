"""Texts to customers about their appointments (after the agent booked, moved or cancelled one,
and when a reminder call reached voicemail), and the replies that stop or restart them.

A text never holds up or fails a call: it is sent in the background once the tool has
answered, and a failure is one log line with the number masked. It goes only where a reminder
call may go (REMINDER_ALLOWLIST), never to a customer who texted STOP, and not at all with
SMS_CONFIRMATIONS off or without a Twilio account and number to send from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, cast

from twilio.base.exceptions import TwilioRestException

from calendar_adapter.speech import say_time
from config import lines
from config.phones import allowlisted, masked
from config.settings import Settings
from crm import text_consent
from telephony.rest import TwilioRest

log = logging.getLogger(__name__)

Kind = Literal["booked", "rescheduled", "cancelled", "reminder"]
_WORDING: dict[Kind, str] = {"booked": lines.TEXT_BOOKED, "rescheduled": lines.TEXT_RESCHEDULED,
                            "cancelled": lines.TEXT_CANCELLED, "reminder": lines.TEXT_REMINDER}
# The tools' outcomes a text follows (a confirmation was the customer's own word on the call).
_CHANGES = frozenset({"booked", "rescheduled", "cancelled"})

# Twilio's own keywords, which it acts on for its number too: a text of one of these words
# alone (any case) opts the sender out of texts, or back in.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})

SEND_SECONDS = 10.0  # no answer from Twilio by then: given up, logged


def opts_out(body: str) -> bool | None:
    """What a customer's text says of their consent: True opts out, False opts back in, None
    neither (any other text)."""
    word = body.strip().upper()
    if word in OPT_OUT_WORDS:
        return True
    return False if word in OPT_IN_WORDS else None


def written_when(moment: datetime) -> str:
    """"Tue Dec 8 at 9:30 AM": the day and time as a text writes them."""
    return f"{moment:%a %b} {moment.day} at {say_time(moment)}"


def wording(settings: Settings, kind: Kind, service: str, start: datetime) -> str:
    """The text about an appointment of `service` at `start`, in shop time."""
    text = _WORDING[kind].format(shop=settings.shop_name, service=service,
                                 when=written_when(start.astimezone(settings.tz)))
    if settings.shop_address:
        text += lines.TEXT_ADDRESS.format(address=settings.shop_address.strip().rstrip("."))
    return text + lines.TEXT_END


class Texts:
    """The launcher's texts, each sent in its own task through Twilio's Messages API."""

    def __init__(self, twilio: TwilioRest | None) -> None:
        self._twilio = twilio
        self._sending: set[asyncio.Task[None]] = set()  # held, so no task is collected mid-send

    def about(self, settings: Settings, kind: Kind, customer_id: int, service: str,
              start: datetime) -> None:
        """Text the customer about their appointment, in the background."""
        if self._twilio is None or not settings.texts_enabled:
            return
        task = asyncio.create_task(self._send(self._twilio, settings, kind, customer_id, service, start),
                                   name=f"text-{kind}")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def close(self, seconds: float = SEND_SECONDS) -> None:
        """Give the texts still on their way up to `seconds` (the launcher is stopping)."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=seconds)

    async def _send(self, twilio: TwilioRest, settings: Settings, kind: Kind, customer_id: int,
                    service: str, start: datetime) -> None:
        number: str | None = None
        try:
            number = await text_consent.texting_number(customer_id)
            if number is None:
                log.info("no %s text for customer %s: opted out of texts", kind, customer_id)
                return
            if not allowlisted(number, settings.reminder_allowlist):
                log.info("no %s text to %s: not on REMINDER_ALLOWLIST", kind, masked(number))
                return
            async with asyncio.timeout(SEND_SECONDS):
                sid = await twilio.send_text(to=number, from_=str(settings.twilio_phone_number),
                                             body=wording(settings, kind, service, start))
            log.info("%s text to %s sent (%s)", kind, masked(number), sid)
        except Exception as exc:  # a courtesy: whatever it was about stands without it
            log.warning("%s text to %s not sent: %s", kind,
                        masked(number) if number else f"customer {customer_id}", _why(exc))


def _why(exc: Exception) -> str:
    if isinstance(exc, TwilioRestException):
        return f"Twilio answered {exc.status} (code {exc.code})"
    if isinstance(exc, TimeoutError):
        return f"no answer from Twilio in {SEND_SECONDS:g} s"
    return type(exc).__name__


class CallTexts:
    """One call's texts: each change texted once, however often the model asks for it (a retried
    booking answers the first one again)."""

    def __init__(self, texts: Texts, settings: Settings) -> None:
        self._texts = texts
        self._settings = settings
        self._sent: set[tuple[str, int, str]] = set()

    def changed(self, outcome: str, answer: Mapping[str, Any]) -> None:
        """After a tool's successful write: `answer` is the calendar's (`appointment_id`,
        `customer_id`, `service_type`, `start_time`)."""
        if outcome not in _CHANGES:
            return
        key = (outcome, answer["appointment_id"], answer["start_time"])
        if key in self._sent:
            return
        self._sent.add(key)
        self._texts.about(self._settings, cast(Kind, outcome), answer["customer_id"], answer["service_type"],
                          datetime.fromisoformat(answer["start_time"]))
