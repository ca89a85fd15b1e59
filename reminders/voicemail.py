"""What a reminder call says without the agent: the message left on a machine, also said to a
person when no agent can take the call."""

from __future__ import annotations

import re
from datetime import datetime

import phonenumbers

from calendar_adapter.speech import say_when
from config import lines


def spoken_number(number: str) -> str:
    """"+13125550100" -> "3 1 2, 5 5 5, 0 1 0 0": digit by digit, grouped as people write it."""
    try:
        national = phonenumbers.format_number(phonenumbers.parse(number, None),
                                              phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        national = number
    return ", ".join(" ".join(group) for group in re.findall(r"\d+", national))


def message(shop_name: str, when: datetime | None, call_back: str | None) -> str:
    """A short message naming the shop, the appointment's day and time, and the number to call."""
    about = lines.VOICEMAIL_WHEN.format(when=say_when(when)) if when else lines.VOICEMAIL_SOMETIME
    text = lines.VOICEMAIL.format(shop=shop_name, about=about)
    if call_back:
        text += lines.VOICEMAIL_CALL_BACK.format(number=spoken_number(call_back))
    return text + lines.VOICEMAIL_END
