"""Fake Deepgram: live speech-to-text (``/v1/listen``) and text-to-speech (``/v1/speak``).

Why: end-to-end tests must run Pipecat's real ``DeepgramSTTService`` (deepgram-sdk
7.x websocket client) and ``DeepgramTTSService`` against a local server that
speaks the same wire protocol, with deterministic transcripts and audio.

Point the services at it with ``base_url=fake.ws_base_url`` (``ws://`` selects
the insecure scheme; the SDK and Pipecat append ``/v1/listen`` / ``/v1/speak``).

Speech-to-text. The fake cannot recognise speech, so it finds utterances by
energy (see :class:`EnergySegmenter`: RMS over 20 ms windows, 60 ms voiced to
start, 500 ms of silence to end) and takes
the words from a SCRIPT: the caller's N-th utterance (counted across every
connection to this server, or of its own connection with ``per_connection``) is
transcribed as ``script[N]``. While an utterance
is in progress it sends interim ``Results`` (``is_final: false``) revealing the
scripted words progressively; the final ``Results`` (``is_final``/``speech_final``
true) goes out on the first of ``{"type": "Finalize"}`` (then ``from_finalize:
true``; Pipecat sends it when its VAD says the user stopped, ours sooner) or the silence
hangover. Audio of an utterance after its final (a pause longer than the VAD's
stop time but shorter than the hangover) yields no more text, so one energy
segment gives one non-empty final; except that ``...`` in a script entry marks
where its speaker pauses: each final then gives only the part said so far ("I
need... um... an oil change" is finalised as "I need", "um" and "an oil change"),
as a real recogniser transcribes what it has heard, and the entry's next part
continues after the pause, in the same energy segment or the next. A ``Finalize`` with nothing
pending is answered by an empty final with ``from_finalize: true``, as Deepgram
does. ``KeepAlive`` is recorded; ``CloseStream`` flushes, sends ``Metadata`` and
closes with 1000. Message shapes follow the SDK's ``ListenV1Results`` etc.
(it parses by the ``type`` field, and requires ``channel_index``, ``duration``,
``start``, ``channel.alternatives[].{transcript,confidence,words}`` and
``metadata.{request_id,model_info,model_uuid}``).

Text-to-speech (the websocket API). ``Speak`` text is buffered; ``Flush`` turns
the buffer into a low tone (or recorded speech, ``tts_voice="speech"``) of
``tts_ms_per_char`` per character at the requested ``sample_rate``, sent in 40 ms binary
chunks (``tts_chunk_delay`` seconds apart, 0 = as fast as possible) and then
``{"type": "Flushed", "sequence_id": n}``.
``Clear`` drops the buffer and any audio not yet sent and answers ``{"type":
"Cleared", "sequence_id": n}``; ``Close`` closes. A ``Metadata`` message is sent
when the socket opens.

Audio both ways is 16-bit linear PCM, the only encoding production sends and asks
for; a handshake asking for another is refused with HTTP 400, so a change of
encoding fails loudly instead of being misread.

With ``api_key`` set, a handshake whose ``Authorization`` is not ``Token <key>``
is refused with HTTP 401 (the SDK turns that into ``ApiError(401)``).

Fault switches, flipped by a test at any moment: :meth:`drop_listen` cuts every open
speech-to-text socket (close code 1011, as a server failing mid-stream sends);
``refuse_listen`` / ``refuse_speak`` set to an HTTP status refuse new handshakes of
that API with it (``None``, the default, accepts them; refusals are counted in
``refused``); ``tts_stalled`` makes text-to-speech take ``Speak``/``Flush`` and answer
nothing at all, neither audio nor ``Flushed``, as a provider that hangs; ``final_delay``
(seconds, 0 by default) holds every final ``Results`` back that long after it is due, as a
real service takes time to decode (Deepgram publishes a median of about 250 ms).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from ._pcm import rms, tone, ulaw_to_pcm16
from ._server import LoopbackServer

MODEL_UUID = "00000000-0000-4000-8000-00000000fa6e"
INTERIM_EVERY = 0.3  # seconds of audio between interim results
SECONDS_PER_WORD = 0.3  # how fast interim results reveal the scripted words
TTS_CHUNK_MS = 40


# ---------------------------------------------------------------------------------
# Energy segmentation
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentEvent:
    """``kind`` is ``"start"`` or ``"end"``; ``time`` is seconds of audio since the stream began."""

    kind: str
    time: float


class EnergySegmenter:
    """Split 16-bit mono PCM into utterances by RMS energy with a silence hangover.

    Why: the fake STT must know when the caller speaks without a recogniser;
    the hangover bridges pauses between words and commas in real speech, and
    the minimum speech length ignores clicks.
    """

    THRESHOLD_RMS = 300.0
    WINDOW_MS = 20
    MIN_SPEECH_MS = 60
    HANGOVER_MS = 500

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.window = max(1, sample_rate * self.WINDOW_MS // 1000)
        self._min_windows = math.ceil(self.MIN_SPEECH_MS / self.WINDOW_MS)
        self._hangover_windows = math.ceil(self.HANGOVER_MS / self.WINDOW_MS)
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples = 0  # samples consumed into whole windows
        self._voiced_run = 0
        self._silent_run = 0
        self.in_speech = False
        self.segment_start = 0.0
        self.last_voice_end = 0.0

    @property
    def time(self) -> float:
        """Seconds of audio consumed so far."""
        return self._samples / self.sample_rate

    @property
    def hangover_seconds(self) -> float:
        """Silence that ends a segment."""
        return self._hangover_windows * self.window / self.sample_rate

    def feed(self, pcm: bytes) -> list[SegmentEvent]:
        """Consume little-endian 16-bit PCM; return segment starts/ends it completes."""
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
        buf = np.concatenate([self._pending, samples])
        events: list[SegmentEvent] = []
        n_windows = len(buf) // self.window
        for i in range(n_windows):
            block = buf[i * self.window : (i + 1) * self.window]
            start = self._samples / self.sample_rate
            self._samples += self.window
            end = self._samples / self.sample_rate
            voiced = rms(block) >= self.THRESHOLD_RMS
            if not self.in_speech:
                self._voiced_run = self._voiced_run + 1 if voiced else 0
                if self._voiced_run >= self._min_windows:
                    self.in_speech = True
                    self._silent_run = 0
                    self.segment_start = start - (self._voiced_run - 1) * self.window / self.sample_rate
                    self.last_voice_end = end
                    events.append(SegmentEvent("start", self.segment_start))
            elif voiced:
                self._silent_run = 0
                self.last_voice_end = end
            else:
                self._silent_run += 1
                if self._silent_run >= self._hangover_windows:
                    events.append(self.force_end())
        self._pending = buf[n_windows * self.window :].copy()
        return events

    def force_end(self) -> SegmentEvent:
        """End the current segment now (e.g. audio stopped arriving)."""
        self.in_speech = False
        self._voiced_run = 0
        self._silent_run = 0
        return SegmentEvent("end", self.last_voice_end)


def count_utterances(pcm: bytes, sample_rate: int) -> list[tuple[float, float]]:
    """Run :class:`EnergySegmenter` over a whole PCM buffer; return ``(start, end)`` pairs."""
    seg = EnergySegmenter(sample_rate)
    # A second of trailing silence so the last segment is closed by the hangover.
    events = seg.feed(pcm + b"\x00\x00" * sample_rate)
    if seg.in_speech:
        events.append(seg.force_end())
    starts = [e.time for e in events if e.kind == "start"]
    ends = [e.time for e in events if e.kind == "end"]
    return list(zip(starts, ends, strict=True))


# ---------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------


@dataclass
class SttResult:
    """One ``Results`` message the fake sent."""

    text: str
    is_final: bool
    from_finalize: bool
    utterance: int | None  # script index; None for an empty answer to Finalize
    at: float  # time.monotonic() when sent (comparable with TwilioCaller times)


@dataclass
class SttConnection:
    """Everything one ``/v1/listen`` websocket received and sent."""

    query: dict[str, str]
    headers: dict[str, str]
    bytes_received: int = 0
    audio_seconds: float = 0.0
    control_messages: list[dict[str, Any]] = field(default_factory=list)
    results: list[SttResult] = field(default_factory=list)
    close_stream_received: bool = False

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def finals(self) -> list[SttResult]:
        return [r for r in self.results if r.is_final]

    @property
    def interims(self) -> list[SttResult]:
        return [r for r in self.results if not r.is_final]

    def count(self, message_type: str) -> int:
        """How many control messages of ``message_type`` (e.g. "KeepAlive") arrived."""
        return sum(1 for m in self.control_messages if m.get("type") == message_type)


@dataclass
class TtsUtterance:
    """One flushed chunk of text and what became of its audio."""

    text: str
    sequence_id: int
    requested_at: float
    audio_bytes: int = 0
    completed_at: float | None = None  # Flushed sent
    cleared: bool = False
    generation: int = 0

    @property
    def completed(self) -> bool:
        return self.completed_at is not None


@dataclass
class TtsConnection:
    """Everything one ``/v1/speak`` websocket received and sent."""

    query: dict[str, str]
    headers: dict[str, str]
    sample_rate: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    utterances: list[TtsUtterance] = field(default_factory=list)
    clear_count: int = 0

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


# ---------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------


class FakeDeepgram(LoopbackServer):
    """Deepgram live STT + TTS on loopback; see the module docstring."""

    def __init__(
        self,
        script: Iterable[str | None] = (),
        *,
        api_key: str | None = None,
        tts_ms_per_char: float = 60.0,
        tts_voice: str = "tone",
        tts_chunk_delay: float = 0.0,
        final_delay: float = 0.0,
        per_connection: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        self.script: list[str | None] = list(script)
        # Each connection counts its own utterances: callers talking at once each say the
        # script in order.
        self.per_connection = per_connection
        self.api_key = api_key
        self.tts_ms_per_char = tts_ms_per_char
        self.tts_voice = tts_voice
        self.tts_chunk_delay = tts_chunk_delay
        self.final_delay = final_delay
        self.stt_connections: list[SttConnection] = []
        self.tts_connections: list[TtsConnection] = []
        self.rejected_handshakes: list[dict[str, str]] = []
        self.utterances_detected = 0  # energy segments started, across connections
        self.unscripted_utterances: list[int] = []  # indexes past the end of the script
        # Fault switches (see the module docstring).
        self.refuse_listen: int | None = None
        self.refuse_speak: int | None = None
        self.tts_stalled = False
        self.refused: dict[str, int] = {"/v1/listen": 0, "/v1/speak": 0}
        self._listening: set[web.WebSocketResponse] = set()

    # -- faults ------------------------------------------------------------------

    async def drop_listen(self) -> int:
        """Cut every open speech-to-text socket (1011); returns how many were open."""
        open_sockets = [ws for ws in self._listening if not ws.closed]
        for ws in open_sockets:
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"fake dropped the stream")
        return len(open_sockets)

    # -- script ----------------------------------------------------------------

    def add_script(self, *texts: str | None) -> None:
        """Append transcripts for the caller's next utterances (``None`` = empty)."""
        self.script.extend(texts)

    def transcript_for(self, utterance: int) -> str:
        if utterance < len(self.script):
            return self.script[utterance] or ""
        if utterance not in self.unscripted_utterances:
            self.unscripted_utterances.append(utterance)
        return ""

    # -- convenience views -------------------------------------------------------

    @property
    def finals(self) -> list[SttResult]:
        """Every final ``Results`` sent, across connections, in order."""
        return sorted((r for c in self.stt_connections for r in c.finals), key=lambda r: r.at)

    @property
    def transcripts(self) -> list[str]:
        """Texts of the non-empty finals, in order."""
        return [r.text for r in self.finals if r.text]

    @property
    def tts_utterances(self) -> list[TtsUtterance]:
        return sorted((u for c in self.tts_connections for u in c.utterances), key=lambda u: u.requested_at)

    @property
    def spoken(self) -> list[str]:
        """Every non-empty text flushed to TTS, in order."""
        return [u.text for u in self.tts_utterances if u.text]

    @property
    def clear_count(self) -> int:
        return sum(c.clear_count for c in self.tts_connections)

    async def wait_for_finals(
        self,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> list[SttResult]:
        """Wait until ``count`` non-empty finals were sent; return them."""
        await self.wait_until(lambda: len(self.transcripts) >= count, timeout)
        return [r for r in self.finals if r.text]

    async def wait_for_spoken(
        self,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> list[str]:
        """Wait until ``count`` non-empty TTS texts were flushed; return them."""
        await self.wait_until(lambda: len(self.spoken) >= count, timeout)
        return self.spoken

    # -- routes ------------------------------------------------------------------

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self._listen)
        app.router.add_get("/v1/speak", self._speak)

    async def _accept(self, request: web.Request) -> tuple[dict[str, str], web.WebSocketResponse, str]:
        """Refuse a handshake with the wrong key (401) or for audio other than linear16 (400);
        else open the websocket, tagged with a request id as Deepgram tags it."""
        query = {k: request.query.getall(k)[-1] for k in request.query}
        refusal = self.refuse_listen if request.path == "/v1/listen" else self.refuse_speak
        if refusal is not None:
            self.refused[request.path] += 1
            refused = web.HTTPException(text=json.dumps({"err_code": "UNAVAILABLE", "err_msg": "refused"}),
                                        content_type="application/json")
            refused.set_status(refusal)
            raise refused
        if self.api_key is not None and request.headers.get("Authorization") != f"Token {self.api_key}":
            self.rejected_handshakes.append({"path": request.path, **dict(request.headers)})
            raise web.HTTPUnauthorized(
                text=json.dumps({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}),
                content_type="application/json",
            )
        rate = query.get("sample_rate")
        if query.get("encoding", "linear16") != "linear16" or (rate is not None and not rate.isdigit()):
            raise web.HTTPBadRequest(
                text=json.dumps({"err_code": "INVALID_QUERY_PARAMETER", "err_msg": f"unsupported: {query}"}),
                content_type="application/json",
            )
        request_id = str(uuid.uuid4())
        ws = web.WebSocketResponse()
        ws.headers["dg-request-id"] = request_id
        await ws.prepare(request)
        self._track(ws)
        return query, ws, request_id

    # -- speech-to-text ------------------------------------------------------------

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        query, ws, request_id = await self._accept(request)
        conn = SttConnection(query=query, headers=dict(request.headers))
        self.stt_connections.append(conn)
        self._listening.add(ws)
        session = _SttSession(self, conn, ws, request_id)
        watchdog = self._spawn(session.watchdog())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    await session.on_audio(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except json.JSONDecodeError:
                        data = {"type": "<invalid json>", "raw": msg.data}
                    conn.control_messages.append(data)
                    kind = data.get("type")
                    if kind == "Finalize":
                        await session.finalize()
                    elif kind == "CloseStream":
                        conn.close_stream_received = True
                        await session.close_stream()
                        break
                    elif kind != "KeepAlive":
                        await session.send_error(f"unknown message type {kind!r}", msg.data)
        finally:
            watchdog.cancel()
            self._listening.discard(ws)
            if not ws.closed:
                await ws.close()
        return ws

    # -- text-to-speech --------------------------------------------------------------

    def synthesize(self, text: str, sample_rate: int) -> bytes:
        """The fake voice, ``tts_ms_per_char`` ms per character: a low tone, or with
        ``tts_voice="speech"`` recorded speech (the caller fixtures, end to end), for tests in
        which the agent's voice must sound like a voice (its echo on the caller's line)."""
        seconds = len(text.strip()) * self.tts_ms_per_char / 1000
        if self.tts_voice == "tone":
            return tone(seconds, sample_rate)
        return _speech(seconds, sample_rate)

    async def _speak(self, request: web.Request) -> web.StreamResponse:
        query, ws, request_id = await self._accept(request)
        conn = TtsConnection(query, dict(request.headers), int(query.get("sample_rate", "24000")))
        self.tts_connections.append(conn)
        session = _TtsSession(self, conn, ws)
        await session.send_json(
            {
                "type": "Metadata",
                "request_id": request_id,
                "model_name": query.get("model", "aura-2-thalia-en"),
                "model_version": "2025-01-01.0",
                "model_uuid": MODEL_UUID,
            }
        )
        worker = self._spawn(session.worker())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except json.JSONDecodeError:
                    data = {"type": "<invalid json>", "raw": msg.data}
                conn.messages.append(data)
                kind = data.get("type")
                if self.tts_stalled:
                    continue  # takes everything, answers nothing
                if kind == "Speak":
                    session.buffer.append(str(data.get("text", "")))
                elif kind == "Flush":
                    session.flush()
                elif kind == "Clear":
                    await session.clear()
                elif kind == "Close":
                    break
                else:
                    await session.send_json(
                        {
                            "type": "Warning",
                            "description": f"unknown message type {kind!r}",
                            "code": "UNKNOWN",
                        }
                    )
        finally:
            worker.cancel()
            if not ws.closed:
                await ws.close()
        return ws


def _speech(seconds: float, sample_rate: int) -> bytes:
    from tests.audio import NAMES, SAMPLE_RATE, load  # the fixtures, only for this voice

    voice = np.frombuffer(ulaw_to_pcm16(b"".join(load(name) for name in NAMES)), dtype="<i2")
    wanted = round(seconds * sample_rate)
    at = np.arange(wanted) * SAMPLE_RATE / sample_rate % len(voice)
    return np.interp(at, np.arange(len(voice)), voice).astype("<i2").tobytes()


class _SttSession:
    """State of one live transcription socket."""

    def __init__(self, fake: FakeDeepgram, conn: SttConnection, ws: web.WebSocketResponse, request_id: str):
        self.fake = fake
        self.conn = conn
        self.ws = ws
        self.request_id = request_id
        self.interim_results = conn.query.get("interim_results", "false").lower() == "true"
        self.model = conn.query.get("model", "nova-3-general")
        self.segmenter = EnergySegmenter(int(conn.query.get("sample_rate", "16000")))
        self.lock = asyncio.Lock()
        self.utterance: int | None = None  # script index of the current energy segment
        self.utterances = 0  # started on this connection
        self.parts: list[str] = []  # what the utterance has still to say, pause by pause
        self.part_start = 0.0  # audio time the part being said began
        self.finalized = True  # the current/last segment already produced its final
        self.last_final_end = 0.0  # audio time covered by the last final
        self.last_interim_at = 0.0
        self.last_interim_text = ""
        self.last_audio_wall = time.monotonic()
        self.sha = hashlib.sha256()

    async def on_audio(self, data: bytes) -> None:
        async with self.lock:
            self.conn.bytes_received += len(data)
            self.sha.update(data)
            self.last_audio_wall = time.monotonic()
            for event in self.segmenter.feed(data):
                if event.kind == "start":
                    self._on_start(event.time)
                else:
                    await self._on_end(event.time)
            if (self.finalized and self.parts and self.segmenter.in_speech
                    and self.segmenter.last_voice_end > self.last_final_end + 0.06):
                self._resume(self.segmenter.last_voice_end)  # speaking again after a pause
            self.conn.audio_seconds = self.segmenter.time
            if self.segmenter.in_speech and not self.finalized and self.interim_results:
                now = self.segmenter.time
                if now - self.last_interim_at >= INTERIM_EVERY:
                    await self._send_interim(now)

    def _on_start(self, at: float) -> None:
        if self.parts:  # the rest of an utterance paused for longer than the hangover
            self._resume(at)
            return
        self.utterance = self.utterances if self.fake.per_connection else self.fake.utterances_detected
        self.utterances += 1
        self.fake.utterances_detected += 1
        self.parts = [part.strip() for part in self.fake.transcript_for(self.utterance).split("...")]
        self._resume(at)

    def _resume(self, at: float) -> None:
        self.finalized = False
        self.part_start = at
        self.last_interim_at = at
        self.last_interim_text = ""

    async def _on_end(self, at: float) -> None:
        if not self.finalized:
            await self._send_final(from_finalize=False, end=at)

    async def _send_interim(self, now: float) -> None:
        assert self.utterance is not None
        words = self.parts[0].split() if self.parts else []
        elapsed = now - self.part_start
        shown = min(len(words), 1 + int(elapsed / SECONDS_PER_WORD))
        text = " ".join(words[:shown])
        self.last_interim_at = now
        if text and text != self.last_interim_text:
            self.last_interim_text = text
            await self._send_results(text, False, False, self.utterance, self.part_start, now)

    async def _send_final(self, *, from_finalize: bool, end: float) -> None:
        if self.finalized or self.utterance is None:
            # Nothing pending: Deepgram still answers Finalize, with an empty final.
            start = self.last_final_end
            end = max(end, start)
            await self._send_results("", True, from_finalize, None, start, end)
            self.last_final_end = end
            return
        self.finalized = True
        text = self.parts.pop(0) if self.parts else ""
        start = self.part_start
        await self._send_results(text, True, from_finalize, self.utterance, start, max(end, start))
        self.last_final_end = max(end, start)

    async def finalize(self) -> None:
        async with self.lock:
            end = self.segmenter.last_voice_end if self.segmenter.in_speech else self.segmenter.time
            await self._send_final(from_finalize=True, end=end)

    async def watchdog(self) -> None:
        """End a segment by wall clock when audio stops arriving mid-utterance."""
        hangover = self.segmenter.hangover_seconds
        while True:
            await asyncio.sleep(0.05)
            async with self.lock:
                idle = time.monotonic() - self.last_audio_wall
                if self.segmenter.in_speech and idle >= hangover:
                    await self._on_end(self.segmenter.force_end().time)

    async def close_stream(self) -> None:
        async with self.lock:
            if self.segmenter.in_speech:
                await self._on_end(self.segmenter.force_end().time)
            await self._send(
                {
                    "type": "Metadata",
                    "transaction_key": "deprecated",
                    "request_id": self.request_id,
                    "sha256": self.sha.hexdigest(),
                    "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "duration": round(self.segmenter.time, 3),
                    "channels": int(self.conn.query.get("channels", "1")),
                    "models": [MODEL_UUID],
                    "model_info": {
                        MODEL_UUID: {
                            "name": self.model,
                            "version": "2025-01-01.0",
                            "arch": "nova-3",
                        }
                    },
                }
            )
            await self.ws.close(code=WSCloseCode.OK)

    async def send_error(self, description: str, raw: str) -> None:
        await self._send(
            {"type": "Error", "variant": "SchemaError", "description": description, "message": raw}
        )

    async def _send(self, message: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(message))

    async def _send_results(
        self,
        text: str,
        is_final: bool,
        from_finalize: bool,
        utterance: int | None,
        start: float,
        end: float,
    ) -> None:
        duration = max(0.0, end - start)
        tokens = text.split()
        step = duration / len(tokens) if tokens else 0.0
        words = [
            {
                "word": re.sub(r"[^\w']", "", tok).lower() or tok,
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": 0.99,
                "punctuated_word": tok,
            }
            for i, tok in enumerate(tokens)
        ]
        message: dict[str, Any] = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(duration, 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": is_final,
            "channel": {
                "alternatives": [{"transcript": text, "confidence": 0.99 if text else 0.0, "words": words}]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": self.model, "version": "2025-01-01.0", "arch": "nova-3"},
                "model_uuid": MODEL_UUID,
            },
            "from_finalize": from_finalize,
        }
        result = SttResult(text, is_final, from_finalize, utterance, time.monotonic())
        if is_final and self.fake.final_delay > 0:
            # Told now, said later: the audio that follows is taken in meanwhile, as a real
            # service goes on listening while it decodes.
            self.fake._spawn(self._send_late(message, result))
            return
        self.conn.results.append(result)
        await self._send(message)

    async def _send_late(self, message: dict[str, Any], result: SttResult) -> None:
        await asyncio.sleep(self.fake.final_delay)
        self.conn.results.append(dataclasses.replace(result, at=time.monotonic()))
        await self._send(message)


class _TtsSession:
    """State of one TTS socket: text buffer, audio worker, Clear handling."""

    def __init__(self, fake: FakeDeepgram, conn: TtsConnection, ws: web.WebSocketResponse):
        self.fake = fake
        self.conn = conn
        self.ws = ws
        self.buffer: list[str] = []
        self.queue: asyncio.Queue[TtsUtterance] = asyncio.Queue()
        self.lock = asyncio.Lock()
        self.generation = 0
        self.next_sequence = 0

    async def send_json(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(message))

    def flush(self) -> None:
        text = "".join(self.buffer).strip()
        self.buffer.clear()
        utt = TtsUtterance(text, self.next_sequence, time.monotonic(), generation=self.generation)
        self.next_sequence += 1
        self.conn.utterances.append(utt)
        self.queue.put_nowait(utt)

    async def clear(self) -> None:
        async with self.lock:
            self.conn.clear_count += 1
            self.generation += 1
            self.buffer.clear()
            for utt in self.conn.utterances:
                if not utt.completed:
                    utt.cleared = True
            while not self.queue.empty():
                self.queue.get_nowait()
            if not self.ws.closed:
                await self.ws.send_str(
                    json.dumps({"type": "Cleared", "sequence_id": max(0, self.next_sequence - 1)})
                )

    async def worker(self) -> None:
        fake = self.fake
        chunk = max(2, TTS_CHUNK_MS * self.conn.sample_rate // 1000 * 2)  # 2 bytes a sample
        while True:
            utt = await self.queue.get()
            audio = fake.synthesize(utt.text, self.conn.sample_rate)
            for offset in range(0, len(audio), chunk):
                async with self.lock:
                    if utt.generation != self.generation or self.ws.closed:
                        break
                    piece = audio[offset : offset + chunk]
                    await self.ws.send_bytes(piece)
                    utt.audio_bytes += len(piece)
                if fake.tts_chunk_delay > 0:
                    await asyncio.sleep(fake.tts_chunk_delay)
                else:
                    await asyncio.sleep(0)
            else:
                async with self.lock:
                    if utt.generation == self.generation and not self.ws.closed:
                        await self.ws.send_str(
                            json.dumps({"type": "Flushed", "sequence_id": utt.sequence_id})
                        )
                        utt.completed_at = time.monotonic()
