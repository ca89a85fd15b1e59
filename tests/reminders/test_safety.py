"""Who may be called, and when: the selection, the allowlist, calling hours, the dry run."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from config.settings import Settings
from crm import db
from reminders import run
from reminders.policy import ReminderConfig
from reminders.selection import day_bounds, select, target_day
from tests.reminders.support import (
    DAY,
    NOW,
    SHOP,
    TZ,
    at,
    config,
    number,
    pinned,
    reminders,
    rows,
    seed,
)


async def test_selects_the_days_scheduled_appointments_with_phone_and_vehicle(fresh) -> None:
    wanted = await seed(2)
    await seed(1, first=10, status="confirmed")
    await seed(1, first=11, status="cancelled")
    await seed(1, first=12, day=DAY + timedelta(days=1))
    await seed(1, first=13, day=DAY - timedelta(days=1))
    async with db.connection() as conn:  # either side of the day's edges, shop time
        for n, moment in ((14, at(DAY, 0, 0) - timedelta(minutes=1)),
                          (15, at(DAY + timedelta(days=1), 0, 0))):
            (made,) = await seed(1, first=n)
            await conn.execute("UPDATE appointments SET scheduled_at = %s WHERE id = %s",
                               (moment, made["id"]))

    found = await select(DAY, TZ)

    assert [a.appointment.id for a in found] == [w["id"] for w in wanted]
    assert [a.phone for a in found] == [number(0), number(1)]
    assert found[0].vehicle == "2019 Honda Civic"
    assert found[0].first_name == "Pat0"
    assert found[0].appointment.start_time == at(DAY, 9)


async def test_an_appointment_without_a_vehicle_is_selected_without_one(fresh) -> None:
    (made,) = await seed(1)
    async with db.connection() as conn:
        await conn.execute("UPDATE appointments SET vehicle_id = NULL WHERE id = %s", (made["id"],))

    (found,) = await select(DAY, TZ)

    assert (found.appointment.vehicle_id, found.vehicle) == (None, None)


def test_target_day_is_tomorrow_in_the_shops_time_zone() -> None:
    # 23:30 in New York is already the next day in UTC; tomorrow is still the 3rd.
    assert target_day(datetime(2026, 3, 2, 23, 30, tzinfo=TZ), TZ) == DAY
    assert target_day(datetime(2026, 3, 3, 4, 30, tzinfo=TZ), TZ) == date(2026, 3, 4)
    start, end = day_bounds(date(2026, 3, 8), TZ)  # clocks go forward that night
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def parse_window(value: str) -> tuple[time, time]:
    return Settings(reminder_call_window=value).reminder_call_window


def test_calling_hours_are_shop_time_with_the_end_excluded() -> None:
    hours = config(calling_hours=parse_window("09:00-19:00"))
    assert hours.in_calling_hours(at(DAY, 9))
    assert hours.in_calling_hours(at(DAY, 18, 59))
    assert not hours.in_calling_hours(at(DAY, 19))
    assert not hours.in_calling_hours(at(DAY, 8, 59))
    assert not hours.in_calling_hours(datetime(2026, 3, 3, 23, 0, tzinfo=TZ).astimezone(TZ))
    # 14:00 UTC is 09:00 in New York: inside; 13:59 UTC is not
    assert hours.in_calling_hours(datetime(2026, 3, 3, 14, 0).replace(tzinfo=TZ).astimezone(TZ))
    assert parse_window("08:30-24:00")[1] == time.max
    for bad in ("19:00-09:00", "9-17", "09:00", "09:00-09:00"):
        with pytest.raises(ValueError):
            parse_window(bad)


async def test_numbers_outside_the_allowlist_are_never_dialled(fresh, twilio, telephony) -> None:
    made = await seed(6)
    allowed = {number(1), number(4)}
    lines: list[str] = []

    summary = await run(config(allowlist=allowed), telephony, clock=pinned(), report=lines.append)

    assert sorted(r.get("To") for r in twilio.creates) == sorted(allowed)
    assert len(twilio.created_calls) == 2
    assert summary.exit_code() == 0
    assert len(summary.dialled) == 2 and summary.skipped == {"not_allowlisted": 4}
    stored = {r["to_number"]: r for r in await reminders()}
    assert {n: r["state"] for n, r in stored.items()} == {
        m["phone"]: ("dialled" if m["phone"] in allowed else "skipped") for m in made}
    assert {r["reason"] for r in stored.values() if r["state"] == "skipped"} == {"not_allowlisted"}
    assert sum("skipped (not_allowlisted)" in line for line in lines) == 4

    # The request: our Url (appointment in the query), machine detection, the status callback.
    first = twilio.creates[0]
    appointment = next(m for m in made if m["phone"] == first.get("To"))
    assert first.get("From") == SHOP
    assert first.get("Url") == f"http://launcher.test/twilio/reminder?appointment_id={appointment['id']}"
    assert first.get("MachineDetection") == "DetectMessageEnd"
    assert first.get("StatusCallback") == "http://launcher.test/twilio/status"
    # The call log is open from the moment Twilio returned the SID, shop to customer.
    (log,) = await rows("SELECT * FROM call_logs WHERE call_sid = %s", (first.response["sid"],))
    assert (log["direction"], log["from_number"], log["to_number"], log["customer_id"]) == (
        "outbound", SHOP, appointment["phone"], appointment["customer_id"])

    # A re-run reports the same skips and dials nobody again.
    again = await run(config(allowlist=allowed), telephony, clock=pinned())
    assert len(twilio.creates) == 2
    assert again.skipped == {"not_allowlisted": 4, "already_reminded": 2}
    assert again.exit_code() == 0


async def test_an_empty_allowlist_dials_nobody(fresh, twilio, telephony) -> None:
    await seed(5)
    lines: list[str] = []
    summary = await run(config(allowlist=()), telephony, clock=pinned(), report=lines.append)
    assert twilio.requests == []
    assert summary.skipped == {"not_allowlisted": 5} and summary.exit_code() == 0
    assert "REMINDER_ALLOWLIST is empty: nobody will be called" in lines


@pytest.mark.parametrize("clock", [at(DAY - timedelta(days=1), 19, 0), at(DAY - timedelta(days=1), 8, 59),
                                   datetime(2026, 3, 2, 3, 0, tzinfo=TZ)])
async def test_outside_calling_hours_nobody_is_dialled_or_claimed(fresh, twilio, telephony, clock) -> None:
    made = await seed(4)
    everyone = {m["phone"] for m in made}

    summary = await run(config(allowlist=everyone), telephony, clock=pinned(clock))

    assert twilio.requests == []
    assert await reminders() == []  # refused before any claim
    assert summary.exit_code() == 3
    assert summary.skipped == {"outside_calling_hours": 4}
    assert "outside calling hours (09:00-19:00 America/New_York)" in summary.render()

    # The same run inside the hours calls everyone (the refusal left nothing behind).
    inside = await run(config(allowlist=everyone), telephony, clock=pinned(at(DAY - timedelta(days=1), 9)))
    assert inside.exit_code() == 0 and len(inside.dialled) == 4
    assert len(twilio.creates) == 4


async def test_a_run_stops_dialling_when_the_calling_hours_end(fresh, twilio, telephony) -> None:
    made = await seed(5)
    times = iter([at(DAY - timedelta(days=1), 18, 59)] * 3 + [at(DAY - timedelta(days=1), 19, 0)] * 10)

    summary = await run(config(allowlist={m["phone"] for m in made}), telephony, clock=lambda: next(times))

    assert len(twilio.creates) == 2
    assert summary.skipped == {"outside_calling_hours": 3}
    assert summary.exit_code() == 3
    assert [r["appointment_id"] for r in await reminders()] == [m["id"] for m in made[:2]]


async def test_appointments_already_passed_are_not_called(fresh, twilio, telephony) -> None:
    made = await seed(3, day=NOW.date())  # today at 9:00, 9:30, 10:00; it is 17:00
    late = await seed(1, day=NOW.date(), first=20)
    async with db.connection() as conn:
        await conn.execute("UPDATE appointments SET scheduled_at = %s WHERE id = %s",
                           (at(NOW.date(), 17, 30), late[0]["id"]))
    everyone = {m["phone"] for m in made + late}

    summary = await run(config(allowlist=everyone), telephony, day=NOW.date(), clock=pinned())

    assert [r.get("To") for r in twilio.creates] == [late[0]["phone"]]
    assert summary.skipped == {"appointment_passed": 3}


async def test_one_call_per_number_and_day(fresh, twilio, telephony) -> None:
    """A customer with two cars booked the same day is called once, not twice."""
    made = await seed(2, phones=[number(0), number(1)])
    second_car = await seed(1, first=5, phones=[number(0)])  # same customer, another appointment
    everyone = {number(0), number(1)}

    summary = await run(config(allowlist=everyone), telephony, clock=pinned())

    assert sorted(r.get("To") for r in twilio.creates) == sorted(everyone)
    assert summary.skipped == {"number_already_called": 1}
    (line,) = [e for e in summary.entries if e.verdict == "number_already_called"]
    assert line.due.appointment.id == second_car[0]["id"]
    assert line.detail == f"called for appointment {made[0]['id']}"
    assert summary.exit_code() == 0


async def test_dry_run_prints_the_plan_and_touches_nothing(fresh, twilio, telephony) -> None:
    made = await seed(4)
    allowed = {number(0), number(1), number(2)}
    # Appointment 0 was reminded by an earlier run.
    await run(config(allowlist={number(0)}), telephony, clock=pinned())
    requests, before = len(twilio.requests), await reminders()
    runs = await rows("SELECT count(*) AS n FROM reminder_runs")
    lines: list[str] = []

    summary = await run(config(allowlist=allowed), None, dry_run=True, clock=pinned(), report=lines.append)

    assert len(twilio.requests) == requests  # nothing dialled
    assert await reminders() == before  # nothing written
    assert await rows("SELECT count(*) AS n FROM reminder_runs") == runs
    assert summary.exit_code() == 0
    assert [line.split(" appointment")[0].strip() for line in lines] == [
        "would skip (already_reminded)", "would dial", "would dial", "would skip (not_allowlisted)"]
    assert f"appointment {made[1]['id']} at 09:30, Pat1 +1******0101 (oil change, 2019 Honda Civic)" \
        in lines[1]
    rendered = summary.render()
    assert "dry run: nothing dialled or written" in rendered
    assert "would dial           2" in rendered
    assert "already_reminded 1, not_allowlisted 1" in rendered


async def test_dry_run_outside_calling_hours_still_shows_the_plan(fresh) -> None:
    await seed(2)
    lines: list[str] = []
    summary = await run(config(allowlist={number(0)}), None, dry_run=True,
                        clock=pinned(at(DAY, 7)), day=DAY, report=lines.append)
    assert summary.exit_code() == 3
    assert lines[0] == ("outside calling hours (09:00-19:00 America/New_York):"
                        " a live run now would dial nobody")
    assert [line.split(" appointment")[0].strip() for line in lines[1:]] == [
        "would dial", "would skip (not_allowlisted)"]
    assert await reminders() == []


def test_config_from_settings(monkeypatch) -> None:
    from config.settings import Settings

    monkeypatch.setenv("REMINDER_ALLOWLIST", "(212) 555-0123")
    monkeypatch.setenv("TWILIO_PHONE_NUMBER", "312 555 0199")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://shop.example/")
    monkeypatch.setenv("REMINDER_CALL_WINDOW", "08:30-18:00")
    monkeypatch.setenv("REMINDER_CALLS_PER_SECOND", "2.5")
    monkeypatch.setenv("REMINDER_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("REMINDER_BACKOFF_SECONDS", "0.5")
    made = ReminderConfig.from_settings(Settings())
    assert made.allowlist == {"+12125550123"}
    assert (made.shop_number, made.base_url) == (SHOP, "https://shop.example")
    assert made.calling_hours == (time(8, 30), time(18))
    assert (made.calls_per_second, made.max_attempts, made.backoff_seconds) == (2.5, 4, 0.5)
    assert [made.backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
