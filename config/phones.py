"""Phone numbers as the database keeps them: E.164, whatever way a caller or Twilio wrote them."""

from __future__ import annotations

from collections.abc import Collection

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


def allowlisted(number: str | None, allowlist: Collection[str]) -> bool:
    """Whether reminder calls and texts may reach `number` (E.164): only the numbers on
    REMINDER_ALLOWLIST (kept in E.164 by the settings) may; an empty list lets nobody through."""
    return number is not None and number in allowlist


def region_of(value: str) -> str | None:
    """The region (e.g. "US") a full international number belongs to."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return None


_CALLING_CODES = frozenset(phonenumbers.supported_calling_codes())


def masked(number: str) -> str:
    """`number` fit for a log line or a printout: "+12125550123" becomes "+1******0123",
    "(212) 555-0123" becomes "******0123".

    Only the "+" with the country code (when written) and the last four digits stay; every digit
    between becomes "*" and separators go, so no way of writing a number shows more of it.
    """
    digits = "".join(ch for ch in number if ch.isdigit())
    plus = number.lstrip().startswith("+")
    # Calling codes are prefix-free: of the first one, two and three digits, at most one is one.
    code = next((digits[:n] for n in (1, 2, 3)
                 if plus and len(digits) > n and int(digits[:n]) in _CALLING_CODES), "")
    rest = digits[len(code):]
    last = rest[-4:] if len(rest) > 4 else ""
    return ("+" if plus else "") + code + "*" * (len(rest) - len(last)) + last
