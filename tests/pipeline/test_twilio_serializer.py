"""The call's serializer: joined input audio, and the call's own choice at the EndFrame."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

from pipecat.frames.frames import EndFrame, InputAudioRawFrame, InputDTMFFrame

from pipeline.twilio_serializer import CallEndingTwilioSerializer


def _media(payload: bytes) -> str:
    return json.dumps({"event": "media", "streamSid": "MZ1",
                       "media": {"payload": base64.b64encode(payload).decode()}})


async def test_joins_input_messages_and_passes_other_events() -> None:
    ended: list[bool] = []

    async def on_end() -> None:
        ended.append(True)

    serializer = CallEndingTwilioSerializer("MZ1", "CA1", on_end, input_messages=2)
    # The transport hands the serializer the pipeline's setup; only the input rate is read.
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=8000))
    assert await serializer.deserialize(_media(b"\x7f" * 160)) is None  # held for its partner
    joined = await serializer.deserialize(_media(b"\x00" * 160))
    assert isinstance(joined, InputAudioRawFrame)
    assert joined.sample_rate == 8000 and len(joined.audio) == 2 * 320  # 40 ms of 16-bit PCM
    dtmf = await serializer.deserialize(json.dumps(
        {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "0"}}))
    assert isinstance(dtmf, InputDTMFFrame)
    assert await serializer.serialize(EndFrame()) is None
    assert ended == [True]  # the call decides what happens at its end; no REST hang-up here


async def test_malformed_media_is_dropped_without_losing_the_audio_around_it() -> None:
    async def on_end() -> None:
        pass

    serializer = CallEndingTwilioSerializer("MZ1", "CA1", on_end, input_messages=2)
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=8000))
    assert await serializer.deserialize(_media(b"\x7f" * 160)) is None
    for broken in ({"event": "media"}, {"event": "media", "media": "x"},
                   {"event": "media", "media": {}}, {"event": "media", "media": {"payload": "%%"}}):
        assert await serializer.deserialize(json.dumps(broken)) is None
    assert await serializer.deserialize("not json") is None
    joined = await serializer.deserialize(_media(b"\x00" * 160))
    assert isinstance(joined, InputAudioRawFrame) and len(joined.audio) == 2 * 320
