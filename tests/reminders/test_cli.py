"""`python -m reminders` as a scheduler runs it: a separate process, configured from the
environment, against the test database and the fake Twilio REST API over HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.twilio_rest import FakeTwilioRest
from tests.reminders.support import SHOP, TZ, number, reminders, rows, seed


def environment(twilio: FakeTwilioRest, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "REMINDER_"))}
    env.update(
        SHOP_TIMEZONE="America/New_York", PUBLIC_BASE_URL="https://launcher.example",
        TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
        TWILIO_PHONE_NUMBER=SHOP, TWILIO_API_BASE_URL=twilio.base_url,
        REMINDER_CALL_WINDOW="00:00-24:00", REMINDER_CALLS_PER_SECOND="50",
        REMINDER_BACKOFF_SECONDS="0.01",
    )
    env.update(extra)
    return env


async def reminders_cli(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reminders", *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 90)
    return process.returncode, out.decode(), err.decode()


def shop_today() -> datetime:
    return datetime.now(TZ)


async def test_help_documents_the_options_and_exit_codes(tmp_path, twilio) -> None:
    code, out, _ = await reminders_cli(environment(twilio), tmp_path, "--help")
    assert code == 0
    for text in ("--date YYYY-MM-DD", "--dry-run", "0  every selected appointment",
                 "1  a dial failed", "2  bad configuration", "3  refused: outside calling hours"):
        assert text in out


async def test_dry_run_lists_tomorrows_plan_and_touches_nothing(fresh, tmp_path, twilio) -> None:
    tomorrow = shop_today().date() + timedelta(days=1)
    made = await seed(3, day=tomorrow)
    env = environment(twilio, REMINDER_ALLOWLIST=f"{number(0)},{number(2)}")

    code, out, err = await reminders_cli(env, tmp_path, "--dry-run")

    assert code == 0, err
    lines = out.splitlines()
    plan = [line.split(" appointment ")[0].strip() for line in lines if line.startswith("would")]
    assert plan == ["would dial", "would skip (not_allowlisted)", "would dial"]
    # First names and masked numbers only: this output goes to cron mail and scheduler logs.
    assert f"appointment {made[2]['id']} at 10:00, Pat2 +1******0102 (oil change" in out
    assert "Driver" not in out and number(2) not in out
    assert f"reminders for {tomorrow:%A %Y-%m-%d}, calling hours 00:00-24:00 America/New_York" \
           " (dry run: nothing dialled or written)" in out
    assert "  would dial           2" in out
    assert "  skipped              1   not_allowlisted 1" in out
    assert lines[-1] == "exit 0: every selected appointment was dialled or deliberately skipped"
    assert twilio.requests == []
    assert await reminders() == []


def closed_window() -> str:
    """Calling hours that exclude the next few minutes of real shop time."""
    now = shop_today()
    return "12:00-12:01" if now.hour == 0 and now.minute < 10 else "00:00-00:01"


@pytest.mark.parametrize("dry_run", [True, False])
async def test_outside_calling_hours_exits_3(fresh, tmp_path, twilio, dry_run) -> None:
    day = shop_today().date() + timedelta(days=2)
    await seed(2, day=day)
    env = environment(twilio, REMINDER_ALLOWLIST=f"{number(0)},{number(1)}",
                      REMINDER_CALL_WINDOW=closed_window())

    code, out, err = await reminders_cli(env, tmp_path, "--date", day.isoformat(),
                                         *(["--dry-run"] if dry_run else []))

    assert code == 3, out + err
    assert "exit 3: outside calling hours" in out
    assert twilio.requests == []
    assert await reminders() == []


async def test_two_live_processes_at_once_call_each_customer_once(fresh, tmp_path, twilio) -> None:
    day = shop_today().date() + timedelta(days=3)
    made = await seed(30, day=day)
    allowed = [m["phone"] for m in made[:20]]
    env = environment(twilio, REMINDER_ALLOWLIST=",".join(allowed))

    results = await asyncio.gather(*(reminders_cli(env, tmp_path, "--date", day.isoformat())
                                     for _ in range(2)))

    for code, out, err in results:
        assert code == 0, out + err
        assert out.splitlines()[-1].startswith("exit 0: every selected appointment was dialled")
        assert "  selected            30" in out
    assert Counter(r.get("To") for r in twilio.creates) == Counter(allowed)
    dialled = sum(line.startswith("dialled ") for _, out, _ in results for line in out.splitlines())
    assert dialled == 20
    first = twilio.creates[0]
    assert first.get("Url").startswith("https://launcher.example/twilio/reminder?appointment_id=")
    assert first.get("MachineDetection") == "DetectMessageEnd"
    states = Counter(r["state"] for r in await reminders())
    assert states == {"dialled": 20, "skipped": 10}
    finished = await rows("SELECT summary FROM reminder_runs WHERE day = %s AND finished_at IS NOT NULL",
                          (day,))
    assert sum(r["summary"]["dialled"] for r in finished) == 20


async def test_answers_gone_astray_are_settled_by_twilios_list_of_calls(fresh, tmp_path, twilio) -> None:
    """Both calls were created and answered 500; the list shows the second one, but could not be
    read for the first: that one waits for a person, exit 1, and a second run rings nobody."""
    day = shop_today().date() + timedelta(days=4)
    made = await seed(2, day=day)
    env = environment(twilio, REMINDER_ALLOWLIST=",".join(m["phone"] for m in made))
    twilio.create_then("error", count=2)
    twilio.fail_next(1, 503, endpoint="list")

    code, out, err = await reminders_cli(env, tmp_path, "--date", day.isoformat())

    assert code == 1, out + err
    stuck, found = (next(line for line in out.splitlines() if f"appointment {m['id']} " in line)
                    for m in made)
    assert stuck.startswith("NEEDS ATTENTION") and "Pat0 +1******0100" in stuck
    assert "Twilio's list of calls could not tell: Twilio answered HTTP 503" in stuck
    (sid,) = twilio.calls_to(made[1]["phone"])
    assert found.startswith("dialled") and f"{sid}, found in Twilio's list of calls after: Twilio answered" \
        " HTTP 500" in found
    assert "  dialled              1   1 found in Twilio's list of calls after an unclear answer" in out
    assert "  needs attention      1" in out
    assert out.splitlines()[-1] == "exit 1: 0 failed, 1 need a person"
    assert not any(m["phone"] in out + err for m in made)

    code, out, _ = await reminders_cli(env, tmp_path, "--date", day.isoformat())

    assert code == 1 and len(twilio.creates) == 2
    assert [len(twilio.calls_to(m["phone"])) for m in made] == [1, 1]
    assert "could not tell whether Twilio placed the call" in out


@pytest.mark.parametrize(("variable", "value"), [
    ("REMINDER_CALL_WINDOW", "19:00-09:00"), ("REMINDER_CALLS_PER_SECOND", "0"),
    ("REMINDER_MAX_ATTEMPTS", "many"), ("TWILIO_PHONE_NUMBER", ""), ("PUBLIC_BASE_URL", ""),
])
async def test_bad_configuration_names_the_setting_and_exits_2(tmp_path, twilio, variable, value) -> None:
    env = environment(twilio, **{variable: value})
    if not value:
        del env[variable]

    code, _, err = await reminders_cli(env, tmp_path, "--dry-run")

    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], err
    assert twilio.requests == []
