"""What Twilio's webhooks tell us, once we know they are Twilio's: the signature
(`X-Twilio-Signature` over `PUBLIC_BASE_URL` + path) and how far the caller's number can be
believed (`From`, `StirVerstat`)."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request
from twilio.request_validator import RequestValidator

from config.phones import e164
from config.settings import get_settings
from crm.identity import CallerId

log = logging.getLogger(__name__)


def public_url(request: Request) -> str:
    """The URL Twilio signed: the public base URL, not whatever address the proxy used."""
    url = get_settings().base_url + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


async def verified_form(request: Request) -> dict[str, str]:
    """The webhook's form fields, after its Twilio signature checks out (403 otherwise)."""
    token = get_settings().twilio_auth_token
    form = {key: str(value) for key, value in (await request.form()).multi_items()}
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token:
        log.warning("refusing %s: TWILIO_AUTH_TOKEN is not set", request.url.path)
        raise HTTPException(status_code=403, detail="webhook signatures cannot be checked")
    if not RequestValidator(token).validate(public_url(request), form, signature):
        log.warning("refusing %s: bad Twilio signature", request.url.path)
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return form


# Twilio's From for a withheld number: the words spelled on a keypad (ANONYMOUS, RESTRICTED,
# BLOCKED, UNKNOWN, UNAVAILABLE, PRIVATE), or the word itself.
_WITHHELD = frozenset({
    "+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253", "+7748283",
    "anonymous", "restricted", "blocked", "unknown", "unavailable", "private",
})
ATTESTED_VERSTAT = "TN-Validation-Passed-A"  # STIR/SHAKEN: the carrier vouches for the number


def caller_id(from_number: str | None, stir_verstat: str | None, region: str = "US") -> CallerId:
    """How an inbound call's `From` can be believed, given Twilio's `StirVerstat`."""
    number = (from_number or "").strip()
    if number.lower() in _WITHHELD:
        return CallerId.WITHHELD
    try:
        e164(number, region)
    except ValueError:
        return CallerId.WITHHELD
    return CallerId.ATTESTED if stir_verstat == ATTESTED_VERSTAT else CallerId.UNATTESTED
