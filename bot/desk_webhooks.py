"""The webhooks of a warm transfer's desk leg (telephony/warm_transfer.py), signed like every
Twilio webhook: its `Url`, requested when an advisor answers (the whisper, then the conference),
and its status callback, which says when it ended unanswered (busy, no answer, failed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from bot.twilio_webhooks import SignedForm, twiml
from telephony.warm_transfer import DeskLegs

Transfer = Annotated[str, Query(pattern=r"^[0-9a-f]{32}$")]


def router(desk: DeskLegs) -> APIRouter:
    routes = APIRouter(prefix="/twilio/desk")

    @routes.post("")
    async def desk_answered(form: SignedForm, transfer: Transfer) -> Response:
        return twiml(await desk.answered(transfer))

    @routes.post("/status")
    async def desk_status(form: SignedForm, transfer: Transfer) -> Response:
        await desk.ended(transfer, form.get("CallStatus", ""))
        return Response(status_code=204)

    return routes
