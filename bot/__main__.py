"""`python -m bot`: start the launcher on HOST:PORT, every unset dependency embedded."""

from __future__ import annotations

import argparse
import logging
import sys

from calendar_adapter.backends import backend
from calendar_adapter.errors import CalendarConfigError
from crm.settings import ConfigError, get_settings


def main() -> None:
    argparse.ArgumentParser(prog="python -m bot", description=__doc__).parse_args()
    settings = get_settings()  # a bad setting stops here with one line
    try:
        backend()  # so does an incomplete calendar configuration
    except CalendarConfigError as exc:
        raise ConfigError(str(exc)) from None

    # Imported once the configuration is known to be good: Pipecat announces itself on import.
    import uvicorn
    from loguru import logger

    from bot.twilio_webhooks import stream_url
    from pipeline.services import missing_keys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Pipecat logs through loguru; at DEBUG it would write every prompt, caller records included.
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    print(f"Twilio voice webhook:  {settings.base_url}/twilio/voice (POST)")
    print(f"Twilio status webhook: {settings.base_url}/twilio/status (POST)")
    print(f"Media stream:          {stream_url(settings)}")
    print(f"Browser test call:     http://{settings.host}:{settings.port}/test")
    print(f"Health:                http://{settings.host}:{settings.port}/health")
    for key, purposes in missing_keys(settings).items():
        print(f"{key} is not set: calls get an apology instead of {' and '.join(purposes)}")
    if not settings.twilio_auth_token:
        print("TWILIO_AUTH_TOKEN is not set: Twilio webhooks are refused (403)")
    if not settings.database_url:
        print("DATABASE_URL is not set: using the embedded PostgreSQL in .data/")
    if not settings.redis_url:
        print("REDIS_URL is not set: using the embedded Redis in .data/")
    uvicorn.run("bot.app:create_app", factory=True, host=settings.host, port=settings.port,
                log_level="info", ws="websockets-sansio", timeout_graceful_shutdown=30)


if __name__ == "__main__":
    main()
