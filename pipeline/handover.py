"""How the agent hands a caller to a service advisor (`transfer_to_human`): a warm transfer.

The caller stays with the agent, on hold, while the desk rings (telephony/warm_transfer.py
places the desk leg). The advisor who answers hears a one-sentence summary of the call, and the
caller joins them in a conference as the call's pipeline ends (pipeline/call.py). Nobody
answering within TRANSFER_TIMEOUT_SECONDS, the desk busy or failing, or the desk closed
(outside SERVICE_DESK_HOURS): the agent says so and offers a call-back, which the model takes
with `take_message`. A desk leg that cannot be placed: the plain <Dial> to the desk instead.
The call log records each transfer as a `transfer` flag whose detail is its outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipecat.frames.frames import EndWorkerFrame, FunctionCallResultProperties, TTSSpeakFrame
from pipecat.services.llm_service import FunctionCallParams

from calendar_adapter.rules import ShopRules
from config import lines
from config.settings import Settings
from pipeline.session import CallSession, Ending
from processors.card_redactor import redact_card_numbers
from telephony.warm_transfer import DeskLegs, Outcome

log = logging.getLogger(__name__)

FLAG = "transfer"
HOLD_EVERY_SECONDS = 8.0  # a hold line this often, so the caller never wonders if the line is dead

# What the model hears when the caller could not be put through (they just heard why).
CALL_BACK = ("No advisor can take the call now; the caller was just told so and asked whether an"
             " advisor should call them back. If they want that, ask for their name (and a number,"
             " if the caller ID is withheld) and what they need, then call take_message. Call"
             " transfer_to_human again only if the caller asks to try again.")
ALREADY = ("The transfer is under way and the caller is on hold: tell them an advisor will be with"
           " them as soon as one answers.")

Done = tuple[str, dict[str, Any]]  # what a tool did on the call ("booked", ...) and its answer


def desk_open(settings: Settings, now: datetime) -> bool:
    """Whether the service desk takes calls at `now`: inside SERVICE_DESK_HOURS (by default
    SHOP_HOURS), and not on one of SHOP_HOLIDAYS."""
    hours = settings.service_desk_hours or settings.shop_hours
    rules = ShopRules(settings.model_copy(update={"shop_hours": hours}))
    return any(opens <= now < closes for opens, closes in rules.periods(rules.today(now)))


def summary(session: CallSession, reason: str, done: Sequence[Done]) -> str:
    """The sentence the advisor hears before joining the caller: first name (never the last),
    whether the caller ID can be believed, the car, the reason, and what the call already did."""
    record = session.record
    if record is None:
        who = lines.WHISPER_NEW_CALLER
    else:
        who = record.customer.first_name or lines.WHISPER_NEW_CALLER
        if not session.access.may_change(record.customer.phone):
            who += lines.WHISPER_UNVERIFIED
    car = next((answer["vehicle"] for _, answer in reversed(done) if answer.get("vehicle")), None)
    if car is None and record is not None and len(record.vehicles) == 1:
        car = record.vehicles[0].label
    did = [lines.WHISPER_DID[what].format(service=answer.get("service_type", "an appointment"),
                                          when=answer.get("when", "")) for what, answer in done]
    text = lines.WHISPER.format(
        who=who, car=lines.WHISPER_CAR.format(car=car) if car else "", reason=reason,
        done=lines.WHISPER_DONE.format(did=" and ".join(did)) if did else lines.WHISPER_NOTHING_DONE)
    return redact_card_numbers(text)


class Handover:
    """The transfers of one call."""

    def __init__(self, session: CallSession, settings: Settings, desk: DeskLegs | None) -> None:
        self._session = session
        self._settings = settings
        self._desk = desk  # None: no Twilio account (the browser page), so no desk leg either
        self._holding = False

    async def transfer(self, params: FunctionCallParams, whisper: str) -> None:
        """Put the caller through to an advisor who has heard `whisper`, or tell them why not."""
        if self._holding:
            await params.result_callback({"transferred": False, "reason": ALREADY})
            return
        if not desk_open(self._settings, datetime.now(UTC)):
            await self._not_through(params, Outcome.CLOSED, lines.DESK_CLOSED)
            return
        await params.llm.push_frame(TTSSpeakFrame(lines.TRANSFERRING))
        outcome, transfer = Outcome.COLD, None
        if self._desk is not None:
            self._holding = True
            hold = asyncio.create_task(self._hold(params), name=f"hold-{self._session.call_sid}")
            try:
                outcome, transfer = await self._desk.connect(self._settings, self._session.call_sid, whisper)
            except asyncio.CancelledError:  # the caller hung up on hold: the desk leg was hung up too
                self._session.flag(FLAG, Outcome.ABANDONED)
                raise
            finally:
                hold.cancel()
                self._holding = False
        if outcome not in (Outcome.ANSWERED, Outcome.COLD):
            await self._not_through(params, outcome, lines.DESK_NO_ANSWER)
            return
        self._session.flag(FLAG, outcome)
        # The caller joins the advisor's conference (or, cold, is dialled through) once the
        # pipeline has ended: pipeline/call.py.
        self._session.conference = transfer if outcome is Outcome.ANSWERED else None
        self._session.ending = Ending.TRANSFERRED
        self._session.outcome("transferred")
        await params.result_callback({"transferred": True},
                                     properties=FunctionCallResultProperties(run_llm=False))
        await params.llm.push_frame(EndWorkerFrame(reason="transfer"))

    async def _not_through(self, params: FunctionCallParams, outcome: Outcome, said: str) -> None:
        log.info("call %s: transfer not put through: %s", self._session.call_sid, outcome)
        self._session.flag(FLAG, outcome)
        await params.llm.push_frame(TTSSpeakFrame(said))
        await params.result_callback({"transferred": False, "reason": CALL_BACK},
                                     properties=FunctionCallResultProperties(run_llm=False))

    async def _hold(self, params: FunctionCallParams) -> None:
        while True:
            await asyncio.sleep(HOLD_EVERY_SECONDS)
            await params.llm.push_frame(TTSSpeakFrame(lines.STILL_HOLDING))
