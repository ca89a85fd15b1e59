"""card_redactor: a card number, however said, becomes a placeholder; other numbers and frames pass."""

from __future__ import annotations

from typing import Any

import pytest
from pipecat.frames.frames import (
    EagerTranscriptionFrame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    TextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import run_test
from pipecat.transcriptions.language import Language

from processors.card_redactor import PLACEHOLDER, CardRedactor, redact_card_numbers

CARD = "4111 1111 1111 1111"
AT = "2026-11-24T10:00:00Z"

CallerText = type[TranscriptionFrame] | type[InterimTranscriptionFrame] | type[EagerTranscriptionFrame]


@pytest.mark.parametrize(("said", "redacted"), [
    # Every card length, odd and even (the Luhn doubling starts from the right).
    pytest.param("4222222222222", PLACEHOLDER, id="visa-13"),
    pytest.param("30569309025904", PLACEHOLDER, id="diners-14"),
    pytest.param("3782 822463 10005", PLACEHOLDER, id="amex-15-grouped"),
    pytest.param("5555 5555 5555 4444", PLACEHOLDER, id="mastercard-16"),
    pytest.param("4586 8344 9786 9073 662", PLACEHOLDER, id="19-digits"),
    # However the digits are separated.
    pytest.param(CARD, PLACEHOLDER, id="spaces"),
    pytest.param("4111-1111-1111-1111", PLACEHOLDER, id="hyphens"),
    pytest.param("4111111111111111", PLACEHOLDER, id="one-group"),
    pytest.param("4111.1111.1111.1111", PLACEHOLDER, id="dots"),
    pytest.param("4,111,111,111,111,111", PLACEHOLDER, id="thousands-commas"),
    # Spoken digit by digit.
    pytest.param("four one one one one one one one one one one one one one one one", PLACEHOLDER,
                 id="digit-words"),
    pytest.param("Four, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one.",
                 f"{PLACEHOLDER}.", id="words-with-deepgram-punctuation"),
    pytest.param("six oh one one oh oh oh nine nine oh one three nine four two four", PLACEHOLDER,
                 id="oh-for-zero"),
    pytest.param("six o one one o o o nine nine o one three nine four two four", PLACEHOLDER,
                 id="o-for-zero"),
    pytest.param("six zero one one zero zero zero nine nine zero one three nine four two four", PLACEHOLDER,
                 id="zero"),
    pytest.param("double five double five double five double five double five double five double four "
                 "double four", PLACEHOLDER, id="double"),
    pytest.param("four triple one triple one triple one triple one triple one", PLACEHOLDER, id="triple"),
    pytest.param("FOUR-ONE-ONE-ONE one-One-oNe-one double-one double-one one one one one", PLACEHOLDER,
                 id="case-and-hyphenated-words"),
    pytest.param("4111 one one one one 1111 1111", PLACEHOLDER, id="digits-and-words-mixed"),
    # In a sentence: the rest of it stays.
    pytest.param(f"Sure, it's {CARD}, is that okay?", f"Sure, it's {PLACEHOLDER}, is that okay?",
                 id="in-a-sentence"),
    pytest.param(f"It's {CARD} 12/26 123, thanks.", f"It's {PLACEHOLDER}, thanks.",
                 id="expiry-and-code-said-right-after-go-too"),
    pytest.param(f"the number is 12 {CARD}", f"the number is {PLACEHOLDER}",
                 id="numbers-said-right-before-go-too"),
    pytest.param(f"I gave someone {CARD} once", f"I gave someone {PLACEHOLDER} once",
                 id="digit-words-inside-words-are-not-numbers"),
    pytest.param(f"{CARD} expiring 12/26", f"{PLACEHOLDER} expiring 12/26", id="a-word-ends-the-run"),
    pytest.param(f"{CARD} or 5555 5555 5555 4444", f"{PLACEHOLDER} or {PLACEHOLDER}", id="two-cards"),
    pytest.param(f"{CARD}, and call me on 212-555-0123", f"{PLACEHOLDER}, and call me on 212-555-0123",
                 id="phone-number-after-a-card"),
])
def test_a_card_number_and_its_run_of_numbers_become_the_placeholder(said: str, redacted: str) -> None:
    assert redact_card_numbers(said) == redacted


@pytest.mark.parametrize("said", [
    pytest.param("212-555-0123", id="phone"),
    pytest.param("+1 212 555 0123", id="phone-international"),
    pytest.param("(212) 555-0123", id="phone-parentheses"),
    pytest.param("one two one two, five five five, oh one two three", id="phone-spoken"),
    pytest.param("My VIN is 2HGFC2F59KH000001", id="vin"),
    pytest.param("2 H G F C 2 F 5 9 K H 0 0 0 0 0 1", id="vin-spelled-out"),
    pytest.param("December 3rd at 10:30", id="date-and-time"),
    pytest.param("12/03/2026 at 10:30 am", id="numeric-date"),
    pytest.param("It has 41,000 miles on it", id="mileage"),
    pytest.param("4111 1111 1111 1112", id="fails-luhn"),
    # Spoken digits are each a token, so no stretch of 13 or more of these may pass either.
    pytest.param("four one one one one one one one one one one one one one one three", id="words-fail-luhn"),
    pytest.param("My appointment is 48213", id="appointment-id"),
    pytest.param("411111111117", id="luhn-valid-but-12-digits"),
    pytest.param("00004111111111111111", id="luhn-valid-but-20-digits"),
    pytest.param("74111111111111111", id="card-inside-a-longer-group"),
    pytest.param("I need one oil change and two new tires", id="number-words-in-a-sentence"),
    pytest.param("Oh, someone from the Ohio store said to double check the brakes", id="ordinary-sentence"),
])
def test_other_numbers_and_sentences_are_kept(said: str) -> None:
    assert redact_card_numbers(said) == said


def deepgram_result(transcript: str) -> dict[str, Any]:
    """The part of Deepgram's response that repeats what was heard."""
    words = [{"word": word, "punctuated_word": word} for word in transcript.split()]
    return {"type": "Results", "channel": {"alternatives": [{"transcript": transcript, "words": words}]}}


@pytest.mark.parametrize("kind", [TranscriptionFrame, InterimTranscriptionFrame, EagerTranscriptionFrame])
async def test_caller_transcriptions_come_out_redacted_without_the_raw_response(kind: CallerText) -> None:
    said = f"My card is {CARD}"
    down, _ = await run_test(
        CardRedactor(),
        frames_to_send=[kind(said, "caller", AT, Language.EN_US, result=deepgram_result(said))],
        expected_down_frames=[kind],
    )
    assert down[0].text == f"My card is {PLACEHOLDER}"
    assert down[0].result is None
    assert (down[0].user_id, down[0].timestamp, down[0].language) == ("caller", AT, Language.EN_US)


async def test_a_transcription_without_a_card_number_passes_unchanged() -> None:
    said = "Call me on 212-555-0123"
    heard = TranscriptionFrame(said, "caller", AT, result=deepgram_result(said), finalized=True)
    down, _ = await run_test(
        CardRedactor(), frames_to_send=[heard], expected_down_frames=[TranscriptionFrame]
    )
    assert down[0] is heard
    assert (heard.text, heard.result, heard.finalized) == (said, deepgram_result(said), True)


@pytest.mark.parametrize("direction", [FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM])
async def test_other_frames_pass_untouched(direction: FrameDirection) -> None:
    # Only the caller's recognised words are this processor's business, even with a card number in them.
    sent = [TextFrame(CARD), UserStartedSpeakingFrame(), TTSSpeakFrame(CARD)]
    expected = [TextFrame, UserStartedSpeakingFrame, TTSSpeakFrame]
    down, up = await run_test(
        CardRedactor(),
        frames_to_send=sent,
        frames_to_send_direction=direction,
        expected_down_frames=expected if direction == FrameDirection.DOWNSTREAM else [],
        expected_up_frames=expected if direction == FrameDirection.UPSTREAM else [],
    )
    passed = down if direction == FrameDirection.DOWNSTREAM else up
    assert all(out is frame for out, frame in zip(passed, sent, strict=True))
    assert [passed[0].text, passed[2].text] == [CARD, CARD]


async def test_a_number_split_over_two_transcriptions_is_redacted_in_the_turn() -> None:
    # Speech-to-text cut the reading in two; the user aggregator joined them into one turn.
    context = LLMContext(messages=[
        {"role": "user", "content": "Book me in please"},
        {"role": "assistant", "content": f"I can't take {CARD} here"},
        {"role": "user", "content": "It's 4111 1111 1111 1111"},
        {"role": "user", "content": [{"type": "text", "text": "or 5555 5555 5555 4444"}]},
    ])
    assert [redact_card_numbers(part) for part in ("It's 4111 1111", "1111 1111")] == [
        "It's 4111 1111", "1111 1111"]  # neither transcription alone holds a card number
    down, _ = await run_test(
        CardRedactor(), frames_to_send=[LLMContextFrame(context)], expected_down_frames=[LLMContextFrame])
    assert down[0].context is context
    assert [m["content"] for m in context.get_messages()] == [
        "Book me in please",
        f"I can't take {CARD} here",  # the agent's own words are not the caller's to redact
        f"It's {PLACEHOLDER}",
        [{"type": "text", "text": f"or {PLACEHOLDER}"}],
    ]
