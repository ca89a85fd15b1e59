"""Fixtures: shop settings per test, and the backend under test (local, or Google against
the fake Calendar API), so one behaviour suite runs on both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from calendar_adapter import backends
from config.settings import get_settings
from tests.calendar_adapter.support import make_customers
from tests.fakes.google_calendar import FakeGoogleCalendar

Configure = Callable[..., None]


@pytest.fixture
def shop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """`shop(SHOP_BAYS="1", ...)` changes settings for this test only."""

    def configure(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    configure(SHOP_TIMEZONE="America/New_York")
    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(params=["local", "google"])
async def calendar(
    request: pytest.FixtureRequest, shop: Configure, clean_db: None
) -> AsyncIterator[FakeGoogleCalendar | None]:
    """The backend under test: None for local, else the fake Google Calendar it talks to."""
    if request.param == "local":
        shop(CALENDAR_BACKEND="local")
        yield None
    else:
        async with FakeGoogleCalendar() as fake:
            shop(**fake.settings())
            yield fake
    await backends.close()


@pytest.fixture
async def google(shop: Configure, clean_db: None) -> AsyncIterator[FakeGoogleCalendar]:
    async with FakeGoogleCalendar() as fake:
        shop(**fake.settings())
        yield fake
    await backends.close()


@pytest.fixture
async def customer(clean_db: None) -> tuple[int, int]:
    """(customer_id, vehicle_id) of Maria Lopez and her 2019 Honda Civic."""
    return (await make_customers())[0]
