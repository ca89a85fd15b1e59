"""Joining a call to our media stream, and knowing a stream that arrives is one of ours.

The TwiML that joins a call carries the call's facts as `<Parameter>`s and a token over them.
A media stream must present a short-lived token minted when this service answered (or placed)
the call. The token is an HMAC, over the call and every other `<Parameter>` the stream carries,
that any launcher instance can verify with the shared secret; that it opens one stream only is
enforced by the database (`crm.claim_stream`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from functools import lru_cache

from twilio.twiml.voice_response import Connect, VoiceResponse

from config.settings import Settings, get_settings

log = logging.getLogger(__name__)

TOKEN_TTL_SECONDS = 120
TOKEN_PARAMETER = "token"
# Expiry (ASCII digits only: int() takes other scripts' digits too) and an unpadded SHA-256 MAC.
_TOKEN = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


@lru_cache(maxsize=1)
def _stream_secret() -> bytes:
    token = get_settings().twilio_auth_token
    if token:
        # Derived, so the auth token itself never travels inside stream parameters.
        return hmac.new(token.encode(), b"stream-token-v1", hashlib.sha256).digest()
    log.warning("TWILIO_AUTH_TOKEN is not set: stream tokens verify on this instance only")
    return secrets.token_bytes(32)


def _mac(call_sid: str, expires: int, parameters: Mapping[str, str]) -> str:
    # One encoding per set of parameters: sorted by name, JSON-quoted so that no name or value
    # can pass for a separator, ASCII-escaped so the bytes do not depend on an encoder.
    signed = json.dumps([call_sid, expires, sorted(parameters.items())], ensure_ascii=True,
                        separators=(",", ":"))
    digest = hmac.new(_stream_secret(), signed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def mint_stream_token(call_sid: str, parameters: Mapping[str, str], now: float | None = None) -> str:
    """A token for the stream of `call_sid` that carries exactly `parameters` besides the token."""
    expires = int((time.time() if now is None else now) + TOKEN_TTL_SECONDS)
    return f"{expires}.{_mac(call_sid, expires, parameters)}"


def stream_token_problem(parameters: Mapping[str, str], call_sid: str,
                         now: float | None = None) -> str | None:
    """Why a stream's custom parameters (the token among them) do not open a stream for
    `call_sid`, or None when they do."""
    signed = dict(parameters)
    token = signed.pop(TOKEN_PARAMETER, None)
    if not token:
        return "missing stream token"
    match = _TOKEN.fullmatch(token)
    if match is None:
        return "malformed stream token"
    expires = int(match[1])
    if not hmac.compare_digest(match[2], _mac(call_sid, expires, signed)):
        return "forged stream token or tampered parameters"
    if expires < (time.time() if now is None else now):
        return "expired stream token"
    return None


def stream_parameters(call_sid: str, **parameters: str | None) -> dict[str, str]:
    """What the media stream's `start` must carry: the call facts given (empty ones left out)
    and a token that binds them, by name and value, to this call."""
    facts = {name: str(value) for name, value in parameters.items() if value}
    return {**facts, TOKEN_PARAMETER: mint_stream_token(call_sid, facts)}


def stream_url(settings: Settings) -> str:
    base = settings.base_url
    return ("wss://" + base.removeprefix("https://") if base.startswith("https://")
            else "ws://" + base.removeprefix("http://")) + "/twilio/stream"


def connect_stream(settings: Settings, call_sid: str, **parameters: str | None) -> VoiceResponse:
    """Join the call to our media stream, carrying `parameters` and a token that binds them."""
    connect = Connect()
    stream = connect.stream(url=stream_url(settings))
    for name, value in stream_parameters(call_sid, **parameters).items():
        stream.parameter(name=name, value=value)
    return VoiceResponse().append(connect)
