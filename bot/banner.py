"""What the launcher prints once it is ready: where Twilio and a developer reach it, and what
is still missing. Printed, not logged: the test page's link holds its token, which log lines
never show."""

from __future__ import annotations

from bot.browser_test import page_url
from config.settings import Settings
from pipeline.services import not_ready
from telephony.streams import stream_url


def banner(settings: Settings) -> list[str]:
    local = f"http://{settings.host}:{settings.port}"
    lines = [
        f"Twilio voice webhook:  {settings.base_url}/twilio/voice (POST)",
        f"Twilio status webhook: {settings.base_url}/twilio/status (POST)",
        f"Twilio text webhook:   {settings.base_url}/twilio/sms (POST; STOP/START replies)",
        f"Media stream:          {stream_url(settings)}",
        f"Talk in a browser:     {page_url(settings)}" if settings.test_page_enabled
        else "Talk in a browser:     off (set TEST_PAGE=true to serve it on this machine)",
        f"Health:                {local}/health",
    ]
    lines += [f"Not ready: {need}; until then calls get an apology" for need in not_ready(settings)]
    if "local" in (settings.stt_provider, settings.tts_provider):
        lines.append("Speech is offline (Whisper tiny.en, Piper): for trying the agent; a phone line"
                     " wants Deepgram's (DEEPGRAM_API_KEY)")
    if not settings.twilio_auth_token:
        lines.append("TWILIO_AUTH_TOKEN is not set: Twilio webhooks are refused (403)")
    if not settings.database_url:
        lines.append("DATABASE_URL is not set: using the embedded PostgreSQL in .data/"
                     " (its log: .data/embedded.log)")
    if not settings.redis_url:
        lines.append("REDIS_URL is not set: using the embedded Redis in .data/")
    return lines
