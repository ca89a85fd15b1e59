"""How far Twilio says an inbound call's number can be believed."""

from __future__ import annotations

from config.phones import e164
from crm.identity import CallerId

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
