"""The call's serializer: joined input audio, hostile input dropped and counted, and the call's
own choice at the EndFrame."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

from pipecat.frames.frames import EndFrame, InputAudioRawFrame, InputDTMFFrame

from telephony.serializer import MAX_MEDIA_BYTES, MAX_MESSAGE_BYTES, CallEndingTwilioSerializer


def _media(payload: bytes) -> str:
    return json.dumps({"event": "media", "streamSid": "MZ1",
                       "media": {"payload": base64.b64encode(payload).decode()}})


async def _serializer(on_end: Callable[[], Awaitable[None]] | None = None) -> CallEndingTwilioSerializer:
    async def ended() -> None:
        pass

    serializer = CallEndingTwilioSerializer("MZ1", "CA1", on_end or ended, input_messages=2)
    # The transports hand the serializer the pipeline's setup; it reads the input rate.
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=8000))
    return serializer


async def test_joins_input_messages_and_passes_other_events() -> None:
    ended: list[bool] = []

    async def on_end() -> None:
        ended.append(True)

    serializer = await _serializer(on_end)
    assert await serializer.deserialize(_media(b"\x7f" * 160)) is None  # held for its partner
    joined = await serializer.deserialize(_media(b"\x00" * 160))
    assert isinstance(joined, InputAudioRawFrame)
    assert joined.sample_rate == 8000 and len(joined.audio) == 2 * 320  # 40 ms of 16-bit PCM
    dtmf = await serializer.deserialize(json.dumps(
        {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "0"}}))
    assert isinstance(dtmf, InputDTMFFrame)
    for event in ("connected", "start", "stop", "mark"):  # Twilio's, with nothing for the pipeline
        assert await serializer.deserialize(json.dumps({"event": event, event: {}})) is None
    assert not serializer.dropped
    assert await serializer.serialize(EndFrame()) is None
    assert ended == [True]  # the call decides what happens at its end; no REST hang-up here


async def test_malformed_media_is_dropped_without_losing_the_audio_around_it() -> None:
    serializer = await _serializer()
    assert await serializer.deserialize(_media(b"\x7f" * 160)) is None
    for broken in ({"event": "media"}, {"event": "media", "media": "x"},
                   {"event": "media", "media": {}}, {"event": "media", "media": {"payload": "%%"}},
                   {"event": "media", "media": {"payload": 5}},
                   {"event": "media", "media": {"payload": "é"}}):
        assert await serializer.deserialize(json.dumps(broken)) is None
    assert await serializer.deserialize("not json") is None
    joined = await serializer.deserialize(_media(b"\x00" * 160))
    assert isinstance(joined, InputAudioRawFrame) and len(joined.audio) == 2 * 320
    assert serializer.dropped == {"media without audio": 6, "not JSON": 1}


async def test_what_pipecat_would_raise_on_or_forward_is_dropped_and_counted() -> None:
    serializer = await _serializer()
    unfit: dict[str | bytes, str] = {
        b'{"event": "media"}': "binary frame",
        json.dumps([1, 2]): "not a JSON object",
        "null": "not a JSON object",
        "[" * 4000 + "]" * 4000: "not JSON",  # short enough, but too deep to parse
        json.dumps({"event": "dtmf", "dtmf": "5"}): "dtmf without a key",
        json.dumps({"event": "dtmf", "dtmf": {"digit": ["5"]}}): "dtmf without a key",
        json.dumps({"event": "dtmf"}): "dtmf without a key",
        json.dumps({"event": "hello"}): "unknown event",
        json.dumps({"event": ["media"]}): "unknown event",
        _media(b"\xff" * (MAX_MEDIA_BYTES + 1)): "oversized media",
        " " * (MAX_MESSAGE_BYTES + 1): "oversized message",
    }
    for data in unfit:
        assert await serializer.deserialize(data) is None
    assert serializer.dropped == Counter(unfit.values())
    # A media payload of the largest accepted size still joins its partner.
    assert await serializer.deserialize(_media(b"\xff" * MAX_MEDIA_BYTES)) is None
    joined = await serializer.deserialize(_media(b"\xff" * 160))
    assert isinstance(joined, InputAudioRawFrame) and len(joined.audio) == 2 * (MAX_MEDIA_BYTES + 160)
