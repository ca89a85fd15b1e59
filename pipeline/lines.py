"""How a call reaches its caller: a Twilio media stream, or a browser's WebRTC connection.

The rest of the call's pipeline is the same for both; only the transport at its two ends
differs, so a developer talking to the agent from a browser hears the agent a caller hears.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from fastapi import WebSocket
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

from pipeline.opening import CallStart
from telephony.serializer import CallEndingTwilioSerializer

log = logging.getLogger(__name__)

EndOfCall = Callable[[], Awaitable[None]]

# After the goodbye, a moment of silence before the line closes, so its last word is not cut.
END_SILENCE_SECS = 1


class CallLine(Protocol):
    def transport(self, end_of_call: EndOfCall) -> BaseTransport:
        """The call's transport; `end_of_call` runs once the last audio has gone out."""
        ...

    def report(self) -> None:
        """Log what the line dropped, once the call is over."""
        ...


class TwilioLine:
    """A Twilio media stream (8 kHz mu-law over a websocket) whose `start` was read already."""

    def __init__(self, websocket: WebSocket, start: CallStart) -> None:
        self._websocket = websocket
        self._start = start
        self._serializer: CallEndingTwilioSerializer | None = None

    def transport(self, end_of_call: EndOfCall) -> FastAPIWebsocketTransport:
        # 40 ms input frames: fewer frames for every stage to handle, for at most 20 ms of delay.
        self._serializer = CallEndingTwilioSerializer(self._start.stream_sid, self._start.call_sid,
                                                      end_of_call, input_messages=2)
        return FastAPIWebsocketTransport(self._websocket, FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_out_end_silence_secs=END_SILENCE_SECS,
            serializer=self._serializer,
        ))

    def report(self) -> None:
        dropped = self._serializer.dropped if self._serializer else None
        if dropped:
            log.warning("call %s: dropped %d stream messages (%s)", self._start.call_sid, dropped.total(),
                        ", ".join(f"{count} x {reason}" for reason, count in dropped.items()))


class BrowserLine:
    """A browser's WebRTC peer connection (Pipecat's SmallWebRTC): the browser cancels the
    agent's voice out of its microphone, as it knows what it plays."""

    def __init__(self, connection: SmallWebRTCConnection) -> None:
        self._connection = connection

    def transport(self, end_of_call: EndOfCall) -> SmallWebRTCTransport:
        # `end_of_call` transfers or hangs up through Twilio, which a browser call has no part
        # in: the end of the pipeline closes the peer connection, and the page sees it close.
        del end_of_call
        return SmallWebRTCTransport(self._connection, TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_out_end_silence_secs=END_SILENCE_SECS,
        ))

    def report(self) -> None:
        return None
