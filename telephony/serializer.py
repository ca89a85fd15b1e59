"""Twilio's media-stream serializer, with three changes for a phone agent at scale.

Ending: Pipecat's serializer hangs up when it serializes the EndFrame, after the last audio was
paced out and before the socket closes. That moment is right for every ending, so it is kept,
but what happens there is the call's choice: hang up, or redirect the live call to a service
advisor (a hang-up there would cut the transfer off).

Input: Twilio sends 20 ms of audio per message. Each becomes a frame that every stage handles
and speech recognition forwards over its own websocket, so joining `input_messages` of them
into one frame divides that per-frame cost, for at most (n - 1) * 20 ms of added delay.

Hostile input: Pipecat's serializer raises on a binary frame, JSON that is not an object or is
nested too deep, or a `dtmf` that is not an object, and its transport then stops reading and
cancels the call; it passes a media payload of any size on to speech-to-text, where a 2 MiB
message is minutes of billed audio that holds up other calls. So every message is vetted
first: one no Twilio stream sends is dropped and counted (`dropped`), the audio around it kept.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import EndFrame, Frame
from pipecat.serializers.twilio import TwilioFrameSerializer

MAX_MESSAGE_BYTES = 8 * 1024
"""The largest websocket message a media stream may send; `python -m bot` gives it to uvicorn
(`ws_max_size`, which closes the stream with 1009), and the handshake and this serializer
enforce it too, for a launcher started without it. Twilio's `media` messages are 200-300 bytes
and `start` with our parameters under 1 KiB: room to spare for more parameters, while no
message of a Twilio stream comes near it."""

MAX_MEDIA_BYTES = 4 * 160
"""The largest mu-law payload taken as audio: 80 ms. Twilio and the browser test page send
20 ms (160 bytes) per message; this leaves a sender room to bundle a few, while anything
larger is no live call's audio."""

IGNORED_EVENTS = ("connected", "start", "stop", "mark")  # Twilio's own; nothing for the pipeline
DTMF_KEYS = tuple(KeypadEntry)  # a tuple: `in` compares, where a set would hash a JSON list


class UnfitMessage(Exception):
    """A message no Twilio media stream sends; its text is a short, fixed reason fit for logs."""


def stream_message(data: str | bytes) -> dict[str, Any]:
    """One media-stream message as Twilio sends them: a JSON object in a text frame of bounded
    size (raises UnfitMessage otherwise)."""
    if not isinstance(data, str):
        raise UnfitMessage("binary frame")
    if len(data) > MAX_MESSAGE_BYTES:  # characters: cheap, and never more than the bytes
        raise UnfitMessage("oversized message")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        raise UnfitMessage("not JSON") from None
    if not isinstance(message, dict):
        raise UnfitMessage("not a JSON object")
    return message


def _audio(message: dict[str, Any]) -> bytes:
    """The mu-law audio of a `media` message."""
    media = message.get("media")
    payload = media.get("payload") if isinstance(media, dict) else None
    try:
        audio = base64.b64decode(payload, validate=True) if isinstance(payload, str) else b""
    except ValueError:  # not base64, or not even ASCII
        audio = b""
    if not audio:
        raise UnfitMessage("media without audio")
    if len(audio) > MAX_MEDIA_BYTES:
        raise UnfitMessage("oversized media")
    return audio


class CallEndingTwilioSerializer(TwilioFrameSerializer):
    def __init__(self, stream_sid: str, call_sid: str, on_end: Callable[[], Awaitable[None]],
                 input_messages: int = 1) -> None:
        super().__init__(stream_sid, call_sid,
                         params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
        self._on_end = on_end
        self._input_messages = input_messages
        self._pending: list[bytes] = []
        self.dropped: Counter[str] = Counter()  # messages dropped, by reason

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, EndFrame):
            await self._on_end()
            return None
        return await super().serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            message = stream_message(data)
            event = message.get("event")
            if event == "media":
                return await self._joined(_audio(message))
            if event == "dtmf":
                dtmf = message.get("dtmf")
                if not (isinstance(dtmf, dict) and dtmf.get("digit") in DTMF_KEYS):
                    raise UnfitMessage("dtmf without a key")
                return await super().deserialize(data)
            if event not in IGNORED_EVENTS:
                raise UnfitMessage("unknown event")
            return None
        except UnfitMessage as exc:
            self.dropped[str(exc)] += 1
            return None

    async def _joined(self, audio: bytes) -> Frame | None:
        self._pending.append(audio)
        if len(self._pending) < self._input_messages:
            return None
        joined = base64.b64encode(b"".join(self._pending)).decode()
        self._pending.clear()
        return await super().deserialize(json.dumps({"event": "media", "media": {"payload": joined}}))
