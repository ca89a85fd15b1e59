"""Speech-to-text is asked for the caller's words at the start of each pause of their turn,
before the VAD calls the end of their speech, and only once per pause; a final from before
the pause does not end the turn."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    STTMetadataFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import run_test
from pipecat.utils.time import time_now_iso8601

from config.settings import Settings
from processors.reconnecting_stt import FinalizeTranscriptFrame, ReconnectingDeepgramSTTService
from tests.audio import SAMPLE_RATE, TEXTS, load, pauses, silence
from tests.fakes.deepgram import FakeDeepgram
from tests.pipeline.test_unfinished_turns import caller_with_turns, in_real_time


@pytest.mark.parametrize("name", ["book_oil_change", "paused_civic"])
async def test_each_pause_asks_for_the_words_before_the_vad_stops(name: str) -> None:
    # Recorded phone audio in real time, through our speech-to-text client against the fake
    # (finals 250 ms after each Finalize) and the caller's turn logic with Smart-Turn.
    caller, turns = caller_with_turns(Settings(_env_file=None, turn_detection="smart-turn"))
    async with FakeDeepgram([TEXTS[name]], final_delay=0.25) as deepgram:
        stt = ReconnectingDeepgramSTTService(api_key="key", base_url=deepgram.ws_base_url,
                                             reconnect_secs=5, buffer_secs=5)
        _, up = await run_test(Pipeline([stt, caller]),
                               frames_to_send=in_real_time(load(name) + silence(1.5)),
                               pipeline_params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE))
        finals = [final for final in deepgram.finals if final.text]
        finalizes = deepgram.stt_connections[0].count("Finalize")

    # Between each start of speech and the VAD's stop, one request, sent before the stop.
    asked, stops = 0, 0
    for frame in up:
        if isinstance(frame, VADUserStartedSpeakingFrame):
            asked = 0
        elif isinstance(frame, FinalizeTranscriptFrame):
            asked += 1
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            stops += 1
            assert asked >= 1
    assert stops >= 1
    # At most once per pause inside the sentence, and once at its end.
    requests = sum(isinstance(frame, FinalizeTranscriptFrame) for frame in up)
    assert requests <= len(pauses(name, shortest=0.08)) + 1
    # Every Finalize the fake got was one of those: the VAD's stop asked for nothing more.
    assert finalizes == requests
    # And the turn is the whole sentence, answered once its last words were in.
    assert [text for _, text in turns] == [" ".join(final.text for final in finals)]
    assert turns[0][0] >= finals[-1].at


async def test_a_final_from_before_the_pause_does_not_end_the_turn() -> None:
    # A final for the first words arrives while the caller is still talking (the answer to a
    # request in a pause they went on from). At the end of the sentence Smart-Turn judges it
    # finished, but the turn must wait for the final holding the rest; the speech-to-text
    # safety net is 2 s here, so only that final can end the turn.
    caller, turns = caller_with_turns(Settings(_env_file=None, turn_detection="smart-turn"))
    speech = in_real_time(load("book_oil_change"))
    first, rest = "Hi.", "I'd like to book an oil change."
    frames = [STTMetadataFrame(service_name="stt", ttfs_p99_latency=2.0), *speech[:50],
              TranscriptionFrame(first, "caller", time_now_iso8601(), finalized=True), *speech[50:],
              *in_real_time(silence(0.6)),
              TranscriptionFrame(rest, "caller", time_now_iso8601(), finalized=True),
              *in_real_time(silence(1.0))]
    await run_test(caller, frames_to_send=frames,
                   pipeline_params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE))
    assert [text for _, text in turns] == [f"{first} {rest}"]
