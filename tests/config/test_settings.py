"""Bad configuration stops start-up with one line naming the variable, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DATABASE_URL", "mysql://x"), ("REDIS_URL", "not a url"), ("SHOP_TIMEZONE", "Mars/Olympus"),
     ("REMINDER_ALLOWLIST", "+12125550123,banana"), ("PORT", "eighty"),
     ("OPENAI_BASE_URL", "ftp://x"), ("SHOP_HOLIDAYS", "2026-02-30"),
     ("REMINDER_CALL_WINDOW", "19:00-09:00"), ("CALENDAR_BACKEND", "outlook"),
     ("DATABASE_POOL_SIZE", "1"), ("LAUNCHER_PROCESSES", "0")],
)
def test_bad_value_names_the_variable(variable: str, value: str, tmp_path) -> None:
    env = {**os.environ, variable: value}
    done = subprocess.run([sys.executable, "-m", "crm", "init"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], done.stderr


def test_allowlist_is_normalised_and_includes_test_number(monkeypatch) -> None:
    from config.settings import Settings

    monkeypatch.setenv("REMINDER_ALLOWLIST", "(212) 555-0123, +1 312 555 0100")
    monkeypatch.setenv("YOUR_TEST_NUMBER", "646-555-0199")
    assert Settings().reminder_allowlist == ["+12125550123", "+13125550100", "+16465550199"]
    monkeypatch.delenv("REMINDER_ALLOWLIST")
    monkeypatch.delenv("YOUR_TEST_NUMBER")
    assert Settings().reminder_allowlist == []
