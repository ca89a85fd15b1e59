"""The demo data: exact counts, determinism, realism, and refusing to load twice."""

from __future__ import annotations

import hashlib
from datetime import date, time

import phonenumbers
import psycopg
import pytest

from config.phones import e164
from config.settings import get_settings
from crm import seed
from crm.vehicles import decode_vin

TODAY = date(2026, 11, 24)


async def _fingerprint(database_url: str) -> str:
    digest = hashlib.sha256()
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for table in ("customers", "vehicles", "appointments"):
            cur = await conn.execute(f"SELECT * FROM {table} ORDER BY id")
            for row in await cur.fetchall():
                digest.update(repr(row).encode())
    return digest.hexdigest()


async def test_full_seed_counts_and_realism(clean_db, database_url) -> None:
    loaded = await seed.seed(seed.Counts(), seed=42, today=TODAY, progress=False)
    assert loaded == {"customers": 10_000, "vehicles": 16_000, "appointments": 8_000}

    settings = get_settings()
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        conn.row_factory = psycopg.rows.dict_row
        await conn.execute(f"SET TIME ZONE '{settings.shop_timezone}'")
        rows = await (await conn.execute("SELECT phone FROM customers")).fetchall()
        phones = [r["phone"] for r in rows]
        assert len(set(phones)) == 10_000
        assert all(e164(p) == p and p[5:9] == "5550" for p in phones)  # fictional 555-01XX lines
        kinds = {phonenumbers.number_type(phonenumbers.parse(p)) for p in phones}
        assert kinds <= {phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
                         phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE}

        cars = await (await conn.execute("SELECT * FROM vehicles")).fetchall()
        owners = {c["customer_id"] for c in cars}
        assert len(owners) == 10_000  # everybody has a vehicle
        for car in cars:
            facts = decode_vin(car["vin"])
            assert facts["valid"], car
            assert facts["manufacturer"].lower() == car["make"].lower(), car
            assert car["year"] in (facts["model_year"], facts["model_year"] - 30), car
            age = TODAY.year - car["year"]
            assert 300 <= car["mileage"] <= max(30_000, age * 40_000), car

        visits = await (await conn.execute(
            "SELECT a.*, v.customer_id AS owner FROM appointments a"
            " JOIN vehicles v ON v.id = a.vehicle_id")).fetchall()
        assert len(visits) == 8_000
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        future = 0
        for visit in visits:
            assert visit["owner"] == visit["customer_id"]
            assert visit["duration_minutes"] == settings.service_durations[visit["service_type"]]
            start = visit["scheduled_at"]
            end_minutes = start.hour * 60 + start.minute + visit["duration_minutes"]
            end = time(end_minutes // 60, end_minutes % 60)
            periods = settings.shop_hours[days[start.weekday()]]
            assert any(o <= start.time() and end <= c for o, c in periods), visit
            if start.date() < TODAY:
                assert visit["status"] in ("completed", "no_show", "cancelled")
            else:
                future += 1
                assert visit["status"] in ("scheduled", "confirmed", "cancelled")
        assert 100 < future < 1_000  # coming weeks have bookings and room for more

        # One customer is in one bay at a time, whatever became of the visits.
        overlapping = await (await conn.execute(
            "SELECT count(*) AS n FROM appointments a JOIN appointments b"
            " ON a.customer_id = b.customer_id AND a.id < b.id"
            " AND appointment_period(a.scheduled_at, a.duration_minutes)"
            " && appointment_period(b.scheduled_at, b.duration_minutes)")).fetchone()
        assert overlapping["n"] == 0


async def test_same_seed_same_data_other_seed_other_data(clean_db, database_url) -> None:
    small = seed.Counts(customers=300, vehicles=450, appointments=200)
    await seed.seed(small, seed=7, today=TODAY, progress=False)
    first = await _fingerprint(database_url)
    await seed.seed(small, seed=7, today=TODAY, reset=True, progress=False)
    assert await _fingerprint(database_url) == first
    await seed.seed(small, seed=8, today=TODAY, reset=True, progress=False)
    assert await _fingerprint(database_url) != first


async def test_refuses_to_load_twice_without_reset(clean_db) -> None:
    small = seed.Counts(customers=20, vehicles=30, appointments=10)
    await seed.seed(small, seed=1, today=TODAY, progress=False)
    with pytest.raises(seed.AlreadySeeded):
        await seed.seed(small, seed=1, today=TODAY, progress=False)


def test_vin_check_digit_matches_the_standard() -> None:
    # The textbook example VIN: its check digit is X.
    assert seed.vin_check_digit("1M8GDM9A_KP042788".replace("_", "0")) == "X"
