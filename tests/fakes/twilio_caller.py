"""Simulated Twilio caller: the Twilio side of a bidirectional Media Stream.

Why: end-to-end tests connect to the launcher's ``/twilio/stream`` exactly as
Twilio does after ``<Connect><Stream>`` and play a phone caller, so the real
websocket route, serializer and pipeline are what gets tested.

Wire behaviour (Twilio Media Streams, JSON text frames):

* on connect: ``{"event": "connected", "protocol": "Call", "version": "1.0.0"}``
  then ``start`` (``sequenceNumber`` "1", ``start.{accountSid, streamSid,
  callSid, tracks, customParameters, mediaFormat: {encoding: "audio/x-mulaw",
  sampleRate: 8000, channels: 1}}``, ``streamSid``);
* from then on a ``media`` message every 20 ms, real-time paced, 160 bytes of
  8 kHz mu-law in ``media.payload`` (base64) with ``media.track`` "inbound" and
  increasing ``media.chunk`` (from "1") and ``media.timestamp`` (ms since the
  stream started) -- caller speech queued by :meth:`TwilioCaller.say`, digital
  silence (0xFF) otherwise, as a live call never stops sending audio;
* ``dtmf`` (``dtmf.{track: "inbound_track", digit}``) from :meth:`press`;
* ``stop`` (``stop.{accountSid, callSid}``) then close (1000) from :meth:`hang_up`;
* any frame at all, text or binary, from :meth:`send_raw`: what a broken or hostile
  client might send, to test that the server shrugs it off.

Every message carries a string ``sequenceNumber`` increasing by one. From the
server it accepts what Pipecat's Twilio serializer sends: ``media`` (played out
at real time: the caller keeps a play-out clock) and ``clear`` (drops unplayed
audio). Anything else (e.g. a ``mark``, which the app never sends), and messages
whose ``streamSid`` is not this stream's, are noted in ``protocol_errors``.
Every server message is recorded with a ``time.monotonic()`` timestamp, as is
the close code when the server closes the socket (e.g. 1008).

Helpers: :func:`parse_stream_twiml` reads ``<Connect><Stream url>`` and its
``<Parameter>`` elements from the launcher's TwiML, :func:`inbound_call_params`
builds the form Twilio posts to the voice webhook, :func:`twilio_signature`
computes ``X-Twilio-Signature``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
import numpy as np
import numpy.typing as npt

from tests.fakes._pcm import pcm16_to_ulaw, rms, ulaw_to_pcm16

SAMPLE_RATE = 8000
CONNECT_TIMEOUT = 10.0
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law
FRAME_SECONDS = FRAME_BYTES / SAMPLE_RATE
ULAW_SILENCE = 0xFF


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """``X-Twilio-Signature`` Twilio would send for a request to ``url`` with ``params``."""
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(auth_token).compute_signature(url, dict(params or {})))


def inbound_call_params(
    call_sid: str,
    from_number: str,
    to_number: str,
    account_sid: str,
    *,
    call_status: str = "ringing",
    **extra: str,
) -> dict[str, str]:
    """The form Twilio posts to a number's voice webhook for an incoming call."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": call_status,
        "Called": to_number,
        "Caller": from_number,
        "Direction": "inbound",
        "From": from_number,
        "To": to_number,
        **extra,
    }


@dataclass(frozen=True)
class StreamTwiml:
    """What ``<Connect><Stream>`` TwiML tells Twilio to do."""

    url: str
    parameters: dict[str, str]


def parse_stream_twiml(twiml: str) -> StreamTwiml:
    """Extract the stream URL and ``<Parameter name value>`` pairs from TwiML."""
    root = ET.fromstring(twiml)
    stream = root.find("./Connect/Stream")
    if stream is None:
        raise ValueError(f"no <Connect><Stream> in TwiML: {twiml!r}")
    params = {p.attrib["name"]: p.attrib.get("value", "") for p in stream.findall("Parameter")}
    return StreamTwiml(stream.attrib["url"], params)


@dataclass
class ReceivedEvent:
    """One message from the server (``event`` is its ``event`` field)."""

    event: str
    message: dict[str, Any]
    at: float  # time.monotonic()
    payload: bytes = b""  # decoded mu-law for "media"


@dataclass
class _Playout:
    """Real-time play-out of received audio, so clears behave as on a phone."""

    end: float = 0.0
    segments: list[tuple[float, bytes]] = field(default_factory=list)

    def add(self, payload: bytes, now: float) -> None:
        start = max(now, self.end)
        self.segments.append((start, payload))
        self.end = start + len(payload) / SAMPLE_RATE

    def clear(self, now: float) -> None:
        kept: list[tuple[float, bytes]] = []
        for start, payload in self.segments:
            if start < now:
                kept.append((start, payload[: int((now - start) * SAMPLE_RATE)]))
        self.segments = kept
        self.end = min(self.end, now)

    def heard(self, now: float) -> bytes:
        out = bytearray()
        for start, payload in self.segments:
            if start < now:
                out += payload[: max(0, int((now - start) * SAMPLE_RATE))]
        return bytes(out)

    def playing(self, start: float, seconds: float) -> npt.NDArray[np.float32]:
        """The 16-bit samples playing over [start, start + seconds) (zeros where none)."""
        out = np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)
        for at, payload in reversed(self.segments):
            end = at + len(payload) / SAMPLE_RATE
            if end <= start:
                break
            if at < start + seconds:
                pcm = np.frombuffer(ulaw_to_pcm16(payload), dtype="<i2")
                offset = round((at - start) * SAMPLE_RATE)
                lo, hi = max(0, offset), min(len(out), offset + len(pcm))
                out[lo:hi] += pcm[lo - offset:hi - offset]
        return out

    def sound(self, since: float) -> list[tuple[float, float]]:
        """When the caller hears the agent from `since` on: (start, end) of each audible stretch."""
        stretches: list[tuple[float, float]] = []
        for start, payload in self.segments:
            end = start + len(payload) / SAMPLE_RATE
            if end <= since or not audible(payload):
                continue
            if stretches and start - stretches[-1][1] < 0.005:
                stretches[-1] = (stretches[-1][0], end)
            else:
                stretches.append((max(start, since), end))
        return stretches


class TwilioCaller:
    """Connects to a Media Streams websocket URL and behaves like Twilio + a caller.

    Sids default to random Twilio-shaped ones (``CA``/``AC``/``MZ`` + 32 hex).
    ``from_number``/``to_number`` are not sent on the stream (Twilio only puts them
    in the voice webhook; TwiML ``<Parameter>``s carry them into
    ``customParameters``): they feed :meth:`webhook_params`.
    """

    def __init__(
        self,
        url: str,
        *,
        custom_parameters: Mapping[str, str] | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        stream_sid: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        echo: tuple[float, float] | None = None,
    ) -> None:
        self.url = url
        # A speakerphone: the agent's voice comes back on the line, (gain dB, delay seconds).
        self.echo = echo
        self.custom_parameters = dict(custom_parameters or {})
        self.call_sid = call_sid or new_sid("CA")
        self.account_sid = account_sid or new_sid("AC")
        self.stream_sid = stream_sid or new_sid("MZ")
        self.from_number = from_number
        self.to_number = to_number

        self.events: list[ReceivedEvent] = []
        self.protocol_errors: list[str] = []
        self.media_sent = 0
        self.connected_at: float | None = None
        self.closed_at: float | None = None
        self.close_code: int | None = None
        self.closed_by_server = False

        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
        self._chunk = 0
        self._outgoing = bytearray()
        self._queued_total = 0
        self._sent_total = 0
        self._say_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._playout = _Playout()
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._hanging_up = False

    def webhook_params(self, **extra: str) -> dict[str, str]:
        """The form Twilio posts to the voice webhook for this call."""
        if not (self.from_number and self.to_number):
            raise ValueError("from_number and to_number are needed for the webhook form")
        return inbound_call_params(self.call_sid, self.from_number, self.to_number, self.account_sid, **extra)

    @classmethod
    def from_twiml(cls, twiml: str, *, url: str | None = None, **kwargs: Any) -> TwilioCaller:
        """A caller for the stream a ``<Connect><Stream>`` TwiML names (``url`` overrides it)."""
        stream = parse_stream_twiml(twiml)
        params = {**stream.parameters, **kwargs.pop("custom_parameters", {})}
        return cls(url or stream.url, custom_parameters=params, **kwargs)

    # -- lifecycle ---------------------------------------------------------------

    async def connect(self) -> None:
        """Open the socket, send ``connected`` + ``start``, start streaming audio."""
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(
                self.url,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                autoping=True,
                max_msg_size=0,
            )
        except BaseException:
            await self._session.close()
            raise
        self.connected_at = time.monotonic()
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, seq=False)
        await self._send(
            {
                "event": "start",
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.custom_parameters,
                    "mediaFormat": {
                        "encoding": "audio/x-mulaw",
                        "sampleRate": SAMPLE_RATE,
                        "channels": 1,
                    },
                },
                "streamSid": self.stream_sid,
            }
        )
        self._tasks = [
            asyncio.create_task(self._reader()),
            asyncio.create_task(self._media_sender()),
        ]

    async def close(self) -> None:
        """Hang up if still connected, stop tasks, release the HTTP session."""
        if not self.closed:
            await self.hang_up()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Self:
        await asyncio.wait_for(self.connect(), CONNECT_TIMEOUT)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- caller actions --------------------------------------------------------------

    async def say(self, ulaw: bytes) -> None:
        """Queue mu-law speech and wait (real time) until all of it has been sent.

        Returns early if the call ends meanwhile (check :attr:`closed`)."""
        if self.closed:
            return
        if len(ulaw) % FRAME_BYTES:
            ulaw += bytes([ULAW_SILENCE]) * (FRAME_BYTES - len(ulaw) % FRAME_BYTES)
        self._outgoing += ulaw
        self._queued_total += len(ulaw)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._say_waiters.append((self._queued_total, waiter))
        await waiter

    async def silence(self, seconds: float) -> None:
        """Let ``seconds`` of silence stream (after any queued speech)."""
        await self.say(bytes([ULAW_SILENCE]) * int(seconds * SAMPLE_RATE))

    async def press(self, digit: str) -> None:
        """Send a DTMF key press (0-9, *, #)."""
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def send_raw(self, data: str | bytes) -> None:
        """Send one websocket message exactly as given: a text frame for ``str``, else binary."""
        if self._ws is None or self._ws.closed:
            raise ConnectionError("stream is closed")
        async with self._send_lock:
            if isinstance(data, str):
                await self._ws.send_str(data)
            else:
                await self._ws.send_bytes(data)

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then close the socket (1000)."""
        if self.closed or self._ws is None:
            return
        self._hanging_up = True
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(
                {
                    "event": "stop",
                    "streamSid": self.stream_sid,
                    "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                }
            )
        await self._ws.close(code=1000)
        self._mark_closed(self._ws.close_code or 1000, by_server=False)

    # -- observations ------------------------------------------------------------------

    @property
    def media_events(self) -> list[ReceivedEvent]:
        return [e for e in self.events if e.event == "media"]

    @property
    def received_audio(self) -> bytes:
        """All mu-law audio the server sent (including what a clear later dropped)."""
        return b"".join(e.payload for e in self.media_events)

    def heard_audio(self) -> bytes:
        """Audio played to the caller so far (real-time play-out, minus cleared audio)."""
        return self._playout.heard(time.monotonic())

    def position(self) -> int:
        """Index to pass as ``after=`` to only wait for events from now on."""
        return len(self.events)

    async def wait_for(
        self,
        predicate: Callable[[ReceivedEvent], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
        *,
        after: int = 0,
    ) -> ReceivedEvent:
        """First event at index >= ``after`` matching ``predicate``; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        index = after
        while True:
            while index < len(self.events):
                if predicate(self.events[index]):
                    return self.events[index]
                index += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event within {timeout} s")
            self._changed.clear()
            if self.closed:
                raise ConnectionError(f"stream closed (code {self.close_code}) before the event")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_for_event(
        self,
        name: str,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
        *,
        after: int = 0,
    ) -> ReceivedEvent:
        """First ``name`` event ("media" or "clear") at index >= ``after``."""
        return await self.wait_for(lambda e: e.event == name, timeout, after=after)

    async def dead_air_since(
        self,
        since: float,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> float:
        """Seconds from ``since`` (``time.monotonic()``, e.g. when the caller stopped
        talking) until audio with sound in it arrived: the silence a caller sits through.
        ``TimeoutError`` when none came within ``timeout``."""
        first = next((i for i, e in enumerate(self.events) if e.at >= since), len(self.events))
        heard = await self.wait_for(lambda e: e.event == "media" and audible(e.payload),
                                    timeout, after=first)
        return heard.at - since

    def agent_heard_until(self, since: float) -> float:
        """When the agent's voice, playing at `since`, stopped for the caller (its audio played
        out, or dropped by a `clear`): the end of the stretch of sound going on at `since`."""
        stretches = self._playout.sound(since)
        return stretches[0][1] if stretches and stretches[0][0] <= since else since

    def gaps_in_agent_audio(self, since: float, until: float) -> list[float]:
        """Silences of the agent's audio running dry within [since, until]: what a caller hears
        as a stutter when it is sent too late (mid-word gaps, not pauses between sentences)."""
        stretches = self._playout.sound(since)
        return [later[0] - earlier[1] for earlier, later in itertools.pairwise(stretches)
                if later[0] <= until and 0.005 <= later[0] - earlier[1] < 0.15]

    async def wait_for_bot_silence(
        self,
        quiet: float = 0.5,
        timeout: float = 30.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> None:
        """Wait until received audio finished playing and none arrived for ``quiet`` s (since
        the stream connected, so a greeting on its way is waited for too)."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            last_media = self.media_events[-1].at if self.media_events else self.connected_at or 0.0
            if now >= self._playout.end and now - last_media >= quiet:
                return
            if now >= deadline:
                raise TimeoutError(f"bot still talking after {timeout} s")
            await asyncio.sleep(0.02)

    async def wait_closed(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> int | None:
        """Wait until the socket is closed (by either side); return the close code."""
        await asyncio.wait_for(self._closed.wait(), timeout)
        return self.close_code

    # -- internals ---------------------------------------------------------------------

    async def _send(self, message: dict[str, Any], *, seq: bool = True) -> None:
        if self._ws is None or self._ws.closed:
            raise ConnectionError("stream is closed")
        if seq:
            self._seq += 1
            message = {"event": message["event"], "sequenceNumber": str(self._seq), **message}
        async with self._send_lock:
            await self._ws.send_str(json.dumps(message))

    async def _media_sender(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        tick = 0
        try:
            while not self.closed:
                frame = bytes(self._outgoing[:FRAME_BYTES])
                speech = len(frame)
                del self._outgoing[:FRAME_BYTES]
                if speech < FRAME_BYTES:
                    frame += bytes([ULAW_SILENCE]) * (FRAME_BYTES - speech)
                if self.echo is not None:
                    frame = self._with_echo(frame, loop.time())
                self._chunk += 1
                await self._send(
                    {
                        "event": "media",
                        "media": {
                            "track": "inbound",
                            "chunk": str(self._chunk),
                            "timestamp": str((self._chunk - 1) * 20),
                            "payload": base64.b64encode(frame).decode("ascii"),
                        },
                        "streamSid": self.stream_sid,
                    }
                )
                self.media_sent += 1
                self._sent_total += speech
                self._release_say_waiters()
                tick += 1
                delay = started + tick * FRAME_SECONDS - loop.time()
                if delay < -0.1:  # fell far behind (busy loop): re-anchor, don't burst
                    started, tick = loop.time(), 0
                    delay = 0.0
                await asyncio.sleep(max(0.0, delay))
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            pass

    def _with_echo(self, frame: bytes, now: float) -> bytes:
        gain, delay = self.echo or (0.0, 0.0)
        # The play-out clock is time.monotonic(), the loop's too.
        echo = self._playout.playing(now - delay, FRAME_SECONDS) * 10 ** (gain / 20)
        mixed = np.frombuffer(ulaw_to_pcm16(frame), dtype="<i2") + echo
        return pcm16_to_ulaw(np.clip(mixed, -32768, 32767).astype("<i2").tobytes())

    def _release_say_waiters(self, *, all_: bool = False) -> None:
        keep = []
        for target, fut in self._say_waiters:
            if all_ or target <= self._sent_total:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((target, fut))
        self._say_waiters = keep

    async def _reader(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.protocol_errors.append(f"binary frame of {len(msg.data)} bytes")
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    break
        finally:
            self._mark_closed(self._ws.close_code, by_server=not self._hanging_up)

    def _on_text(self, data: str) -> None:
        now = time.monotonic()
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            self.protocol_errors.append(f"invalid JSON: {data[:200]!r}")
            return
        event = str(message.get("event", ""))
        if message.get("streamSid") != self.stream_sid:
            self.protocol_errors.append(f"{event!r} with streamSid {message.get('streamSid')!r}")
        received = ReceivedEvent(event, message, now)
        if event == "media":
            try:
                received.payload = base64.b64decode(message["media"]["payload"], validate=True)
            except (KeyError, TypeError, ValueError) as exc:
                self.protocol_errors.append(f"bad media payload: {exc!r}")
            self._playout.add(received.payload, now)
        elif event == "clear":
            self._playout.clear(now)
        else:
            self.protocol_errors.append(f"unknown event {event!r}")
        self.events.append(received)
        self._changed.set()

    def _mark_closed(self, code: int | None, *, by_server: bool) -> None:
        if self.close_code is None:
            self.close_code = code  # the reader may have seen the close before the code
        if self._closed.is_set():
            return
        self.closed_by_server = by_server
        self.closed_at = time.monotonic()
        self._closed.set()
        self._changed.set()
        self._release_say_waiters(all_=True)


def audible(ulaw: bytes) -> bool:
    """More than line noise: the fakes' speech and any recorded clip, not comfort silence."""
    return rms(np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2")) > 100
