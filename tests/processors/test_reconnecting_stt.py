"""ReconnectingDeepgramSTTService against the fake Deepgram: a dropped or refused socket comes
back, and what the caller said meanwhile is still transcribed; a Finalize asked for in the
caller's pause goes out at once, and only the answer to the last one is final."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pipecat.frames.frames import (
    DataFrame,
    ErrorFrame,
    Frame,
    TranscriptionFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from processors.reconnecting_stt import FinalizeTranscriptFrame, ReconnectingDeepgramSTTService
from tests.audio import TEXTS, load, silence
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.test_fakes import audio_frames, twilio_to_pcm

RATE = 8000


def stt(fake: FakeDeepgram, reconnect_secs: float = 5.0) -> ReconnectingDeepgramSTTService:
    return ReconnectingDeepgramSTTService(api_key="k", base_url=fake.ws_base_url, sample_rate=RATE,
                                          reconnect_secs=reconnect_secs, buffer_secs=5.0)


async def when(condition: Callable[[], bool], then: Callable[[], Awaitable[object] | None]) -> None:
    """Run `then` as soon as `condition` holds (a fault injected at the right moment)."""
    while not condition():  # noqa: ASYNC110 - the fake offers state, not events
        await asyncio.sleep(0.01)
    result = then()
    if result is not None:
        await result


async def transcribe(service: ReconnectingDeepgramSTTService, frames: list[Frame]) -> tuple[
        list[str], list[Frame]]:
    down, up = await run_test(service, frames_to_send=frames,
                              pipeline_params=PipelineParams(audio_in_sample_rate=RATE))
    return [f.text for f in down if isinstance(f, TranscriptionFrame)], up


@dataclass
class DropNow(DataFrame):
    """Where, in the frames sent, the fake cuts the speech-to-text socket."""


class Dropper(FrameProcessor):
    """Flips the fake's drop switch when a `DropNow` passes, before the frames behind it."""

    def __init__(self, fake: FakeDeepgram) -> None:
        super().__init__()
        self._fake = fake

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, DropNow):
            assert await self._fake.drop_listen() == 1
        else:
            await self.push_frame(frame, direction)


async def test_speech_sent_while_the_socket_was_down_is_transcribed_after_reconnecting() -> None:
    speech = await twilio_to_pcm(load("book_oil_change") + silence(0.8))
    async with FakeDeepgram([TEXTS["book_oil_change"]], api_key="k") as dg:
        service = stt(dg)
        # All the speech goes out within a few ms of the drop, before a reconnect could happen.
        down, _ = await run_test(Pipeline([Dropper(dg), service]), frames_to_send=[
            *audio_frames(await twilio_to_pcm(silence(0.2))), SleepFrame(0.3), DropNow(), SleepFrame(0.02),
            *audio_frames(speech), VADUserStoppedSpeakingFrame(), SleepFrame(1.5)],
            pipeline_params=PipelineParams(audio_in_sample_rate=RATE))

    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == [TEXTS["book_oil_change"]]
    assert len(dg.stt_connections) == 2
    assert dg.stt_connections[1].bytes_received >= sum(map(len, speech))
    assert dg.stt_connections[1].count("Finalize") == 1  # the VAD's, held with the audio


async def test_refused_reconnects_are_retried_until_the_service_comes_back() -> None:
    speech = await twilio_to_pcm(load("yes_thats_right") + silence(0.8))

    async def drop_and_refuse() -> None:
        dg.refuse_listen = 503
        await dg.drop_listen()
        await asyncio.sleep(1.0)
        dg.refuse_listen = None

    async with FakeDeepgram([TEXTS["yes_thats_right"]], api_key="k") as dg:
        fault = asyncio.create_task(when(lambda: bool(dg.stt_connections), drop_and_refuse))
        texts, up = await transcribe(stt(dg), [
            *audio_frames(await twilio_to_pcm(silence(0.2))), SleepFrame(0.3),
            *audio_frames(speech), SleepFrame(2.5)])
        await fault

    assert dg.refused["/v1/listen"] >= 2  # retried, more than once, while refused
    assert texts == [TEXTS["yes_thats_right"]]
    assert not any(isinstance(f, ErrorFrame) and f.processor and not f.processor.is_usable for f in up)


async def test_setup_does_not_wait_for_an_unreachable_service() -> None:
    async with FakeDeepgram([TEXTS["thanks_goodbye"]], api_key="k") as dg:
        dg.refuse_listen = 503
        started = time.monotonic()
        reopen = asyncio.create_task(when(lambda: time.monotonic() - started > 0.8,
                                          lambda: setattr(dg, "refuse_listen", None)))
        texts, _ = await transcribe(stt(dg), [
            *audio_frames(await twilio_to_pcm(load("thanks_goodbye") + silence(0.8))), SleepFrame(2.0)])
        await reopen

    # The caller's words, said before the first connection, were held and sent on it.
    assert texts == [TEXTS["thanks_goodbye"]]
    assert dg.refused["/v1/listen"] >= 1


async def test_gives_up_for_good_once_the_reconnect_window_has_passed() -> None:
    async with FakeDeepgram([], api_key="k") as dg:
        dg.refuse_listen = 503
        service = stt(dg, reconnect_secs=0.5)
        _, up = await transcribe(service, [SleepFrame(1.5)])

    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[-1].processor is service
    assert not service.is_usable


async def test_a_bad_key_is_not_retried() -> None:
    async with FakeDeepgram([], api_key="right") as dg:
        service = ReconnectingDeepgramSTTService(api_key="wrong", base_url=dg.ws_base_url,
                                                 sample_rate=RATE, reconnect_secs=5, buffer_secs=5)
        await transcribe(service, [SleepFrame(0.6)])

    assert len(dg.rejected_handshakes) == 1
    assert not service.is_usable


async def test_only_the_answer_to_the_last_finalize_is_final() -> None:
    # Finalize asked for in a pause the caller went on from, then at the end: both are still
    # unanswered when the first answer comes. It holds only the first words, so it must not
    # end the turn; the second does.
    first, rest = TEXTS["thanks_goodbye"].rstrip("."), TEXTS["book_oil_change"]
    async with FakeDeepgram([f"{first}... {rest}"], api_key="k", final_delay=0.6) as dg:
        down, _ = await run_test(stt(dg), frames_to_send=[
            *audio_frames(await twilio_to_pcm(silence(0.2))), SleepFrame(0.3),
            *audio_frames(await twilio_to_pcm(load("thanks_goodbye") + silence(0.1))), SleepFrame(0.05),
            FinalizeTranscriptFrame(),
            *audio_frames(await twilio_to_pcm(load("book_oil_change") + silence(0.1))), SleepFrame(0.05),
            FinalizeTranscriptFrame(), SleepFrame(1.5)],
            pipeline_params=PipelineParams(audio_in_sample_rate=RATE))

    assert dg.stt_connections[0].count("Finalize") == 2
    finals = [(f.text, f.finalized) for f in down if isinstance(f, TranscriptionFrame)]
    assert finals == [(first, False), (rest, True)]


async def test_the_vads_stop_sends_no_second_finalize_unless_the_caller_spoke_since() -> None:
    speech = await twilio_to_pcm(load("yes") + silence(0.1))
    async with FakeDeepgram([TEXTS["yes"], TEXTS["yes"]], api_key="k", final_delay=0.1) as dg:
        down, _ = await run_test(stt(dg), frames_to_send=[
            *audio_frames(await twilio_to_pcm(silence(0.2))), SleepFrame(0.3),
            *audio_frames(speech), SleepFrame(0.05), FinalizeTranscriptFrame(), SleepFrame(0.1),
            # The voice ended before the Finalize: it already covers everything said.
            VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=time.time() + 0.2), SleepFrame(0.5)],
            pipeline_params=PipelineParams(audio_in_sample_rate=RATE))
        asked_once = dg.stt_connections[0].count("Finalize")
        # A voice that ended after the Finalize (the caller went on): the VAD's stop asks again.
        await run_test(stt(dg), frames_to_send=[
            *audio_frames(await twilio_to_pcm(silence(0.2))), SleepFrame(0.3),
            FinalizeTranscriptFrame(), *audio_frames(speech), SleepFrame(0.05),
            VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=time.time() + 5), SleepFrame(0.5)],
            pipeline_params=PipelineParams(audio_in_sample_rate=RATE))

    assert asked_once == 1
    finals = [(f.text, f.finalized) for f in down if isinstance(f, TranscriptionFrame)]
    assert finals == [(TEXTS["yes"], True)]
    assert dg.stt_connections[1].count("Finalize") == 2
