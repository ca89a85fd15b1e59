"""Open start times: the rules' grid, minus times too soon or too far ahead, minus times when
no single bay is free for the whole service, minus blocks on the shop calendar.

One query reads the active appointments of the days asked about; the rest is arithmetic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from calendar_adapter import inputs
from calendar_adapter.backends import backend
from calendar_adapter.errors import CalendarError, SlotUnavailable
from calendar_adapter.rules import ShopRules
from calendar_adapter.speech import say_day
from calendar_adapter.store import Occupied, occupied
from crm import db

ALTERNATIVES = 3
# How far alternatives are looked for; a shop booked solid for two weeks says so.
_SEARCH_DAYS = 14


def _free(
    rules: ShopRules,
    day: date,
    minutes: int,
    earliest: datetime,
    taken: list[Occupied],
    blocks: list[tuple[datetime, datetime]],
) -> list[datetime]:
    length = timedelta(minutes=minutes)
    by_bay: dict[int, list[Occupied]] = {bay: [] for bay in range(1, rules.bays + 1)}
    for item in taken:
        by_bay.setdefault(item.bay, []).append(item)
    bays = [by_bay[bay] for bay in range(1, rules.bays + 1)]
    slots = []
    for start in rules.starts(day, minutes):
        end = start + length
        if start < earliest or any(b_start < end and start < b_end for b_start, b_end in blocks):
            continue
        # The whole service stays in one bay, so one bay must be free from start to end.
        if any(all(not (o.start < end and start < o.end) for o in bay) for bay in bays):
            slots.append(start)
    return slots


async def open_slots(
    rules: ShopRules,
    first: date,
    last: date,
    minutes: int,
    now: datetime,
    *,
    ignore: int | None = None,
    customer: int | None = None,
) -> dict[date, list[datetime]]:
    """Open starts per bookable day in [first, last]; `ignore` is an appointment being moved,
    which must not block its own new time. For a `customer`, their own appointments close
    the times they overlap: one customer cannot be in two bays at once."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    periods = {day: rules.periods(day) for day in days if rules.today(now) <= day <= rules.last_day(now)}
    periods = {day: found for day, found in periods.items() if found}
    if not periods:
        return {}
    start = min(found[0][0] for found in periods.values())
    end = max(found[-1][1] for found in periods.values())
    async with db.connection() as conn:
        taken = await occupied(conn, start, end, ignore)
    blocks = await backend().blocked(start, end)
    blocks += [(item.start, item.end) for item in taken if item.customer_id == customer]
    earliest = now + rules.lead
    slots = {}
    for day, found in periods.items():
        # Each day is checked against its own appointments only, not the whole window's.
        opens, closes = found[0][0], found[-1][1]
        that_day = [item for item in taken if item.start < closes and opens < item.end]
        slots[day] = _free(rules, day, minutes, earliest, that_day, blocks)
    return slots


async def alternatives(
    rules: ShopRules, near: datetime, minutes: int, now: datetime, *,
    ignore: int | None = None, customer: int | None = None,
) -> list[datetime]:
    """The open starts closest to `near` on its day, then the first start of following days,
    in shop time (they are only ever spoken). Best effort: when the calendar cannot be read,
    a refusal simply comes without them."""
    # Past the booking horizon, the last bookable day is the nearest offer.
    first = min(max(rules.local(near).date(), rules.today(now)), rules.last_day(now))
    last = min(first + timedelta(days=_SEARCH_DAYS), rules.last_day(now))
    try:
        slots = await open_slots(rules, first, last, minutes, now, ignore=ignore, customer=customer)
    except CalendarError:
        return []
    same_day = slots.pop(rules.local(near).date(), [])
    chosen = sorted(sorted(same_day, key=lambda start: abs(start - near))[:ALTERNATIVES])
    for day in sorted(slots):
        if len(chosen) >= ALTERNATIVES:
            break
        if slots[day]:
            chosen.append(slots[day][0])
    return [rules.local(start) for start in chosen]


async def check(
    rules: ShopRules, day: str | date | datetime, service_type: str | None, now: datetime
) -> dict[str, Any]:
    """The `check_availability` answer; a day without openings gets a reason and the next
    openings (the first start of the following open days) instead of slots."""
    answer: dict[str, Any] = {
        "date": str(day),
        "service_type": None,
        "duration_minutes": rules.default_minutes,
        "slots": [],
    }
    near = now
    try:
        if (service_type or "").strip():  # no service named: the default length
            service = rules.service(service_type)
            answer.update(service_type=service.name, duration_minutes=service.minutes)
        asked = inputs.parse_day(day, rules.tz)
        answer["date"] = asked.isoformat()
        near = datetime.combine(asked, time(), rules.tz).astimezone(UTC)
        rules.check_day(asked, now)
        slots = (await open_slots(rules, asked, asked, answer["duration_minutes"], now)).get(asked)
        if not slots:
            raise SlotUnavailable(f"There are no open times left on {say_day(asked)}.")
    except CalendarError as exc:
        found = await alternatives(rules, near, answer["duration_minutes"], now)
        return {
            **answer,
            "reason": exc.reason,
            "alternatives": [when.isoformat() for when in found],
        }
    return {**answer, "slots": [rules.local(slot).isoformat() for slot in slots]}
