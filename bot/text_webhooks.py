"""`POST /twilio/sms`: Twilio's webhook for a text to the shop's number (set as the number's
messaging webhook). STOP and Twilio's other opt-out words stop the texts to that customer,
START (or UNSTOP, YES) restarts them; anything else is left for a person to read in Twilio.
The answer is always an empty `<Response/>`: Twilio itself answers the keywords."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from twilio.twiml.messaging_response import MessagingResponse

from bot.twilio_webhooks import SignedForm
from config.phones import e164, masked
from config.settings import get_settings
from crm import text_consent
from telephony.texts import opts_out

log = logging.getLogger(__name__)


def router() -> APIRouter:
    routes = APIRouter(prefix="/twilio")

    @routes.post("/sms")
    async def text_received(form: SignedForm) -> Response:
        opted_out = opts_out(form.get("Body", ""))
        sender = form.get("From", "")
        if opted_out is not None:
            try:
                number = e164(sender, get_settings().phone_region)
            except ValueError:
                log.info("text from an unusable number (%s): nothing to record", masked(sender))
            else:
                known = await text_consent.record_consent(number, opted_out=opted_out)
                log.info("%s texted %s: %s", masked(number), "an opt-out" if opted_out else "an opt-in",
                         "recorded" if known else "no customer has that number")
        return Response(content=str(MessagingResponse()), media_type="application/xml")

    return routes
