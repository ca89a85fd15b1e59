"""`python -m bot`: start the launcher on HOST:PORT, every unset dependency embedded.
`python -m bot calls` lists the recent calls; `python -m bot calls show CALL_SID` shows one."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile

from bot import call_views
from calendar_adapter.backends import backend
from calendar_adapter.errors import CalendarConfigError
from config import log_privacy
from config.settings import ConfigError, get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="{calls}",
                                     help="without one, the launcher starts")
    call_views.add_commands(commands)
    return parser


def main() -> None:
    args = _parser().parse_args()
    if args.command == "calls":
        sys.exit(call_views.main(args))
    launch()


def launch() -> None:
    settings = get_settings()  # a bad setting stops here with one line
    try:
        backend()  # so does an incomplete calendar configuration
    except CalendarConfigError as exc:
        raise ConfigError(str(exc)) from None

    log_privacy.install()  # first, so Pipecat's announcement on import goes through it too
    # Imported once the configuration is known to be good: Pipecat announces itself on import.
    import uvicorn

    from telephony.serializer import MAX_MESSAGE_BYTES

    # The banner (bot/banner.py) is printed by the app once it is ready, whatever started it.
    # SIGTERM and SIGINT drain the calls before uvicorn shuts down (bot/app.py): the graceful
    # timeout only bounds uvicorn's own wait, afterwards, for connections still open.
    with contextlib.ExitStack() as stack:
        if settings.launcher_processes > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            # Each process writes its metrics there, so /metrics on any of them counts them all
            # (pipeline/metrics.py); a new folder, as files left by an earlier run would count too.
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="service-desk-metrics-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        uvicorn.run("bot.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=settings.launcher_processes, log_level="info", ws="websockets-sansio",
                    ws_max_size=MAX_MESSAGE_BYTES, timeout_graceful_shutdown=30)

if __name__ == "__main__":
    main()
