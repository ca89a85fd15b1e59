"""lookup_customer against real PostgreSQL and Redis: formats, unknown callers, the cache."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
import redis

import crm
from config.settings import get_settings
from crm import cache as cache_module
from crm import embedded
from crm.customers import cache_key
from crm.errors import DatabaseUnavailable


async def _customer_with_car(database_url: str) -> int:
    created = await crm.create_customer("+12125550123", "Maria", "Lopez")
    customer_id = created["customer"]["id"]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO vehicles (customer_id, vin, year, make, model, mileage)"
            " VALUES (%s, '1HGCM82633A004352', 2019, 'Honda', 'Civic', 42000)",
            (customer_id,),
        )
    await crm.forget_customer(customer_id)
    return customer_id


async def test_known_caller_with_vehicles_in_any_format(clean_db, database_url) -> None:
    await _customer_with_car(database_url)
    for written in ("(212) 555-0123", "+1 212 555 0123", "212.555.0123"):
        answer = await crm.lookup_customer(written)
        assert answer["found"] is True
        assert answer["customer"]["first_name"] == "Maria"
        assert answer["customer"]["phone"] == "+12125550123"
        assert answer["vehicles"] == [{
            "id": answer["vehicles"][0]["id"], "year": 2019, "make": "Honda", "model": "Civic",
            "vin": "1HGCM82633A004352", "mileage": 42000,
        }]
        assert answer["upcoming_appointments"] == []


async def test_upcoming_appointments_only_and_in_shop_time(clean_db, database_url) -> None:
    customer_id = await _customer_with_car(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO appointments (customer_id, service_type, scheduled_at, duration_minutes,"
            " status, bay) VALUES"
            " (%(c)s, 'oil change', now() + interval '2 days', 30, 'scheduled', 1),"
            " (%(c)s, 'diagnostics', now() + interval '3 days', 60, 'cancelled', 1),"
            " (%(c)s, 'brake service', now() - interval '30 days', 90, 'completed', 1)",
            {"c": customer_id},
        )
    await crm.forget_customer(customer_id)
    upcoming = (await crm.lookup_customer("+12125550123"))["upcoming_appointments"]
    assert [a["service_type"] for a in upcoming] == ["oil change"]
    offset = upcoming[0]["start_time"][-6:]
    assert offset in ("-05:00", "-04:00")  # America/New_York, the default SHOP_TIMEZONE


@pytest.mark.parametrize("phone", ["+13125550188", "hello", "", "12"])
async def test_unknown_or_malformed_caller_is_not_found(clean_db, phone: str) -> None:
    answer = await crm.lookup_customer(phone)
    assert answer["found"] is False


async def test_cache_miss_then_hit_then_invalidation(clean_db, database_url, redis_url) -> None:
    customer_id = await _customer_with_car(database_url)
    client = redis.Redis.from_url(redis_url)
    key = cache_key("+12125550123")
    assert client.get(key) is None

    first = await crm.lookup_customer("2125550123")  # miss: fills the cache
    assert 290 <= client.ttl(key) <= 300

    # Change the row behind the cache's back: a hit still answers the cached record.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("UPDATE customers SET first_name = 'Mariana' WHERE id = %s",
                           (customer_id,))
    assert (await crm.lookup_customer("2125550123")) == first

    await crm.forget_customer(customer_id)  # what every write through crm/calendar calls
    assert client.get(key) is None
    assert (await crm.lookup_customer("2125550123"))["customer"]["first_name"] == "Mariana"


async def test_unknown_caller_cached_until_created(clean_db) -> None:
    assert (await crm.lookup_customer("+13125550177"))["found"] is False
    created = await crm.create_customer("(312) 555-0177", "Sam")
    assert created["created"] is True
    assert (await crm.lookup_customer("+13125550177"))["customer"]["first_name"] == "Sam"
    again = await crm.create_customer("+13125550177", "Other")
    assert again == {"created": False, "customer": created["customer"]}


async def test_stale_lookup_cannot_refill_after_invalidation(clean_db, database_url) -> None:
    """A lookup that read the database before a change must not cache the old answer."""
    customer_id = await _customer_with_car(database_url)
    store = await cache_module.cache()
    key = cache_key("+12125550123")
    _, generation = await store.get(key)  # a lookup starts ...
    await crm.forget_customer(customer_id)  # ... a booking commits meanwhile ...
    await store.put(key, {"found": True, "stale": True}, generation)  # ... the lookup finishes
    assert (await store.get(key))[0] is None


async def test_redis_stopped_mid_test(clean_db, database_url, tmp_path: Path, monkeypatch,
                                      caplog) -> None:
    await _customer_with_car(database_url)
    private = embedded.redis_url(tmp_path)  # a Redis of this test's own, to stop
    monkeypatch.setenv("REDIS_URL", private)
    get_settings.cache_clear()
    await cache_module.close()
    try:
        assert (await crm.lookup_customer("2125550123"))["found"]
        redis.Redis.from_url(private).shutdown(nosave=True)
        caplog.set_level(logging.WARNING, logger="crm.cache")
        for _ in range(3):
            answer = await crm.lookup_customer("2125550123")
            assert answer["found"] and answer["customer"]["first_name"] == "Maria"
        outages = [r for r in caplog.records if "cache unavailable" in r.getMessage()]
        assert len(outages) == 1
    finally:
        await cache_module.close()
        monkeypatch.undo()
        get_settings.cache_clear()


async def test_database_down_is_a_typed_error(monkeypatch) -> None:
    from crm import db

    await db.close()
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nothing")
    get_settings.cache_clear()
    try:
        with pytest.raises(DatabaseUnavailable):
            await crm.lookup_customer("+13125550166")
    finally:
        await db.close()
        monkeypatch.undo()
        get_settings.cache_clear()
