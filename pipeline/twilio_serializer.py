"""Twilio's media-stream serializer, with the call's ending decided by the call itself.

Pipecat's serializer hangs up when it serializes the EndFrame: after the last audio was paced
out, before the socket closes. That moment is right for every ending, so it is kept, but what
happens there is the call's choice: hang up, or redirect the live call to a service advisor
(a hang-up there would cut the transfer off).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pipecat.frames.frames import EndFrame, Frame
from pipecat.serializers.twilio import TwilioFrameSerializer


class CallEndingTwilioSerializer(TwilioFrameSerializer):
    def __init__(self, stream_sid: str, call_sid: str,
                 on_end: Callable[[], Awaitable[None]]) -> None:
        super().__init__(stream_sid, call_sid,
                         params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
        self._on_end = on_end

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, EndFrame):
            await self._on_end()
            return None
        return await super().serialize(frame)
