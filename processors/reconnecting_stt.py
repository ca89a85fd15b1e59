"""Deepgram speech-to-text that keeps hearing the caller across a dropped socket.

Pipecat's DeepgramSTTService (1.14) already reconnects when its socket drops, but not in a
way a phone call survives: it waits at least 4 s before each new attempt, drops the audio
that arrives meanwhile (`run_stt` sends nothing without a connection), gives up after three
attempts that fail at once, and its `setup` waits for the first connection, so a call
whose speech-to-text is unreachable does not even start (no greeting). Its own replay
buffer (`STTService._reconnect`) only covers a reconnect it asks for itself, after a
settings change.

This subclass changes the connection loop only: it starts without waiting, retries within
a fraction of a second and keeps trying for `reconnect_secs`, and holds the caller's audio
while the socket is down (the most recent `buffer_secs` of it), then sends it, and a
`Finalize` the VAD asked for meanwhile, ahead of new audio once the socket is back. Giving
up is reported as Pipecat reports it, an error that leaves the service unusable, which the
call answers by handing the caller to a person.

It also finalises when asked (`FinalizeTranscriptFrame`, sent upstream by the turn strategy
at the start of the caller's pause, ahead of the VAD's stop), and then skips the VAD stop's
own `Finalize` when nothing was said since. As the caller may go on after a pause, several
`Finalize`s can be unanswered at once; only the answer to the last one is marked finalized,
since an earlier one does not hold what was said after it, and a turn must not end on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

from deepgram.core import ApiError
from deepgram.core.events import EventType
from deepgram.listen.v1.types import ListenV1Finalize
from pipecat.frames.frames import Frame, SystemFrame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.stt_service import STTService

log = logging.getLogger(__name__)

FIRST_RETRY_SECS = 0.1  # a dropped socket is usually back at once; then the wait doubles
MAX_RETRY_SECS = 1.0
REFUSED_FOR_GOOD = (401, 403)  # a bad key stays bad: no point retrying


class FinalizeTranscriptFrame(SystemFrame):
    """The caller has paused: transcribe what they said so far, now."""


class ReconnectingDeepgramSTTService(DeepgramSTTService):
    def __init__(self, *, reconnect_secs: float, buffer_secs: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reconnect_secs = reconnect_secs
        self._buffer_secs = buffer_secs
        self._held: deque[bytes] = deque()
        self._held_bytes = 0
        self._finalize_held = False
        self._unanswered = 0  # Finalizes sent on this socket and not answered yet
        self._asked_at = 0.0  # when a FinalizeTranscriptFrame last came (time.time)
        # Held audio goes out before new audio: whoever sends takes the lock.
        self._sending = asyncio.Lock()

    async def _connect(self) -> None:
        # Without waiting for the socket: the call greets the caller meanwhile, and what the
        # caller says before it is up is held.
        self._connection_task = self.create_task(self._connection_handler(), f"{self}::connection")

    async def _do_reconnect(self) -> None:
        # The parent's checks for a connection that `_connect` no longer waits for; audio is
        # held until the new one is up.
        await self._disconnect()
        await self._connect()

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        await self._send_or_hold(audio)
        yield None

    async def _send_or_hold(self, audio: bytes) -> None:
        async with self._sending:
            connection = self._connection
            if connection is not None:
                try:
                    await connection.send_media(audio)
                    return
                except Exception as exc:
                    log.warning("%s: sending audio failed, holding it until reconnected: %s", self, exc)
                    self._connection = None
            self._hold(audio)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        stopped = isinstance(frame, VADUserStoppedSpeakingFrame)
        if stopped and self._asked_at >= frame.timestamp - frame.stop_secs:
            # Asked for since the caller's voice ended: the parent's Finalize would only bring an
            # empty final, and that would be the last answer. The rest of its handling stays.
            await STTService.process_frame(self, frame, direction)
            return
        await super().process_frame(frame, direction)
        if isinstance(frame, FinalizeTranscriptFrame):
            await self._finalize_now()
        elif stopped and self._connection is None:
            self._finalize_held = True  # the parent sends Finalize only on a live socket

    async def _finalize_now(self) -> None:
        self._asked_at = time.time()
        async with self._sending:
            if self._connection is None:
                self._finalize_held = True
                return
            self.request_finalize()
            await self._connection.send_finalize(ListenV1Finalize(type="Finalize"))

    def request_finalize(self) -> None:
        self._unanswered += 1
        super().request_finalize()

    def confirm_finalize(self) -> None:
        self._unanswered = max(self._unanswered - 1, 0)
        if self._unanswered == 0:
            super().confirm_finalize()

    def _hold(self, audio: bytes) -> None:
        self._held.append(audio)
        self._held_bytes += len(audio)
        limit = int(self._buffer_secs * self.sample_rate * 2)  # 16-bit mono
        while self._held_bytes > limit and self._held:
            self._held_bytes -= len(self._held.popleft())

    async def _send_held(self, connection: Any) -> None:
        """The audio held while the socket was down, oldest first, then the Finalize the VAD
        asked for meanwhile; each chunk leaves the buffer only once sent."""
        while self._held:
            await connection.send_media(self._held[0])
            self._held_bytes -= len(self._held.popleft())
        if self._finalize_held:
            self._finalize_held = False
            self.request_finalize()
            await connection.send_finalize(ListenV1Finalize(type="Finalize"))

    async def _connection_handler(self) -> None:
        """Connect, listen until the socket closes, and again, until stopped (cancelled) or
        `reconnect_secs` pass without a connection."""
        down_since: float | None = None
        retries = 0
        while True:
            keepalive = None
            try:
                async with self._client.listen.v1.connect(**self._build_connect_kwargs()) as connection:
                    down_since, retries = None, 0
                    connection.on(EventType.MESSAGE, self._on_message)
                    connection.on(EventType.ERROR, self._on_error)
                    async with self._sending:
                        self._unanswered = 0  # a closed socket answers nothing more
                        await self._send_held(connection)
                        self._connection = connection
                    keepalive = self.create_task(self._keepalive_handler(), f"{self}::keepalive")
                    await connection.start_listening()
                log.warning("%s: connection closed, reconnecting", self)
            except ApiError as exc:
                if exc.status_code in REFUSED_FOR_GOOD:
                    await self.push_error(error_msg=f"Deepgram refused the connection: {exc}",
                                          exception=exc, force_treat_as_permanent=True)
                    return
                log.warning("%s: connection refused (%s), retrying", self, exc.status_code)
            except Exception as exc:
                log.warning("%s: connection failed, retrying: %s", self, exc)
            finally:
                self._connection = None
                if keepalive:
                    await self.cancel_task(keepalive)
            now = time.monotonic()
            down_since = down_since or now
            if now - down_since >= self._reconnect_secs:
                await self.push_error(
                    error_msg=f"no connection to Deepgram for {self._reconnect_secs:g} s",
                    force_treat_as_permanent=True)
                return
            await asyncio.sleep(min(MAX_RETRY_SECS, FIRST_RETRY_SECS * 2 ** retries))
            retries += 1
