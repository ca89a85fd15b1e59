"""The TwiML of a call the agent does not take: say something, then hand the caller to the
service desk or hang up. (Joining a call to the agent is `telephony/streams.py`.)"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from config import lines
from config.settings import Settings


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
