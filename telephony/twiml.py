"""The TwiML of a call the agent does not take: say something, then hand the caller to the
service desk or hang up. (Joining a call to the agent is `telephony/streams.py`.)"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from config import lines
from config.settings import Settings


def desk_words(settings: Settings, apology: str) -> str:
    """`apology`, then that the caller goes to the service desk, or without one a request to call
    back: what a caller hears when the agent cannot (or can no longer) take the call."""
    desk = settings.service_desk_number
    words = apology.format(shop=settings.shop_name) + (lines.TO_THE_DESK if desk else lines.CALL_BACK_LATER)
    return words.strip()  # an empty apology leaves the desk's words alone


def to_the_desk(settings: Settings, apology: str) -> tuple[VoiceResponse, str]:
    """No agent for this caller: `desk_words`, then the service desk or a hang-up. Also returns
    the words said, for the call log."""
    said = desk_words(settings, apology)
    response = VoiceResponse()
    response.say(said)
    if settings.service_desk_number:
        response.dial(settings.service_desk_number)
    else:
        response.hangup()
    return response, said


def say_and_hang_up(text: str | None) -> VoiceResponse:
    response = VoiceResponse()
    if text:
        response.say(text)
    response.hangup()
    return response
