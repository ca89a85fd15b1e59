"""Takes payment card numbers out of what the caller said, before any later stage reads it."""

from __future__ import annotations

import re
from itertools import accumulate, takewhile
from typing import Any

from pipecat.frames.frames import (
    EagerTranscriptionFrame,
    Frame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

PLACEHOLDER = "[card number]"

_CARD_LENGTHS = range(13, 20)  # from old 13-digit Visas to 19-digit Maestro and UnionPay cards

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_TIMES = {"double": 2, "triple": 3}

# What speech-to-text or the caller puts between the parts of one number: spaces, Deepgram's
# commas and full stops between spoken digits, hyphens, dots, and the slash of an expiry date.
# A colon (10:30) or any word ends the number.
_GLUE = r"[\s,./\-–—]+"
_WORD = "|".join(_DIGIT_WORDS)
# One number token: "double"/"triple" and the digit it repeats, a digit group, or a digit word.
# It must be a whole word, so "3rd", "someone", "Ohio" and a VIN hold none.
_TOKEN = rf"(?<![^\W_])(?:(?:{'|'.join(_TIMES)}){_GLUE}(?:[0-9]|{_WORD})|[0-9]+|{_WORD})(?![^\W_])"
_TOKENS = re.compile(_TOKEN, re.IGNORECASE)
_RUN = re.compile(rf"{_TOKEN}(?:{_GLUE}{_TOKEN})*", re.IGNORECASE)


def redact_card_numbers(text: str) -> str:
    """`text` with every run of number tokens that holds a card number replaced by `PLACEHOLDER`.

    A run is the number tokens said in a row with only `_GLUE` between them; the whole run
    goes, so an expiry date or security code said right after the card number goes with it.
    """
    return _RUN.sub(_redact_run, text)


def _redact_run(run: re.Match[str]) -> str:
    tokens = [_token_digits(token) for token in _TOKENS.findall(run.group())]
    return PLACEHOLDER if _holds_card_number(tokens) else run.group()


def _token_digits(token: str) -> str:
    """'4111' -> '4111', 'Oh' -> '0', 'double-four' -> '44'."""
    *times, digit = re.split(_GLUE, token.lower())
    return _DIGIT_WORDS.get(digit, digit) * (_TIMES[times[0]] if times else 1)


def _holds_card_number(tokens: list[str]) -> bool:
    """Whether some tokens in a row make a card number.

    Windows start and end at token edges only: a random stretch of a long digit string
    passes the Luhn check one time in ten.
    """
    return any(
        len(digits) in _CARD_LENGTHS and _passes_luhn(digits)
        for start in range(len(tokens))
        for digits in takewhile(lambda d: len(d) < _CARD_LENGTHS.stop, accumulate(tokens[start:]))
    )


def _passes_luhn(digits: str) -> bool:
    # Every second digit from the right is doubled, and a two-digit product counts as the
    # sum of its digits (divmod(14, 10) -> 1 + 4).
    return sum(sum(divmod(int(d) * (1 + i % 2), 10)) for i, d in enumerate(reversed(digits))) % 10 == 0


class CardRedactor(FrameProcessor):
    """Rewrites what the caller said so that no card number reaches a later stage.

    Pipecat has no such processor: its only redaction masks credentials in error messages.
    Directly after speech-to-text it rewrites each transcription (final, interim and eager),
    so the call log, the user aggregator, the turn strategies and the LLM only ever see the
    placeholder; a redacted frame also loses `result`, the raw speech-to-text response, which
    repeats the transcript word by word and which nothing downstream reads. Speech-to-text
    often splits a number read out slowly over two transcriptions, which are only joined into
    one turn by the user aggregator: after the aggregator, the same processor rewrites the
    caller's turns in the context (`LLMContextFrame`) before the LLM reads them.
    """

    def __init__(self, **kwargs: Any) -> None:
        # Direct mode: frames are handled in the pushing task, not through this processor's two
        # queues; it only rewrites text, and every caller audio frame passes here.
        super().__init__(enable_direct_mode=True, **kwargs)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)

        if isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame, EagerTranscriptionFrame)):
            redacted = redact_card_numbers(frame.text)
            if redacted != frame.text:
                # In place, so the frame keeps its id, timestamps and `finalized` flag.
                frame.text = redacted
                frame.result = None
        elif isinstance(frame, LLMContextFrame):
            _redact_caller_turns(frame.context.get_messages())

        await self.push_frame(frame, direction)


def _redact_caller_turns(messages: list[Any]) -> None:
    """The caller's messages, rewritten in place (the context keeps them for later turns)."""
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = redact_card_numbers(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = redact_card_numbers(part["text"])
