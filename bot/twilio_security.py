"""Who may talk to the launcher: Twilio-signed webhooks and streams carrying our own token.

Webhooks are checked with Twilio's `X-Twilio-Signature` over `PUBLIC_BASE_URL` + path.
A media stream must present a short-lived token minted when this service answered (or placed)
the call. The token is an HMAC any launcher instance can verify with the shared secret; that
it opens one stream only is enforced by the database (`crm.claim_stream`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from functools import lru_cache

from fastapi import HTTPException, Request
from twilio.request_validator import RequestValidator

from crm.settings import get_settings

log = logging.getLogger(__name__)

TOKEN_TTL_SECONDS = 120


@lru_cache(maxsize=1)
def _stream_secret() -> bytes:
    token = get_settings().twilio_auth_token
    if token:
        # Derived, so the auth token itself never travels inside stream parameters.
        return hmac.new(token.encode(), b"stream-token-v1", hashlib.sha256).digest()
    log.warning("TWILIO_AUTH_TOKEN is not set: stream tokens verify on this instance only")
    return secrets.token_bytes(32)


def _mac(call_sid: str, expires: int) -> str:
    digest = hmac.new(_stream_secret(), f"{call_sid}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def mint_stream_token(call_sid: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + TOKEN_TTL_SECONDS)
    return f"{expires}.{_mac(call_sid, expires)}"


def stream_token_problem(token: str | None, call_sid: str, now: float | None = None) -> str | None:
    """Why `token` does not open a stream for `call_sid`, or None when it does."""
    if not token or not call_sid:
        return "missing stream token"
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or not hmac.compare_digest(mac, _mac(call_sid, int(expires_text))):
        return "forged stream token"
    if int(expires_text) < (now or time.time()):
        return "expired stream token"
    return None


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
