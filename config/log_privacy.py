"""What a process logs stays private: `install()` once per process, at every entry point.

Every log record, from our code or a library, through the standard library or loguru
(Pipecat's logger), has phone numbers and secrets masked when it is created, so whichever
handler writes it (uvicorn's own, ours, one added later) writes the masked text. Names,
transcripts and prompts have no pattern to mask: libraries write them only below INFO
(websocket frames with what the caller and the agent said, OpenAI request bodies, Pipecat's
context dumps), so below INFO only our own code's records get through, and our code never
logs them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from loguru import logger as loguru_logger

from config.phones import masked

OWN_PACKAGES = frozenset({"bot", "pipeline", "processors", "crm", "calendar_adapter", "reminders", "config",
                          "telephony"})
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_SECRET = r"[\w-]*(?:token|secret|password|passwd|api[_-]?key|apikey|signature)"
_SECRETS: list[tuple[re.Pattern[str], str]] = [
    # URLs, forms, keyword reprs: ?token=..., auth_token='...'
    (re.compile(rf"(?<![\w-])({_SECRET})=(['\"]?)[^&\s'\"<>]+", re.IGNORECASE), r"\1=\2***"),
    # JSON and dict reprs: "token": "...", as in a media stream's start message
    (re.compile(rf"([\"']{_SECRET}[\"']\s*:\s*)([\"'])(?:\\.|(?!\2).)*\2", re.IGNORECASE), r"\1\2***\2"),
    # TwiML: <Parameter name="token" value="..."/>
    (re.compile(rf"(name=([\"']){_SECRET}\2\s+value=)([\"']).*?\3", re.IGNORECASE), r"\1\3***\3"),
    # Authorization header values: Bearer, Basic (Twilio), Token (Deepgram)
    (re.compile(r"\b(Bearer|Basic|Token)\s+[\w.~+/=-]{16,}", re.IGNORECASE), r"\1 ***"),
    # scheme://user:password@host
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+@", re.IGNORECASE), r"\1***@"),
]
# PostgreSQL errors quote data: the whole row of a violated constraint (names, number, email),
# the JSON it could not take (a transcript turn), a statement's parameters.
_DATABASE_ECHOES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(Failing row contains \().*$", re.MULTILINE), r"\1***)"),
    (re.compile(r"(JSON data, line \d+: ).*$", re.MULTILINE), r"\1***"),
    (re.compile(r"(portal parameter \$\d+ = ).*$", re.MULTILINE), r"\1***"),
]
_EMAIL = (re.compile(r"\b[\w.+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b"), r"***@\1")
# "+" (or %2B in a URL) and 7-15 digits, in groups; not inside a word (Twilio SIDs are hex).
_INTERNATIONAL = re.compile(r"(?<![\w+])(\+|%2[Bb])(\d{1,3}(?:[ .-]?(?:\(\d{2,4}\)|\d{2,})){1,5})(?![\w*])")
# US numbers without "+": (NXX) NXX-XXXX and the like, N being 2-9, so neither epoch seconds
# (they start with 1) nor ports, process ids or decimals match.
_NATIONAL = re.compile(r"(?<![\w+*%])(?<!\d[.,])(?:1[ .-]?)?(?:\([2-9]\d\d\) ?|[2-9]\d\d[ .-]?)"
                       r"[2-9]\d\d[ .-]?\d{4}(?![\w*])(?![.,]\d)")


def _international(match: re.Match[str]) -> str:
    prefix, number = match.groups()
    if not 7 <= sum(ch.isdigit() for ch in number) <= 15:
        return match.group(0)
    return prefix + masked("+" + number)[1:]


def mask(text: str) -> str:
    """`text` with phone numbers, secrets, email addresses and data quoted by the database masked."""
    for pattern, replacement in (*_SECRETS, *_DATABASE_ECHOES, _EMAIL):
        text = pattern.sub(replacement, text)
    text = _INTERNATIONAL.sub(_international, text)
    return _NATIONAL.sub(lambda match: masked(match.group(0)), text)


_TRACEBACKS = logging.Formatter()


def _mask_record(record: logging.LogRecord) -> None:
    # Arguments one by one first: uvicorn's access formatter unpacks them.
    if isinstance(record.args, tuple):
        record.args = tuple(mask(arg) if isinstance(arg, str) else arg for arg in record.args)
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it when a handler formats it
        message = None
    if message is not None and (private := mask(message)) != message:
        record.msg, record.args = private, ()
    if record.exc_info:
        record.exc_text = mask(_TRACEBACKS.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = mask(record.stack_info)


class _MaskingFactory:
    """The log record factory: every record is masked before any handler sees it."""

    def __init__(self, make: Callable[..., logging.LogRecord]) -> None:
        self._make = make

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._make(*args, **kwargs)
        _mask_record(record)
        return record


class _OwnCodeBelowInfo(logging.Filter):
    """Below INFO, only records of our own packages pass (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or record.name.partition(".")[0] in OWN_PACKAGES


class _Stderr(logging.StreamHandler):
    """Writes to `sys.stderr` as it is at each record, like `logging.lastResort`, so a stderr
    replaced after start-up (redirected, captured) still gets the lines."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr


class _ToStandardLogging(logging.Handler):
    """loguru sink: a Pipecat record goes on as a standard record of the same logger name, so
    the same levels, handlers, filter and masking apply to it."""

    def emit(self, record: logging.LogRecord) -> None:
        _mask_record(record)  # again: loguru put a placeholder over the masked traceback
        target = logging.getLogger(record.name)
        if target.isEnabledFor(record.levelno):
            target.handle(record)


def _handlers() -> Iterator[logging.Handler]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for each in loggers:
        if isinstance(each, logging.Logger):
            yield from each.handlers


def install(level: int = logging.INFO) -> None:
    """Log from `level` up to stderr, privately, in this process; idempotent.

    Call it after any other logging configuration: uvicorn configures its own handlers
    (`uvicorn.error`, `uvicorn.access`, which do not propagate to the root) before it calls
    the app factory, so `create_app` calling this gives them the same filter.
    """
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _MaskingFactory):
        logging.setLogRecordFactory(_MaskingFactory(factory))
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(handler, _Stderr) for handler in root.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
    for handler in _handlers():
        if not any(isinstance(f, _OwnCodeBelowInfo) for f in handler.filters):
            handler.addFilter(_OwnCodeBelowInfo())
    # Pipecat at DEBUG logs every prompt and transcript; loguru's tracebacks would show the
    # values of local variables (diagnose).
    loguru_logger.remove()
    # A format function, unlike a format string, leaves the traceback to the standard handlers.
    loguru_logger.add(_ToStandardLogging(), level="INFO", format=lambda _record: "{message}",
                      backtrace=False, diagnose=False)
