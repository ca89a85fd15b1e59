"""A whole call with every logger of ours and the root at DEBUG: what the launcher's log
handlers write (the root's, which loguru's records reach too, and uvicorn's) holds no phone
number, no name, no card number and no stream token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from loguru import logger as loguru_logger

from config.log_privacy import OWN_PACKAGES
from processors.card_redactor import PLACEHOLDER
from tests.audio import load
from tests.bot.conftest import DESK_NUMBER, SHOP_NUMBER, Launcher
from tests.bot.test_calls import MARIA, _maria_with_civic, closed_log
from tests.fakes.openai import Call, ToolCalls

CARD = "4111 1111 1111 1111"
SAID = f"My card number is {CARD}, and you can reach me at 212-555-0123."


def written_forms(e164: str) -> list[str]:
    """A US number as a log line might carry it: E.164, URL-encoded, bare digits, national."""
    digits = e164.removeprefix("+1")
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    return [e164, "%2B1" + digits, "1" + digits, digits, f"({area}) {exchange}-{line}",
            f"{area}-{exchange}-{line}", f"{area}.{exchange}.{line}", f"{area} {exchange} {line}"]


@contextmanager
def everything_at_debug() -> Iterator[None]:
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in OWN_PACKAGES)]
    saved = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for each, level in zip(loggers, saved, strict=True):
            each.setLevel(level)


# capsys comes first, so uvicorn's handlers, made as the launcher starts, write into it too.
async def test_a_whole_call_logs_no_number_name_card_or_token(
        capsys: pytest.CaptureFixture[str], launcher: Launcher, database_url: str) -> None:
    await _maria_with_civic(database_url)
    launcher.deepgram.add_script(SAID)
    launcher.policy.add(
        ToolCalls([Call("lookup_customer", {"phone": "212-555-0123"})]),
        ToolCalls([Call("end_call", {"reason": "done"})],
                  text="Thanks, Maria Lopez. Please never read a card number out on the phone."),
    )

    with everything_at_debug():
        # Pipecat writes nothing from INFO up in such a call, so two loguru lines of our own show
        # where its records go: from DEBUG nowhere, from INFO masked into the same output.
        loguru_logger.debug("context for {}", MARIA)
        loguru_logger.info("a loguru line about {}", MARIA)
        caller = await launcher.ring(MARIA)
        async with caller:
            await caller.wait_for_bot_silence(timeout=15)
            await caller.say(load("book_oil_change"))  # heard as SAID
            await caller.wait_closed(timeout=30)
        await launcher.twilio.wait_for_hangup(caller.call_sid, timeout=10)
        log = await closed_log(caller.call_sid)
    written = capsys.readouterr()
    output = written.out + written.err

    assert launcher.deepgram.transcripts == [SAID]  # the caller did say it all
    assert log["transcript"][0]["text"].startswith("Hi Maria")
    # Nor do the call log and the model: the redactor took the card number out of the words.
    heard = f"My card number is {PLACEHOLDER}, and you can reach me at 212-555-0123."
    assert ("caller", heard) in [(turn["role"], turn["text"]) for turn in log["transcript"]]
    assert launcher.openai.requests[0].last_user_text() == heard
    assert "a loguru line about +1******0123" in output
    assert f"POST Request: {launcher.twilio.base_url}" in output  # and libraries' standard ones
    token = caller.custom_parameters["token"]
    private = [*written_forms(MARIA), *written_forms(SHOP_NUMBER), *written_forms(DESK_NUMBER),
               "Maria", "Lopez", CARD, CARD.replace(" ", ""), token, token.partition(".")[2]]
    said = ["card number is", "reach me at", "never read a card number", "thanks for calling"]
    assert [text for text in [*private, *said] if text in output] == []
