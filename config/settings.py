"""The one configuration object: the contract's environment variables (and `.env`).

Every entry point calls `get_settings()` first; a bad value ends the program with one
line naming the variable (exit code 2) instead of a traceback deep inside a call.
"""

from __future__ import annotations

import re
import sys
from datetime import date, time
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.log_privacy import mask
from config.phones import e164, region_of

# Opening hours as (open, close) pairs per ISO weekday name; lunch is the gap between pairs.
DEFAULT_HOURS: dict[str, list[tuple[time, time]]] = {
    day: [(time(9), time(12)), (time(13), time(17))] for day in ("mon", "tue", "wed", "thu", "fri")
} | {"sat": [(time(9), time(13))], "sun": []}

# Minutes per service type a dealership offers; the seed and the calendar read the same table.
DEFAULT_SERVICE_DURATIONS: dict[str, int] = {
    "oil change": 30,
    "tire rotation": 30,
    "state inspection": 30,
    "battery replacement": 30,
    "brake service": 90,
    "diagnostics": 60,
    "wheel alignment": 60,
    "air conditioning service": 60,
    "scheduled maintenance": 90,
    "transmission service": 120,
}


# "package.module:factory" (the factory may be an attribute path), or an entry point's name.
_PROCESSOR_NAME = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?")


def _url(value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value in (None, ""):
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ValueError(f"must be a {' or '.join(s + '://' for s in schemes)} URL, not {value!r}")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    public_base_url: str | None = None

    database_url: str | None = None
    redis_url: str | None = None

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o"
    # The language model's time budget, so that a caller never sits in silence: a filler when no
    # words are on their way LLM_FILLER_SECONDS after the caller's turn (or a tool's start); each
    # attempt must start answering within LLM_FIRST_TOKEN_SECONDS and never pause longer, the whole
    # answer must be in within LLM_ANSWER_SECONDS; one retry while nothing was said, then an apology.
    llm_filler_seconds: float = Field(1.0, gt=0, le=10)
    llm_first_token_seconds: float = Field(2.0, gt=0, le=60)
    llm_answer_seconds: float = Field(10.0, gt=0, le=300)
    deepgram_api_key: str | None = None
    deepgram_base_url: str | None = None

    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_phone_number: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    # Texts to customers (a booking, move or cancellation, a reminder left on voicemail): on
    # while a Twilio account and number are set, unless turned off (`off`/`false`).
    sms_confirmations: bool | None = None

    calendar_backend: Literal["local", "google"] = "local"
    google_calendar_id: str | None = None
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_refresh_token: str | None = None
    google_calendar_api_url: str | None = None

    shop_timezone: str = "America/New_York"
    # An empty allowlist dials nobody; YOUR_TEST_NUMBER (the seed guide's name) is one more entry.
    reminder_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    your_test_number: str | None = None
    # Reminder calls (`python -m reminders`): shop-local calling hours ("HH:MM-HH:MM", end
    # excluded, "24:00" is midnight), pace, and retries of a refused dial (back-off doubles).
    reminder_call_window: Annotated[tuple[time, time], NoDecode] = (time(9), time(19))
    reminder_calls_per_second: float = Field(1.0, gt=0, le=100)
    reminder_max_attempts: int = Field(3, ge=1, le=10)
    reminder_backoff_seconds: float = Field(2.0, ge=0, le=300)
    service_desk_number: str | None = None
    # A transfer rings the desk this long while the caller holds with the agent, then the agent
    # offers a call-back; outside SERVICE_DESK_HOURS (JSON like SHOP_HOURS, which it defaults to;
    # closed on SHOP_HOLIDAYS) it offers the call-back without ringing.
    transfer_timeout_seconds: float = Field(25.0, gt=0, le=120)
    service_desk_hours: dict[str, list[tuple[time, time]]] | None = None
    idle_reprompt_seconds: float = Field(8.0, gt=0)
    # Connections each process (launcher, reminder job) may hold; N of them must stay below the
    # server's max_connections, with room for the jobs and an operator (README: Capacity).
    database_pool_size: int = Field(20, ge=2, le=500)
    # Launcher processes sharing one port (uvicorn's workers), e.g. one per core; each takes
    # MAX_CONCURRENT_CALLS and opens its own DATABASE_POOL_SIZE connections.
    launcher_processes: int = Field(1, ge=1, le=64)
    # Calls one launcher process takes at once; past it callers hear a busy message and are
    # sent to the service desk, rather than every caller getting a slow agent.
    max_concurrent_calls: int = Field(10, ge=1, le=10_000)
    # On SIGTERM, how long active calls may continue before the agent wraps them up.
    drain_seconds: float = Field(120.0, ge=0)
    call_log_retention_days: int = Field(90, ge=1)
    # Call-log writes the database cannot take wait in Redis, or in this file when Redis is down
    # too (it holds transcripts: created private to the launcher's user), and are written every
    # this many seconds once the database answers again.
    call_log_journal_path: str = ".data/call-log-journal.jsonl"
    call_log_journal_replay_seconds: float = Field(5.0, gt=0, le=300)
    # After a call, the advisor's summary is one model request; a failed one is tried again this
    # many seconds later, doubling each time (crm/summaries.py: MAX_ATTEMPTS tries in all).
    summary_retry_seconds: float = Field(60.0, gt=0, le=3600)
    # The browser test page lets its user claim any caller number: off unless asked for, or
    # while the launcher only listens on this machine and has no public address.
    test_page: bool | None = None
    # Pipecat's OpenTelemetry spans (a conversation, its turns, each service's work), sent to the
    # standard OTEL_EXPORTER_OTLP_* endpoint (pipeline/tracing.py); the words said stay out.
    otel_tracing: bool = False

    # Which implementation serves each stage of the call pipeline: a provider name from
    # pipeline/services.py or "package.module:factory" for one of your own. Speech is Deepgram's
    # when its key is set, else the offline pair ("local"), so that a laptop needs no speech key.
    stt_provider: str = ""
    stt_model: str = "nova-2-phonecall"
    llm_provider: str = "openai"
    tts_provider: str = ""
    tts_voice: str = "aura-2-thalia-en"
    # A second voice for when TTS_PROVIDER fails (same names as TTS_PROVIDER); none by default,
    # then clips recorded in advance stand in.
    tts_fallback_provider: str | None = None
    # How long the greeting may take to start playing before it is said again (the retry gets
    # TTS_RETRY_TIMEOUT_SECONDS), then on the second voice, then from a clip. Later words get
    # TTS_FILLER_SECONDS from the end of the model's answer, shorter so that the caller still
    # hears the agent within the silence budget: then a recorded "One moment, please." plays
    # (once per caller turn) while they are said again.
    tts_start_timeout_seconds: float = Field(1.5, gt=0, le=10)
    tts_filler_seconds: float = Field(1.0, gt=0, le=10)
    tts_retry_timeout_seconds: float = Field(1.0, gt=0, le=10)
    # Speech-to-text reconnecting: how long to keep trying before handing the caller to a
    # person, and how much of the caller's audio to hold meanwhile, sent once reconnected.
    stt_reconnect_seconds: float = Field(5.0, gt=0, le=60)
    stt_buffer_seconds: float = Field(5.0, gt=0, le=30)
    # "smart-turn" asks a local model whether the caller finished; "silence" waits a fixed pause.
    turn_detection: Literal["smart-turn", "silence"] = "smart-turn"
    turn_silence_seconds: float = Field(0.6, gt=0, le=5)
    # With Smart-Turn, how long the caller may stay quiet after the VAD's stop when it judged
    # them not finished, before the turn ends anyway (Pipecat's fallback is 3 s, which the
    # caller waits out). Finished turns it judged unfinished are the slowest replies
    # (bench/call_bench.py); a pause after finished words longer than 0.2 s + this ends the turn.
    turn_incomplete_seconds: float = Field(0.4, gt=0, le=10)
    # In either mode, how long the caller may stay quiet after words a sentence cannot end on
    # ("I need", "um", "for my") before the turn ends anyway: longer than a pause mid-sentence.
    turn_unfinished_seconds: float = Field(1.0, gt=0, le=10)
    # The caller speaking over the agent: "pause" holds the agent's voice at once and decides
    # from the words and their length whether it was a backchannel ("mm-hmm": the agent goes on)
    # or an interruption; "immediate" cuts the agent off at the first sound, as Pipecat does.
    barge_in: Literal["pause", "immediate"] = "pause"
    backchannel_seconds: float = Field(0.8, gt=0, le=3)
    # How far ahead of what the caller hears the agent's audio is sent: what a pause cannot stop.
    voice_lead_seconds: float = Field(0.04, ge=0.02, le=2)
    # While the agent talks, caller audio this many dB quieter than the agent's own voice is
    # taken for its echo (a speakerphone) and not heard; 0 turns the gate off.
    echo_gate_db: float = Field(10.0, ge=0, le=40)
    # How much speech confirms that the caller started talking (and interrupts the agent), and
    # how loud it must be (0-1, smoothed): quieter sound is background, not the caller.
    # The defaults (two of Silero's 32 ms windows, a gate of 0.4) interrupt the agent sooner than
    # Pipecat's (0.2 s, 0.6); bench/call_bench.py and bench/vad_bench.py measure both sides.
    vad_start_seconds: float = Field(0.064, ge=0.03, le=1)
    vad_min_volume: float = Field(0.4, ge=0, le=1)
    # Frame processors plugged into each call's pipeline at its named points (pipeline/plugins.py):
    # comma-separated "package.module:factory" names (or entry point names), built in this order
    # for every call. The defaults are our own optional processors; an empty value removes them.
    processors_after_stt: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["pipeline.own_processors:card_redactor"])
    processors_before_llm: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["pipeline.own_processors:card_redactor"])
    processors_after_llm: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["pipeline.own_processors:silence_budget"])
    processors_before_tts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["pipeline.own_processors:speech_guard"])
    processors_after_tts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Shop rules (calendar); defaults are a typical dealership service department.
    shop_name: str = "the service department"
    shop_address: str | None = None  # at the end of the texts to customers, when set
    shop_bays: int = Field(3, ge=1, le=100)
    shop_slot_minutes: int = Field(30, ge=5, le=240)
    shop_min_lead_minutes: int = Field(60, ge=0)
    shop_max_days_ahead: int = Field(60, ge=1)
    shop_hours: dict[str, list[tuple[time, time]]] = Field(default_factory=lambda: DEFAULT_HOURS)
    shop_holidays: Annotated[list[date], NoDecode] = Field(default_factory=list)
    service_durations: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_SERVICE_DURATIONS),
        validation_alias=AliasChoices("service_durations", "shop_service_durations"),
    )
    default_service_minutes: int = Field(60, ge=5)

    @field_validator("public_base_url", "openai_base_url", "twilio_api_base_url",
                     "google_calendar_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _url(value, ("http", "https"))

    @field_validator("deepgram_base_url")
    @classmethod
    def _deepgram_url(cls, value: str | None) -> str | None:
        return _url(value, ("http", "https", "ws", "wss"))

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return _url(value, ("postgresql", "postgres"))

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return _url(value, ("redis", "rediss", "unix"))

    @field_validator("shop_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("reminder_call_window", mode="before")
    @classmethod
    def _split_window(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        start, sep, end = value.partition("-")
        try:
            if not sep:
                raise ValueError
            window = tuple(time.max if part.strip() == "24:00" else time.fromisoformat(part.strip())
                           for part in (start, end))
        except ValueError:
            raise ValueError(f"use HH:MM-HH:MM, not {value!r}") from None
        if window[0] >= window[1]:
            raise ValueError(f"calling hours {value!r} end before they start")
        return window

    @field_validator("reminder_allowlist", "shop_holidays", "processors_after_stt", "processors_before_llm",
                     "processors_after_llm", "processors_before_tts", "processors_after_tts",
                     mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("processors_after_stt", "processors_before_llm", "processors_after_llm",
                     "processors_before_tts", "processors_after_tts")
    @classmethod
    def _processor_names(cls, value: list[str]) -> list[str]:
        # Only the spelling here: the names are imported at start-up (pipeline/plugins.py:check).
        for name in value:
            if not _PROCESSOR_NAME.fullmatch(name):
                raise ValueError(f"use package.module:factory (or an entry point's name), not {name!r}")
        return value

    @field_validator("shop_hours", "service_desk_hours")
    @classmethod
    def _weekdays(cls, value: dict[str, list[tuple[time, time]]] | None) -> dict | None:
        if value is None:
            return None
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        unknown = set(value) - set(days)
        if unknown:
            raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(days)}")
        for periods in value.values():
            for start, end in periods:
                if start >= end:
                    raise ValueError(f"opening period {start}-{end} ends before it starts")
        return {day: sorted(value.get(day, [])) for day in days}

    @field_validator("service_durations")
    @classmethod
    def _service_names(cls, value: dict[str, int]) -> dict[str, int]:
        if any(minutes <= 0 for minutes in value.values()):
            raise ValueError("service durations must be positive minutes")
        return {name.strip().lower(): minutes for name, minutes in value.items()}

    @model_validator(mode="after")
    def _speech_providers(self) -> Settings:
        default = "deepgram" if self.deepgram_api_key else "local"
        self.stt_provider = self.stt_provider or default
        self.tts_provider = self.tts_provider or default
        return self

    @model_validator(mode="after")
    def _phones(self) -> Settings:
        entries = [*self.reminder_allowlist, *([self.your_test_number] if self.your_test_number else [])]
        try:
            self.reminder_allowlist = sorted({e164(item, self.phone_region) for item in entries})
        except ValueError as exc:
            raise ValueError(f"REMINDER_ALLOWLIST: {exc}") from None
        for name in ("twilio_phone_number", "service_desk_number"):
            value = getattr(self, name)
            if value:
                try:
                    setattr(self, name, e164(value, "US"))
                except ValueError as exc:
                    raise ValueError(f"{name.upper()}: {exc}") from None
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.shop_timezone)

    @property
    def phone_region(self) -> str:
        """Region for numbers spoken without a country code: the shop's own number's."""
        return (region_of(self.twilio_phone_number) if self.twilio_phone_number else None) or "US"

    @property
    def texts_enabled(self) -> bool:
        account = self.twilio_account_sid and self.twilio_auth_token and self.twilio_phone_number
        return bool(account) and self.sms_confirmations is not False

    @property
    def test_page_enabled(self) -> bool:
        if self.test_page is not None:
            return self.test_page
        return self.public_base_url is None and self.host in ("127.0.0.1", "::1", "localhost")

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")


class ConfigError(SystemExit):
    """Exit with one line naming the bad setting (exit code 2)."""

    def __init__(self, message: str) -> None:
        # The message may quote the bad value: a URL's password stays out of terminals and logs.
        print(f"configuration error: {mask(message)}", file=sys.stderr)
        super().__init__(2)


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"]).upper()
    message = error["msg"].removeprefix("Value error, ")
    return f"{name}: {message}" if name else message


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
