"""The dialling policy of reminder runs: who may be called (the allowlist), when (the calling
window, shop time), how fast and how persistently (calls per second, attempts, back-off), and
the numbers and address the calls use. Built from the settings in one place.

The core functions take a `ReminderConfig`, so tests pass values directly and only the CLI
reads the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from config.settings import ConfigError, Settings

END_OF_DAY = time.max  # "24:00"


@dataclass(frozen=True)
class ReminderConfig:
    tz: ZoneInfo
    allowlist: frozenset[str]
    shop_number: str | None  # caller id of reminder calls (TWILIO_PHONE_NUMBER)
    base_url: str  # where Twilio reaches the launcher (PUBLIC_BASE_URL)
    calling_hours: tuple[time, time] = (time(9), time(19))  # shop-local, end excluded
    calls_per_second: float = 1.0
    max_attempts: int = 3
    backoff_seconds: float = 2.0  # before attempt n+1: backoff_seconds * 2 ** (n - 1)
    request_timeout: float = 20.0  # no answer from Twilio by then: outcome unknown

    @classmethod
    def from_settings(cls, settings: Settings) -> ReminderConfig:
        return cls(
            tz=settings.tz,
            allowlist=frozenset(settings.reminder_allowlist),
            shop_number=settings.twilio_phone_number,
            base_url=settings.base_url,
            calling_hours=settings.reminder_call_window,
            calls_per_second=settings.reminder_calls_per_second,
            max_attempts=settings.reminder_max_attempts,
            backoff_seconds=settings.reminder_backoff_seconds,
        )

    def in_calling_hours(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz).time()
        return self.calling_hours[0] <= local < self.calling_hours[1]

    def describe_hours(self) -> str:
        start, end = (("24:00" if t == END_OF_DAY else f"{t:%H:%M}") for t in self.calling_hours)
        return f"{start}-{end} {self.tz.key}"

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return self.backoff_seconds * 2 ** (attempt - 1)


def require_dialling(settings: Settings) -> None:
    """A live run needs a Twilio account, a caller id and an address Twilio can reach."""
    for name in ("twilio_account_sid", "twilio_auth_token", "twilio_phone_number", "public_base_url"):
        if not getattr(settings, name):
            raise ConfigError(f"{name.upper()}: must be set to place reminder calls")

