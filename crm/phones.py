"""Phone numbers as the database keeps them: E.164, whatever way a caller or Twilio wrote them."""

from __future__ import annotations

import phonenumbers


def e164(value: str, region: str = "US") -> str:
    """`value` as E.164; ValueError when it is not a valid phone number.

    `region` applies to numbers written without a country code ("(212) 555-0123").
    """
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def region_of(value: str) -> str | None:
    """The region (e.g. "US") a full international number belongs to."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return None
