"""What a text says, which replies change consent, and when texts are on at all (the sending
itself is tested over the wire: tests/bot/test_texts.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.settings import Settings
from telephony.texts import opts_out, wording

ACCOUNT = {"twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": "token",
           "twilio_phone_number": "+13125550100"}


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, shop_name="Lakeside Motors", **values)


@pytest.mark.parametrize(("body", "verdict"), [
    ("STOP", True), (" stop\n", True), ("Quit", True), ("stopall", True), ("UNSUBSCRIBE", True),
    ("cancel", True), ("end", True), ("START", False), ("unstop", False), ("Yes", False),
    ("stop please", None), ("Please cancel my appointment", None), ("", None), ("Thanks!", None),
])
def test_only_twilios_keywords_alone_change_consent(body: str, verdict: bool | None) -> None:
    assert opts_out(body) is verdict


def test_a_text_writes_the_time_short_in_shop_time_with_the_address() -> None:
    start = datetime(2026, 12, 8, 14, 30, tzinfo=UTC)  # 9:30 AM in New York
    with_address = settings(shop_address=" 1200 Lake Shore Dr, Chicago. ")
    assert wording(with_address, "booked", "oil change", start) == (
        "Lakeside Motors: your oil change is booked for Tue Dec 8 at 9:30 AM."
        " Find us at 1200 Lake Shore Dr, Chicago. Reply STOP to opt out.")
    assert wording(settings(), "cancelled", "brake service", start.replace(hour=17)) == (
        "Lakeside Motors: your brake service on Tue Dec 8 at 12:30 PM is cancelled."
        " Reply STOP to opt out.")


def test_texts_are_on_with_a_twilio_account_and_number_unless_turned_off() -> None:
    assert settings(**ACCOUNT).texts_enabled
    assert not settings(**{**ACCOUNT, "twilio_phone_number": None}).texts_enabled
    assert not settings().texts_enabled
    assert not settings(**ACCOUNT, sms_confirmations="off").texts_enabled
    assert not settings(sms_confirmations="on").texts_enabled  # nothing to send with
