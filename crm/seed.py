"""Deterministic demo data: customers, their vehicles and a service history, loaded with COPY.

The same `--seed` and `--today` give the same rows. Phone numbers are drawn from the
555-0100..555-0199 lines that North American numbering reserves for fiction, so demo data
can never ring a real person.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from faker import Faker
from faker_vehicle.vehicle_dict import vehicles as VEHICLES
from psycopg import AsyncConnection
from tqdm import tqdm
from vininfo import Vin
from vininfo.dicts.wmi import WMI

from config.settings import Settings, get_settings
from crm import db
from crm.cache import cache

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PAST_DAYS = 540
FUTURE_DAYS = 42
FUTURE_SHARE = 0.05  # of appointments; keeps the coming weeks about half booked

SERVICE_WEIGHTS = {
    "oil change": 35, "tire rotation": 15, "state inspection": 8, "battery replacement": 5,
    "brake service": 10, "diagnostics": 10, "wheel alignment": 6,
    "air conditioning service": 4, "scheduled maintenance": 5, "transmission service": 2,
}
PAST_STATUSES = {"completed": 88, "no_show": 4, "cancelled": 8}
FUTURE_STATUSES = {"scheduled": 75, "confirmed": 15, "cancelled": 10}
NOTES = (
    "Customer will wait.", "Needs a loaner car.", "Squeal from the front left wheel.",
    "Check engine light on.", "Drop-off the evening before.", "Customer asked for a call when ready.",
)

# VIN check digit: letter values and position weights from the North American standard.
_VIN_VALUES = dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ",
                       (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_VIN_VALUES.update({str(d): d for d in range(10)})
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 1980, 1981, ... repeating every 30 years


@dataclass(frozen=True)
class Counts:
    customers: int = 10_000
    vehicles: int = 16_000
    appointments: int = 8_000


class AlreadySeeded(Exception):
    pass


def vin_check_digit(vin: str) -> str:
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


@lru_cache(maxsize=1)
def _wmi_by_make() -> dict[str, str]:
    """One manufacturer code per make, checked by decoding it back with vininfo."""
    found: dict[str, str] = {}
    for code in sorted(WMI):
        wmi = code.ljust(3, "1")
        if not set(wmi) <= set(_VIN_ALPHABET):
            continue  # two-letter entries cover any third character
        maker = str(Vin(f"{wmi}AAAAA0AA000001").manufacturer).lower()
        # Prefer North American plants (codes 1-5), the VINs US dealers see most.
        if maker not in found or (wmi[0] in "12345" and found[maker][0] not in "12345"):
            found[maker] = wmi
    return found


def make_vin(rng: random.Random, make: str, year: int, serial: int) -> str:
    wmi = _wmi_by_make()[make.lower()]
    vds = "".join(rng.choice(_VIN_ALPHABET) for _ in range(5))
    plant = rng.choice(_VIN_ALPHABET)
    body = f"{wmi}{vds}0{_YEAR_CODES[(year - 1980) % 30]}{plant}{serial:06d}"
    return body[:8] + vin_check_digit(body) + body[9:]


_PERSONAL = {phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
             phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def _fictional_numbers() -> list[str]:
    """Every 555-01XX number of a US area code people live in (no toll-free or premium-rate
    codes), in a fixed order."""
    numbers = []
    for area in range(201, 990):
        parsed = phonenumbers.parse(f"+1{area}5550100", None)
        if (phonenumbers.is_valid_number(parsed)
                and phonenumbers.region_code_for_number(parsed) == "US"
                and phonenumbers.number_type(parsed) in _PERSONAL):
            numbers.extend(f"+1{area}5550{line}" for line in range(100, 200))
    return numbers


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def customers(rng: random.Random, fake: Faker, n: int, today: date) -> Iterator[tuple]:
    numbers = _fictional_numbers()
    if n > len(numbers):
        raise ValueError(f"at most {len(numbers)} customers have fictional phone numbers")
    for index, slot in enumerate(rng.sample(range(len(numbers)), n), start=1):
        first, last = fake.first_name(), fake.last_name()
        email = f"{first}.{last}{index}@example.{rng.choice(('com', 'net', 'org'))}".lower()
        created = datetime.combine(today - timedelta(days=rng.randint(30, 3000)), time(12), ZoneInfo("UTC"))
        yield index, first, last, numbers[slot], email.replace(" ", "").replace("'", ""), created


def vehicles(rng: random.Random, n: int, n_customers: int, today: date) -> Iterator[tuple]:
    # Every customer has at least one vehicle; the rest go to random households.
    owners = list(range(1, n_customers + 1))
    rng.shuffle(owners)
    owners += [rng.randint(1, n_customers) for _ in range(max(0, n - n_customers))]
    # faker-vehicle's own picker uses the global `random`, so draw from its catalogue with ours.
    makes = _wmi_by_make()
    catalogue = [v for v in VEHICLES if v["Make"].lower() in makes and v["Year"] >= 2000]
    for index in range(1, n + 1):
        spec = rng.choice(catalogue)
        year = spec["Year"]
        age = max(0.5, today.year - year + rng.random())
        mileage = max(300, int(age * rng.gauss(12_000, 3_000)))
        vin = make_vin(rng, spec["Make"], year, index)
        yield index, owners[index - 1], vin, year, spec["Make"], spec["Model"], mileage


def _placements(rng: random.Random, settings: Settings, day: date) -> Iterator[tuple[datetime, str, int]]:
    """A plausible day in the workshop: per bay, services back to back with some idle slots."""
    tz, step = settings.tz, settings.shop_slot_minutes
    for bay in range(1, settings.shop_bays + 1):
        for opens, closes in settings.shop_hours[WEEKDAYS[day.weekday()]]:
            start = datetime.combine(day, opens, tz)
            end = datetime.combine(day, closes, tz)
            while start < end:
                service = _pick(rng, SERVICE_WEIGHTS)
                minutes = settings.service_durations.get(service, settings.default_service_minutes)
                if rng.random() < 0.8 and start + timedelta(minutes=minutes) <= end:
                    yield start, service, bay
                    start += timedelta(minutes=minutes)
                else:
                    start += timedelta(minutes=step)


def appointments(
    rng: random.Random, settings: Settings, n: int, vehicle_owners: list[int], today: date
) -> Iterator[tuple]:
    holidays = set(settings.shop_holidays)
    past, future = [], []
    for offset in range(-PAST_DAYS, FUTURE_DAYS + 1):
        day = today + timedelta(days=offset)
        if day not in holidays:
            (past if offset < 0 else future).extend(_placements(rng, settings, day))
    n_future = min(len(future), round(n * FUTURE_SHARE))
    if n - n_future > len(past):
        raise ValueError(f"the calendar holds at most {len(past) + n_future} demo appointments")
    chosen = sorted(rng.sample(past, n - n_future) + rng.sample(future, n_future))
    # One customer is in one bay at a time (the schema refuses overlapping active visits).
    visits: defaultdict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for index, (start, service, bay) in enumerate(chosen, start=1):
        minutes = settings.service_durations.get(service, settings.default_service_minutes)
        end = start + timedelta(minutes=minutes)
        vehicle = rng.randrange(len(vehicle_owners))
        while any(begins < end and start < ends for begins, ends in visits[vehicle_owners[vehicle]]):
            vehicle = rng.randrange(len(vehicle_owners))
        visits[vehicle_owners[vehicle]].append((start, end))
        upcoming = start.date() >= today
        status = _pick(rng, FUTURE_STATUSES if upcoming else PAST_STATUSES)
        created = start - timedelta(days=rng.randint(1, 30), hours=rng.randint(0, 8))
        note = rng.choice(NOTES) if rng.random() < 0.2 else None
        yield (index, vehicle_owners[vehicle], vehicle + 1, service, start, minutes, status, bay,
               note, created, created)


async def seed(counts: Counts, seed: int = 42, today: date | None = None, reset: bool = False,
               progress: bool = True) -> dict[str, int]:
    """Load the demo data; refuses when customers exist unless `reset`."""
    settings = get_settings()
    today = today or datetime.now(settings.tz).date()
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)

    async with db.connection() as conn:
        existing = await (await conn.execute("SELECT count(*) AS n FROM customers")).fetchone()
        if existing["n"] and not reset:
            raise AlreadySeeded(
                f"the database already has {existing['n']} customers; use --reset to replace them"
            )
        bar = tqdm(total=counts.customers + counts.vehicles + counts.appointments,
                   unit="rows", desc="seeding", disable=not progress)
        async with conn.transaction():
            await conn.execute(
                "TRUNCATE customers, vehicles, appointments, call_logs RESTART IDENTITY CASCADE"
            )
            await _copy(conn, "customers (id, first_name, last_name, phone, email, created_at)",
                        customers(rng, fake, counts.customers, today), bar)
            fleet = list(vehicles(rng, counts.vehicles, counts.customers, today))
            await _copy(conn, "vehicles (id, customer_id, vin, year, make, model, mileage)",
                        fleet, bar)
            owners = [row[1] for row in fleet]
            await _copy(conn, "appointments (id, customer_id, vehicle_id, service_type,"
                              " scheduled_at, duration_minutes, status, bay, notes, created_at, updated_at)",
                        appointments(rng, settings, counts.appointments, owners, today), bar)
            for table in ("customers", "vehicles", "appointments"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
        bar.close()
        await conn.execute("ANALYZE customers, vehicles, appointments")
        counted = await (await conn.execute(
            "SELECT (SELECT count(*) FROM customers) AS customers,"
            " (SELECT count(*) FROM vehicles) AS vehicles,"
            " (SELECT count(*) FROM appointments) AS appointments")).fetchone()
    await (await cache()).clear("customer:")
    return dict(counted)


async def _copy(conn: AsyncConnection, target: str, rows: Iterable[tuple], bar: tqdm) -> None:
    async with conn.cursor().copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(row)
            bar.update()

