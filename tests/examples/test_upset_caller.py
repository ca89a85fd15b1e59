"""The plug-in example: an upset caller is flagged once, every frame passes on, and listed in its
setting it is built into a call's pipeline and its flag reaches the call's log."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import InputAudioRawFrame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import run_test
from pipecat.utils.time import time_now_iso8601

import crm
from config.settings import Settings
from crm.identity import CallerAccess, CallerId
from examples.upset_caller import UpsetCaller
from pipeline import plugins
from pipeline.opening import CallStart
from pipeline.session import CallSession
from processors.card_redactor import CardRedactor
from tests.pipeline.plugin_support import SID, call_context


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "caller", time_now_iso8601())


async def test_flags_an_upset_caller_once_and_passes_every_frame_on() -> None:
    flags: list[tuple[str, str]] = []
    sent = [
        InputAudioRawFrame(b"\0\0" * 160, 8000, 1),
        InterimTranscriptionFrame("this is damn", "caller", time_now_iso8601()),  # not final yet
        said("I'm calling about my Civic."),
        said("This is RIDICULOUS, it's the third time I've called!"),
        said("Damn it."),
    ]
    down, _ = await run_test(
        UpsetCaller(on_upset=lambda name, detail: flags.append((name, detail))),
        frames_to_send=sent,
        expected_down_frames=[InputAudioRawFrame, InterimTranscriptionFrame, TranscriptionFrame,
                              TranscriptionFrame, TranscriptionFrame],
    )
    assert [getattr(frame, "text", None) for frame in down] == [getattr(f, "text", None) for f in sent]
    assert flags == [("upset_caller", "caller said: ridiculous, third time")]


async def test_a_calm_caller_is_not_flagged() -> None:
    flags: list[tuple[str, str]] = []
    await run_test(
        UpsetCaller(on_upset=lambda name, detail: flags.append((name, detail))),
        frames_to_send=[said("Hello, I'd like an oil change."), said("Shell gas station, third street.")],
        expected_down_frames=[TranscriptionFrame, TranscriptionFrame],
    )
    assert flags == []


async def test_listed_in_its_setting_it_flags_the_call_in_its_log(
        clean_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSORS_AFTER_STT",
                       "pipeline.own_processors:card_redactor,examples.upset_caller:upset_caller")
    settings = Settings(_env_file=None)
    plugins.check(settings)
    await crm.open_call_log(SID, "inbound", None, None)
    start = CallStart(call_sid=SID, stream_sid="MZ" + "9a" * 16, account_sid=None, direction="inbound",
                      customer_number=None, shop_number=None)
    session = CallSession(start, CallerAccess.of(None, CallerId.WITHHELD), None)
    session.begin()

    plugged = plugins.build(call_context(settings, session.flag, SID))
    assert [type(processor) for processor in plugged["after_stt"]] == [CardRedactor, UpsetCaller]
    down, _ = await run_test(
        Pipeline(plugged["after_stt"]),
        frames_to_send=[said("My card is 4111 1111 1111 1111 and this is ridiculous.")],
        expected_down_frames=[TranscriptionFrame],
    )
    await session.finish()

    assert down[0].text == "My card is [card number] and this is ridiculous."
    log = await crm.get_call_log(SID)
    assert log is not None and log["ended_at"] is not None
    assert [(flag["name"], flag["detail"]) for flag in log["flags"]] == [
        ("upset_caller", "caller said: ridiculous")]
