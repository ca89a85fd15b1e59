"""The TwiML our webhooks answer with: join the call to our media stream, or say something and
hand the caller to the service desk (or hang up)."""

from __future__ import annotations

from fastapi import Response
from twilio.twiml.voice_response import Connect, VoiceResponse

from config import lines
from config.settings import Settings
from telephony.stream_tokens import stream_parameters


def twiml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type="application/xml")


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


def to_the_desk(settings: Settings, apology: str) -> tuple[VoiceResponse, str]:
    """No agent for this caller: `apology`, then the service desk, or without one a request to
    call back and a hang-up. Also returns the words said, for the call log."""
    desk = settings.service_desk_number
    said = apology.format(shop=settings.shop_name) + (lines.TO_THE_DESK if desk else lines.CALL_BACK_LATER)
    response = VoiceResponse()
    response.say(said)
    if desk:
        response.dial(desk)
    else:
        response.hangup()
    return response, said


def say_and_hang_up(text: str | None) -> VoiceResponse:
    response = VoiceResponse()
    if text:
        response.say(text)
    response.hangup()
    return response
