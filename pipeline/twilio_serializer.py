"""Twilio's media-stream serializer, with two changes for a phone agent at scale.

Ending: Pipecat's serializer hangs up when it serializes the EndFrame, after the last audio was
paced out and before the socket closes. That moment is right for every ending, so it is kept,
but what happens there is the call's choice: hang up, or redirect the live call to a service
advisor (a hang-up there would cut the transfer off).

Input: Twilio sends 20 ms of audio per message. Each becomes a frame that every stage handles
and speech recognition forwards over its own websocket, so joining `input_messages` of them
into one frame divides that per-frame cost, for at most (n - 1) * 20 ms of added delay.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import EndFrame, Frame
from pipecat.serializers.twilio import TwilioFrameSerializer


class CallEndingTwilioSerializer(TwilioFrameSerializer):
    def __init__(self, stream_sid: str, call_sid: str, on_end: Callable[[], Awaitable[None]],
                 input_messages: int = 1) -> None:
        super().__init__(stream_sid, call_sid,
                         params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
        self._on_end = on_end
        self._input_messages = input_messages
        self._pending: list[bytes] = []

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, EndFrame):
            await self._on_end()
            return None
        return await super().serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if self._input_messages > 1:
            try:
                message = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                message = None
            if isinstance(message, dict) and message.get("event") == "media":
                media = message.get("media")
                try:  # a malformed message is dropped, as Pipecat drops one without a payload
                    self._pending.append(base64.b64decode(media["payload"], validate=True))
                except (TypeError, KeyError, binascii.Error):
                    return None
                if len(self._pending) < self._input_messages:
                    return None
                joined = base64.b64encode(b"".join(self._pending)).decode()
                self._pending.clear()
                data = json.dumps({"event": "media", "media": {"payload": joined}})
        return await super().deserialize(data)
