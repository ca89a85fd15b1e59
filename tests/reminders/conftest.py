"""Fixtures: a clean database, the fake Twilio REST API, and our Twilio client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from config.settings import Settings
from crm import db
from telephony.rest import TwilioRest
from tests.fakes.twilio_rest import FakeTwilioRest


@pytest.fixture
async def fresh(clean_db: None) -> None:
    """Empty tables (reminders go with their appointments) and no pacing left from earlier."""
    async with db.connection() as conn:
        await conn.execute("DELETE FROM reminder_pacing")


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioRest]:
    async with FakeTwilioRest() as fake:
        yield fake


def telephony_for(fake: FakeTwilioRest, base_url: str | None = None) -> TwilioRest:
    return TwilioRest(Settings(
        twilio_account_sid=fake.account_sid, twilio_auth_token=fake.auth_token,
        twilio_api_base_url=base_url or fake.base_url,
    ))


@pytest.fixture
async def telephony(twilio: FakeTwilioRest) -> AsyncIterator[TwilioRest]:
    """The production dialler (`telephony.rest.TwilioRest`), talking to the fake."""
    client = telephony_for(twilio)
    yield client
    await client.close()
