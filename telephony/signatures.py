"""Which webhooks come from Twilio: `X-Twilio-Signature` over `PUBLIC_BASE_URL` + path.

A FastAPI dependency, so a route gets the form only once it is known to be Twilio's.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request
from twilio.request_validator import RequestValidator

from config.settings import get_settings

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
