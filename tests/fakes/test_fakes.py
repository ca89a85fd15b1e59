"""The fakes, exercised over real sockets by the real client code they stand in for.

Why: a fake is only useful if production clients (deepgram-sdk, Pipecat services,
openai, twilio, Pipecat's Twilio serializer) work against it unmodified; these
tests pin that down, and pin the audio fixtures' properties the e2e tests rely on.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.llm_service import FunctionCallParams  # module level: Pipecat resolves annotations

from tests.audio import NAMES, PAUSES, TEXTS, load, pauses, silence
from tests.fakes._pcm import tone
from tests.fakes.deepgram import FakeDeepgram, count_utterances
from tests.fakes.openai import Call, ChatRequest, Drop, Fail, FakeOpenAI, Reply, Stall, ToolCalls
from tests.fakes.twilio_caller import (
    TwilioCaller,
    inbound_call_params,
    parse_stream_twiml,
    twilio_signature,
)
from tests.fakes.twilio_rest import FakeTwilioRest

RATE = 8000


# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------


async def twilio_serializer(stream_sid: str = "MZ" + "0" * 32) -> TwilioFrameSerializer:
    """Pipecat's Twilio serializer set up as the transport sets it up, with the automatic
    hang-up off as production has it."""
    ser = TwilioFrameSerializer(stream_sid, params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
    # setup() only reads the pipeline input rate (what the transport passes in).
    await ser.setup(SimpleNamespace(audio_in_sample_rate=RATE))  # type: ignore[arg-type]
    return ser


async def twilio_to_pcm(ulaw: bytes) -> list[bytes]:
    """Run mu-law through Pipecat's Twilio serializer in 20 ms media messages,
    exactly as the transport does; return the PCM frames it produces."""
    ser = await twilio_serializer()
    frames = []
    for i in range(0, len(ulaw), 160):
        payload = base64.b64encode(ulaw[i : i + 160]).decode()
        frame = await ser.deserialize(json.dumps({"event": "media", "media": {"payload": payload}}))
        assert frame is not None
        frames.append(frame.audio)  # type: ignore[attr-defined]
    return frames


def audio_frames(pcm_frames: list[bytes]) -> list[Any]:
    from pipecat.frames.frames import InputAudioRawFrame

    return [InputAudioRawFrame(audio=f, sample_rate=RATE, num_channels=1) for f in pcm_frames]


@asynccontextmanager
async def tiny_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    path: str = "/",
    method: str = "GET",
) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------------
# audio fixtures
# ---------------------------------------------------------------------------------


def test_the_paused_fixtures_pause_where_they_were_recorded_to() -> None:
    breaks = {name: [float(ms) / 1000 for ms in re.findall(r'time="(\d+)ms"', ssml)]
              for name, ssml in PAUSES.items()}
    for name, wanted in breaks.items():
        heard = [end - start for start, end in pauses(name)]
        assert len(heard) == len(wanted), (name, heard)
        for length, asked in zip(heard, wanted, strict=True):
            assert asked - 0.1 <= length <= asked + 0.1, (name, heard)
    assert all(pauses(name) == [] for name in ("yes", "tuesday_works"))


@pytest.mark.asyncio
@pytest.mark.parametrize("name", [name for name in NAMES if name not in PAUSES])
async def test_fixture_is_one_utterance_for_segmenter_and_silero(name: str) -> None:
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADState

    ulaw = load(name)
    assert 4000 < len(ulaw) < 60_000  # from "um" to a whole sentence
    pcm = b"".join(await twilio_to_pcm(silence(1.0) + ulaw + silence(1.5)))
    segments = count_utterances(pcm, RATE)
    assert len(segments) == 1, segments
    start, end = segments[0]
    assert 0.9 <= start <= 1.3 and end - start > 0.3

    vad = SileroVADAnalyzer(sample_rate=RATE)
    vad.set_sample_rate(RATE)
    step = vad.num_frames_required() * 2
    states = [await vad.analyze_audio(pcm[i : i + step]) for i in range(0, len(pcm) - step + 1, step)]
    turns = sum(1 for a, b in itertools.pairwise(states) if a != b and b == VADState.SPEAKING)
    stops = sum(1 for a, b in itertools.pairwise(states) if a == VADState.STOPPING and b == VADState.QUIET)
    assert stops == 1, f"Silero ended {stops} turns in {name}"
    assert turns >= 1


# ---------------------------------------------------------------------------------
# Deepgram speech-to-text
# ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_deepgram_stt_with_pipecat_service() -> None:
    from pipecat.frames.frames import (
        InterimTranscriptionFrame,
        TranscriptionFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.pipeline.worker import PipelineParams
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.tests.utils import SleepFrame, run_test

    script = [TEXTS["book_oil_change"], TEXTS["thanks_goodbye"]]
    async with FakeDeepgram(script, api_key="dg-key") as dg:
        stt = DeepgramSTTService(api_key="dg-key", base_url=dg.ws_base_url)
        first = await twilio_to_pcm(silence(0.3) + load("book_oil_change") + silence(0.8))
        # Second utterance: Pipecat's VAD stop arrives 0.2 s after speech, before the
        # fake's 0.5 s hangover, so this final must come from Finalize.
        second = await twilio_to_pcm(load("thanks_goodbye") + silence(0.2))
        frames = [
            *audio_frames(first),
            SleepFrame(0.3),
            *audio_frames(second),
            VADUserStoppedSpeakingFrame(),
            SleepFrame(0.3),
        ]
        down, _ = await run_test(
            stt, frames_to_send=frames, pipeline_params=PipelineParams(audio_in_sample_rate=RATE)
        )

    finals = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    interims = [f.text for f in down if isinstance(f, InterimTranscriptionFrame)]
    assert finals == script
    assert interims and all(any(s.startswith(i) for s in script) for i in interims)
    assert len(dg.stt_connections) == 1
    conn = dg.stt_connections[0]
    assert conn.authorization == "Token dg-key"
    assert conn.query["encoding"] == "linear16" and conn.query["sample_rate"] == "8000"
    assert conn.query["interim_results"] == "true" and conn.query["model"] == "nova-3-general"
    assert conn.bytes_received == sum(map(len, first + second))
    assert [r.from_finalize for r in conn.finals] == [False, True]
    assert [r.utterance for r in conn.finals] == [0, 1]
    assert conn.count("Finalize") == 1 and conn.close_stream_received
    assert dg.transcripts == script and dg.unscripted_utterances == []


@pytest.mark.asyncio
async def test_deepgram_stt_wire_format_with_sdk() -> None:
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
    from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results

    async with FakeDeepgram([TEXTS["yes_thats_right"]]) as dg:
        url = dg.ws_base_url
        env = DeepgramClientEnvironment(base=dg.base_url, production=url, agent=url, agent_rest=url)
        client = AsyncDeepgramClient(api_key="sdk-key", environment=env)
        pcm = b"".join(await twilio_to_pcm(load("yes_thats_right") + silence(0.7)))
        async with client.listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate="8000", interim_results="false"
        ) as conn:
            await conn.send_keep_alive()
            for i in range(0, len(pcm), 640):
                await conn.send_media(pcm[i : i + 640])
            final = await asyncio.wait_for(conn.recv(), 5)
            await conn.send_finalize()
            empty = await asyncio.wait_for(conn.recv(), 5)
            await conn.send_close_stream()
            metadata = await asyncio.wait_for(conn.recv(), 5)

    assert isinstance(final, ListenV1Results)
    assert final.is_final and final.speech_final and not final.from_finalize
    alt = final.channel.alternatives[0]
    assert alt.transcript == "Yes, that's right."
    assert [w.punctuated_word for w in alt.words] == ["Yes,", "that's", "right."]
    assert [w.word for w in alt.words] == ["yes", "that's", "right"]
    assert 0.0 <= final.start < final.start + final.duration <= len(pcm) / 2 / RATE
    assert isinstance(empty, ListenV1Results)
    assert empty.is_final and empty.from_finalize and empty.channel.alternatives[0].transcript == ""
    assert isinstance(metadata, ListenV1Metadata)
    assert metadata.duration == pytest.approx(len(pcm) / 2 / RATE, abs=0.03)
    conn_rec = dg.stt_connections[0]
    assert conn_rec.count("KeepAlive") == 1 and conn_rec.interims == []
    assert conn_rec.query["model"] == "nova-3" and conn_rec.authorization == "Token sdk-key"


@pytest.mark.asyncio
async def test_deepgram_finalises_a_paused_sentence_as_far_as_it_was_said() -> None:
    # "I need... um... an oil change for my Civic.": a Finalize in each pause gives the words
    # said before it, as a real recogniser would; each connection says the script from the start.
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

    name = "paused_civic"
    async with FakeDeepgram([TEXTS[name]], per_connection=True) as dg:
        url = dg.ws_base_url
        env = DeepgramClientEnvironment(base=dg.base_url, production=url, agent=url, agent_rest=url)
        client = AsyncDeepgramClient(api_key="sdk-key", environment=env)
        pcm = b"".join(await twilio_to_pcm(load(name) + silence(0.7)))
        # Where the VAD would stop: 0.2 s into each pause; the last final comes from the hangover.
        cuts = [round((start + 0.2) * RATE) * 2 for start, _ in pauses(name)] + [len(pcm)]
        for _connection in range(2):
            async with client.listen.v1.connect(model="nova-3", encoding="linear16",
                                                sample_rate="8000", interim_results="false") as conn:
                sent = 0
                for cut in cuts:
                    await conn.send_media(pcm[sent:cut])
                    sent = cut
                    if cut < len(pcm):
                        await conn.send_finalize()
                    await asyncio.wait_for(conn.recv(), 5)
                await conn.send_close_stream()

    for conn_rec in dg.stt_connections:
        assert [r.text for r in conn_rec.finals] == ["I need", "um", "an oil change for my Civic."]
        assert [r.utterance for r in conn_rec.finals] == [0, 0, 0]
        assert [r.from_finalize for r in conn_rec.finals] == [True, True, False]
    assert dg.unscripted_utterances == []


@pytest.mark.asyncio
async def test_deepgram_final_delay_holds_finals_back_and_keeps_listening() -> None:
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

    async with FakeDeepgram([TEXTS["yes_thats_right"]], final_delay=0.25) as dg:
        url = dg.ws_base_url
        env = DeepgramClientEnvironment(base=dg.base_url, production=url, agent=url, agent_rest=url)
        client = AsyncDeepgramClient(api_key="sdk-key", environment=env)
        pcm = b"".join(await twilio_to_pcm(load("yes_thats_right")))
        async with client.listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate="8000", interim_results="false"
        ) as conn:
            for i in range(0, len(pcm), 640):
                await conn.send_media(pcm[i : i + 640])
            asked = time.monotonic()
            await conn.send_finalize()
            await conn.send_media(bytes(640))  # audio sent while the final is on its way is taken
            final = await asyncio.wait_for(conn.recv(), 5)
            answered = time.monotonic()

    assert final.is_final and final.from_finalize
    assert final.channel.alternatives[0].transcript == "Yes, that's right."
    assert 0.25 <= answered - asked < 0.5
    assert dg.stt_connections[0].bytes_received == len(pcm) + 640


@pytest.mark.asyncio
async def test_deepgram_script_exhausted_and_bad_key() -> None:
    from pipecat.frames.frames import ErrorFrame, TranscriptionFrame
    from pipecat.pipeline.worker import PipelineParams
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.tests.utils import SleepFrame, run_test

    async with FakeDeepgram([], api_key="right") as dg:
        bad = DeepgramSTTService(api_key="wrong", base_url=dg.ws_base_url)
        _, up = await run_test(
            bad,
            frames_to_send=[SleepFrame(0.1)],
            pipeline_params=PipelineParams(audio_in_sample_rate=RATE),
        )
        assert any(isinstance(f, ErrorFrame) and "401" in f.error for f in up)
        assert dg.stt_connections == [] and dg.rejected_handshakes

        good = DeepgramSTTService(api_key="right", base_url=dg.ws_base_url)
        pcm = await twilio_to_pcm(load("cancel") + silence(0.7))
        down, _ = await run_test(
            good,
            frames_to_send=[*audio_frames(pcm), SleepFrame(0.3)],
            pipeline_params=PipelineParams(audio_in_sample_rate=RATE),
        )
        # Nothing scripted: an empty final (no TranscriptionFrame), noted for the test.
        assert not any(isinstance(f, TranscriptionFrame) for f in down)
        assert dg.unscripted_utterances == [0] and dg.utterances_detected == 1
        dg.add_script("appended", "later")  # utterance N -> script[N], also once started
        assert dg.transcript_for(0) == "appended" and dg.transcript_for(1) == "later"


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/v1/listen", "/v1/speak"])
async def test_deepgram_refuses_audio_other_than_linear16(path: str) -> None:
    async with FakeDeepgram() as dg, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{dg.ws_base_url}{path}?encoding=mulaw&sample_rate=8000")
    assert refused.value.status == 400
    assert dg.stt_connections == [] and dg.tts_connections == []


@pytest.mark.asyncio
async def test_deepgram_switches_drop_and_refuse_speech_to_text() -> None:
    listen = "/v1/listen?encoding=linear16&sample_rate=8000"
    async with FakeDeepgram() as dg, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(dg.ws_base_url + listen)
        await ws.send_bytes(tone(0.1, RATE))
        await dg.wait_until(lambda: dg.stt_connections[0].bytes_received > 0)
        assert await dg.drop_listen() == 1
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1011  # a server failing mid-stream
        dg.refuse_listen = 503
        for _ in range(2):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(dg.ws_base_url + listen)
            assert refused.value.status == 503
        dg.refuse_listen = None  # back
        again = await session.ws_connect(dg.ws_base_url + listen)
        await again.close()
        assert await dg.drop_listen() == 0  # nothing left open to drop
    assert dg.refused == {"/v1/listen": 2, "/v1/speak": 0}
    assert len(dg.stt_connections) == 2


@pytest.mark.asyncio
async def test_deepgram_switches_refuse_and_stall_text_to_speech() -> None:
    speak = "/v1/speak?encoding=linear16&sample_rate=8000"
    async with FakeDeepgram(tts_ms_per_char=10) as dg, aiohttp.ClientSession() as session:
        dg.refuse_speak = 429
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(dg.ws_base_url + speak)
        assert refused.value.status == 429 and dg.refused["/v1/speak"] == 1
        dg.refuse_speak = None
        ws = await session.ws_connect(dg.ws_base_url + speak)
        assert json.loads((await ws.receive()).data)["type"] == "Metadata"
        dg.tts_stalled = True
        await ws.send_json({"type": "Speak", "text": "Hello there."})
        await ws.send_json({"type": "Flush"})
        with pytest.raises(TimeoutError):  # neither audio nor Flushed
            await ws.receive(timeout=0.5)
        assert [m["type"] for m in dg.tts_connections[0].messages] == ["Speak", "Flush"]
        assert dg.spoken == []
        dg.tts_stalled = False  # answers again
        await ws.send_json({"type": "Speak", "text": "Hello again."})
        await ws.send_json({"type": "Flush"})
        audio = (await ws.receive(timeout=2)).data
        assert isinstance(audio, bytes) and audio
        await ws.close()
    assert dg.spoken == ["Hello again."]


# ---------------------------------------------------------------------------------
# Deepgram text-to-speech
# ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_deepgram_tts_with_pipecat_service() -> None:
    from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame
    from pipecat.pipeline.worker import PipelineParams
    from pipecat.services.deepgram.tts import DeepgramTTSService
    from pipecat.tests.utils import SleepFrame, run_test

    texts = ["Hello there. How can I help?", "Bye."]
    async with FakeDeepgram(api_key="k", tts_ms_per_char=10) as dg:
        tts = DeepgramTTSService(
            api_key="k",
            base_url=dg.ws_base_url,
            settings=DeepgramTTSService.Settings(voice="aura-2-thalia-en"),
        )
        down, _ = await run_test(
            tts,
            frames_to_send=[
                TTSSpeakFrame(texts[0]),
                SleepFrame(0.4),
                TTSSpeakFrame(texts[1]),
                SleepFrame(0.4),
            ],
            pipeline_params=PipelineParams(audio_out_sample_rate=RATE),
        )

    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in audio} == {RATE}
    expected = sum(round(len(t) * 0.010 * RATE) * 2 for t in texts)
    assert sum(len(f.audio) for f in audio) == expected
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2  # one per Flushed
    assert dg.spoken == texts
    conn = dg.tts_connections[0]
    assert conn.query == {
        "model": "aura-2-thalia-en",
        "encoding": "linear16",
        "sample_rate": "8000",
    }
    assert conn.authorization == "Token k"
    assert [u.sequence_id for u in conn.utterances] == [0, 1]
    assert all(u.completed and not u.cleared for u in conn.utterances)
    assert [m["type"] for m in conn.messages] == ["Speak", "Flush", "Speak", "Flush", "Close"]


@pytest.mark.asyncio
async def test_deepgram_tts_clear_stops_audio_on_the_wire() -> None:
    async with (
        FakeDeepgram(tts_ms_per_char=60, tts_chunk_delay=0.02) as dg,
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{dg.ws_base_url}/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=8000",
            headers={"Authorization": "Token x"},
        ) as ws,
    ):
        metadata = await ws.receive_json()
        await ws.send_json({"type": "Speak", "text": "A long answer that keeps going. " * 3})
        await ws.send_json({"type": "Flush"})
        chunks = [await ws.receive_bytes() for _ in range(3)]
        await ws.send_json({"type": "Clear"})
        after: list[Any] = []
        while True:
            msg = await ws.receive(timeout=2)
            if msg.type == aiohttp.WSMsgType.TEXT:
                after.append(json.loads(msg.data))
                break
            after.append(msg.data)
        await ws.send_json({"type": "Speak", "text": "Ok."})
        await ws.send_json({"type": "Flush"})
        tail = []
        while True:
            msg = await ws.receive(timeout=2)
            if msg.type == aiohttp.WSMsgType.TEXT:
                flushed = json.loads(msg.data)
                break
            tail.append(msg.data)
        await ws.send_json({"type": "Close"})

    assert metadata["type"] == "Metadata" and metadata["model_name"] == "aura-2-thalia-en"
    assert all(len(c) == 640 for c in chunks)  # 40 ms of 8 kHz linear16
    assert after[-1]["type"] == "Cleared" and len(after) <= 2  # at most one chunk in flight
    assert flushed == {"type": "Flushed", "sequence_id": 1}
    assert sum(map(len, tail)) == round(3 * 0.060 * RATE) * 2
    conn = dg.tts_connections[0]
    assert conn.clear_count == 1 and dg.clear_count == 1
    first = conn.utterances[0]
    assert first.cleared and not first.completed
    assert first.audio_bytes < round(len(first.text) * 0.060 * RATE) * 2
    assert dg.spoken == [first.text, "Ok."]


@pytest.mark.asyncio
async def test_deepgram_tts_interruption_from_pipecat_sends_clear() -> None:
    from pipecat.frames.frames import InterruptionFrame, TTSSpeakFrame
    from pipecat.pipeline.worker import PipelineParams
    from pipecat.services.deepgram.tts import DeepgramTTSService
    from pipecat.tests.utils import SleepFrame, run_test

    async with FakeDeepgram(tts_chunk_delay=0.02) as dg:
        tts = DeepgramTTSService(api_key="k", base_url=dg.ws_base_url)
        await run_test(
            tts,
            frames_to_send=[
                TTSSpeakFrame("This sentence is long enough to still be playing."),
                SleepFrame(0.2),
                InterruptionFrame(),
                SleepFrame(0.2),
            ],
            pipeline_params=PipelineParams(audio_out_sample_rate=RATE),
        )
    assert dg.clear_count == 1
    utt = dg.tts_utterances[0]
    assert utt.cleared and not utt.completed


# ---------------------------------------------------------------------------------
# OpenAI
# ---------------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "check_availability",
            "description": "Open slots on a date.",
            "parameters": {
                "type": "object",
                "properties": {"date": {"type": "string"}},
                "required": ["date"],
            },
        },
    }
]


@pytest.mark.asyncio
async def test_openai_sdk_streams_tool_calls_then_text() -> None:
    from openai import AsyncOpenAI

    steps = [
        ToolCalls(
            [
                Call("check_availability", {"date": "2026-05-01"}, id="call_a"),
                Call("lookup_customer", {"phone": "+15551234567"}),
            ]
        ),
        Reply("Ten o'clock tomorrow works."),
    ]
    async with (
        FakeOpenAI(steps, api_key="sk-test", chunk_chars=4) as fake,
        AsyncOpenAI(api_key="sk-test", base_url=fake.api_base, max_retries=0) as client,
    ):
        messages: list[Any] = [{"role": "user", "content": "Oil change tomorrow?"}]
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=messages,
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        calls: dict[int, dict[str, str]] = {}
        finish, usage, arg_chunks = None, None, 0
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for tc in choice.delta.tool_calls or []:
                    entry = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                    entry["id"] += tc.id or ""
                    entry["name"] += (tc.function and tc.function.name) or ""
                    entry["args"] += (tc.function and tc.function.arguments) or ""
                    arg_chunks += bool(tc.function and tc.function.arguments)
        assert finish == "tool_calls" and usage is not None and usage.total_tokens > 0
        assert calls[0] == {
            "id": "call_a",
            "name": "check_availability",
            "args": '{"date": "2026-05-01"}',
        }
        assert calls[1]["name"] == "lookup_customer" and calls[1]["id"].startswith("call_")
        assert json.loads(calls[1]["args"]) == {"phone": "+15551234567"}
        assert arg_chunks > 2  # arguments really were streamed in pieces

        messages += [
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["args"]},
                    }
                    for c in calls.values()
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": '{"slots": ["10:00"]}'},
            {"role": "tool", "tool_call_id": calls[1]["id"], "content": "not json"},
        ]
        stream = await client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Ten o'clock tomorrow works."

    first, second = fake.requests
    assert first.authorization == "Bearer sk-test" and first.tool_names == ["check_availability"]
    assert first.body["stream_options"] == {"include_usage": True}
    assert first.last_user_text() == "Oil change tomorrow?"
    assert second.tool_results() == {"call_a": {"slots": ["10:00"]}, calls[1]["id"]: "not json"}
    assert first.completed and second.completed and second.status == 200


@pytest.mark.asyncio
async def test_openai_errors_overrun_and_non_streaming_refused() -> None:
    import openai

    steps = [Fail(429, "Rate limit reached", "requests", "rate_limit_exceeded")]
    async with (
        FakeOpenAI(steps, api_key="sk-test") as fake,
        openai.AsyncOpenAI(api_key="sk-test", base_url=fake.api_base, max_retries=0) as client,
        openai.AsyncOpenAI(api_key="nope", base_url=fake.api_base, max_retries=0) as wrong,
    ):
        msgs: list[Any] = [{"role": "user", "content": "hi"}]
        with pytest.raises(openai.RateLimitError) as rate:
            await client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True)
        assert rate.value.code == "rate_limit_exceeded"
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True)
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True)
        with pytest.raises(openai.BadRequestError):  # production only streams
            await client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    assert [r.status for r in fake.requests] == [429, 500]
    assert len(fake.policy.overruns) == 1  # type: ignore[attr-defined]
    assert fake.rejected[0]["Authorization"] == "Bearer nope"


@pytest.mark.asyncio
async def test_openai_with_pipecat_llm_tool_round_trip() -> None:
    from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
    from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
    from pipecat.frames.frames import LLMContextFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.tests.utils import SleepFrame, run_test

    async def policy(req: ChatRequest) -> ToolCalls | Reply:
        await asyncio.sleep(0)  # async policies are awaited
        results = req.tool_results()
        if not results:
            return ToolCalls([Call("check_availability", {"date": "2026-05-01"}, id="call_1")])
        return Reply(f"I have {results['call_1']['slots'][0]} open.")

    async with FakeOpenAI(policy, api_key="sk-test", chunk_chars=3) as fake:
        llm = OpenAILLMService(
            api_key="sk-test",
            base_url=fake.api_base,
            settings=OpenAILLMService.Settings(model="gpt-4o-mini", system_instruction="Be brief."),
        )
        seen: list[dict[str, Any]] = []

        async def check(params: FunctionCallParams) -> None:
            seen.append(dict(params.arguments))
            await params.result_callback({"slots": ["10:00"]})

        llm.register_function("check_availability", check)
        schema = FunctionSchema(
            name="check_availability",
            description="Open slots on a date.",
            properties={"date": {"type": "string"}},
            required=["date"],
        )
        ctx = LLMContext(
            messages=[{"role": "user", "content": "Any slots tomorrow?"}],
            tools=ToolsSchema(standard_tools=[schema]),
        )
        _, assistant = LLMContextAggregatorPair(ctx)
        await run_test(Pipeline([llm, assistant]), frames_to_send=[LLMContextFrame(ctx), SleepFrame(1.0)])

    assert seen == [{"date": "2026-05-01"}]
    assert len(fake.requests) == 2
    first, second = fake.requests
    assert first.model == "gpt-4o-mini" and first.body["stream"]
    assert first.messages[0] == {"role": "system", "content": "Be brief."}
    assert first.tool_names == ["check_availability"]
    assert second.tool_results() == {"call_1": {"slots": ["10:00"]}}
    assert ctx.get_messages()[-1] == {"role": "assistant", "content": "I have 10:00 open."}


@pytest.mark.asyncio
async def test_openai_records_client_disconnect_mid_stream() -> None:
    from openai import AsyncOpenAI

    async with (
        FakeOpenAI([Reply("word " * 50)], chunk_delay=0.02) as fake,
        AsyncOpenAI(api_key="x", base_url=fake.api_base) as client,
    ):
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        received = 0
        async for _ in stream:
            received += 1
            if received == 3:
                break
        await stream.close()  # what an interruption does to Pipecat's stream
        await fake.wait_until(lambda: fake.requests[0].disconnected, 3)
    assert not fake.requests[0].completed


@pytest.mark.asyncio
async def test_openai_stalls_before_the_first_token_and_mid_answer() -> None:
    from openai import AsyncOpenAI

    steps = [Stall(Reply("Hello there, friend."), 1.0), Stall(Reply("Hello there, friend."), 1.0, 8)]
    answers: list[list[tuple[float, str]]] = []  # per request: (seconds since asking, text piece)
    async with (
        FakeOpenAI(steps, chunk_chars=4) as fake,
        AsyncOpenAI(api_key="x", base_url=fake.api_base, max_retries=0) as client,
    ):
        for _ in steps:
            asked = time.monotonic()
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
            answers.append([(time.monotonic() - asked, chunk.choices[0].delta.content)
                            async for chunk in stream
                            if chunk.choices and chunk.choices[0].delta.content])
    for answer in answers:
        assert "".join(text for _, text in answer) == "Hello there, friend."
    before, during = ([b[0] - a[0] for a, b in itertools.pairwise(answer)] for answer in answers)
    assert answers[0][0][0] >= 0.95 and max(before) < 0.5  # the wait came before the first token
    # ...and here after "Hello th" (8 characters): the third piece waited.
    assert answers[1][0][0] < 0.5 and during[1] >= 0.95 and max(during[:1] + during[2:]) < 0.5
    assert [r.completed for r in fake.requests] == [True, True]


@pytest.mark.asyncio
async def test_openai_stall_ends_when_the_client_leaves() -> None:
    import openai

    async with (
        FakeOpenAI([Stall(Reply("Never mind."), 30)]) as fake,
        openai.AsyncOpenAI(api_key="x", base_url=fake.api_base, max_retries=0, timeout=0.3) as client,
    ):
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        with pytest.raises(openai.APITimeoutError):
            async for _ in stream:
                pass
        await fake.wait_until(lambda: fake.requests[0].disconnected, 3)  # not after 30 s
    assert not fake.requests[0].completed


@pytest.mark.asyncio
async def test_openai_drops_the_connection_part_way() -> None:
    import openai

    async with (
        FakeOpenAI([Drop(Reply("I can do Tuesday at ten."), 8)], chunk_chars=4) as fake,
        openai.AsyncOpenAI(api_key="x", base_url=fake.api_base, max_retries=0) as client,
    ):
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        received = ""
        with pytest.raises(openai.APIConnectionError) as cut:
            async for chunk in stream:
                received += (chunk.choices and chunk.choices[0].delta.content) or ""
    assert not isinstance(cut.value, openai.APITimeoutError)  # a cut, not a wait
    assert received == "I can do"  # the pieces sent before the cut arrived
    assert fake.requests[0].disconnected and not fake.requests[0].completed


# ---------------------------------------------------------------------------------
# Twilio REST
# ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_twilio_rest_client_create_and_update() -> None:
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client

    async with FakeTwilioRest(auth_token="tok") as tw:

        def use_client() -> dict[str, Any]:
            client = Client(tw.account_sid, "tok")
            client.api.base_url = tw.base_url  # the one switch: see twilio_rest docstring
            call = client.calls.create(
                to="+15551230001",
                from_="+15550000000",
                url="https://shop.example/twilio/voice",
                status_callback="https://shop.example/twilio/status",
                status_callback_event=["initiated", "answered", "completed"],
                machine_detection="DetectMessageEnd",
                async_amd="true",
            )
            out: dict[str, Any] = {"created": call}
            out["redirected"] = client.calls(call.sid).update(twiml="<Response><Hangup/></Response>")
            out["ended"] = client.calls(call.sid).update(status="completed")
            for key, fn in {
                "missing": lambda: client.calls("CA" + "0" * 32).update(status="completed"),
                "late_redirect": lambda: client.calls(call.sid).update(url="https://x/y"),
            }.items():
                try:
                    fn()
                except TwilioRestException as exc:
                    out[key] = exc
            return out

        out = await asyncio.to_thread(use_client)

    created = out["created"]
    assert re.fullmatch(r"CA[0-9a-f]{32}", created.sid)
    assert created.status == "queued" and created.direction == "outbound-api"
    assert created.to == "+15551230001" and created._from == "+15550000000"
    assert created.date_created is not None  # RFC 2822 parsed by the client
    assert out["redirected"].status == "queued"
    assert out["ended"].status == "completed" and out["ended"].end_time is not None
    assert out["missing"].status == 404 and out["missing"].code == 20404
    assert out["late_redirect"].status == 400 and out["late_redirect"].code == 21220

    form = tw.created_calls[0]
    assert form.auth == (tw.account_sid, "tok")
    assert form.get("To") == "+15551230001" and form.get("From") == "+15550000000"
    assert form.get("Url") == "https://shop.example/twilio/voice"
    assert form.get("StatusCallback") == "https://shop.example/twilio/status"
    assert form.getall("StatusCallbackEvent") == ["initiated", "answered", "completed"]
    assert form.get("MachineDetection") == "DetectMessageEnd" and form.get("AsyncAmd") == "true"
    assert tw.updates[0].get("Twiml") == "<Response><Hangup/></Response>"
    assert tw.hangups == [created.sid]


@pytest.mark.asyncio
async def test_twilio_rest_auth_failures_and_async_client() -> None:
    from twilio.base.exceptions import TwilioRestException
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    async with FakeTwilioRest(auth_token="tok") as tw:
        bad = Client(tw.account_sid, "wrong", http_client=AsyncTwilioHttpClient())
        bad.api.base_url = tw.base_url
        with pytest.raises(TwilioRestException) as unauthorized:
            await bad.calls.create_async(to="+1555", from_="+1666", url="https://x/v")
        await bad.http_client.close()  # type: ignore[attr-defined]

        client = tw.client(use_async=True)
        tw.fail_next(2, 429)
        tw.fail_number("+15550009999")
        attempts: list[int | str] = []
        for to in ("+15550001111",) * 3 + ("+15550009999",):
            try:
                call = await client.calls.create_async(to=to, from_="+1666", twiml="<Response/>")
                attempts.append(call.status or "")
            except TwilioRestException as exc:
                attempts.append(exc.code)  # type: ignore[arg-type]
        await client.http_client.close()  # type: ignore[attr-defined]

    assert unauthorized.value.status == 401 and unauthorized.value.code == 20003
    assert attempts == [20429, 20429, "queued", 21211]
    assert [r.status for r in tw.creates] == [401, 429, 429, 201, 400]
    assert tw.creates[0].auth == (tw.account_sid, "wrong")
    assert tw.created_calls[0].get("Twiml") == "<Response/>"


@pytest.mark.asyncio
async def test_twilio_rest_lists_calls_newest_first_by_to_and_from() -> None:
    from twilio.base.exceptions import TwilioException

    async with FakeTwilioRest(auth_token="tok") as tw:
        client = tw.client(use_async=True)
        made = [await client.calls.create_async(to=to, from_=from_, twiml="<Response/>")
                for to, from_ in [("+15550001111", "+1666")] * 3 + [("+15550002222", "+1666"),
                                                                  ("+15550001111", "+1777")]]
        tw.register_call(to="+15550001111", from_="+1666", direction="inbound")
        listed = await client.calls.list_async(to="+15550001111", from_="+1666", page_size=2)
        capped = await client.calls.list_async(to="+15550001111", from_="+1666", limit=2)
        with pytest.raises(TwilioException):  # a filter the fake does not implement
            await client.calls.list_async(to="+15550001111", start_time_after=datetime.now(UTC))
        tw.fail_next(1, 503, endpoint="list")
        with pytest.raises(TwilioException):
            await client.calls.list_async(to="+15550001111")
        await client.http_client.close()  # type: ignore[attr-defined]

    inbound = next(sid for sid, call in tw.calls.items() if call["direction"] == "inbound")
    assert [c.sid for c in listed] == [inbound] + [c.sid for c in reversed(made[:3])]
    assert listed[0].date_created is not None and listed[1]._from == "+1666"
    assert [c.sid for c in capped] == [inbound, made[2].sid]
    first, second = tw.lists[:2]
    assert first.form == {"To": ["+15550001111"], "From": ["+1666"], "PageSize": ["2"]}
    assert second.get("Page") == "1" and second.get("To") == "+15550001111"  # the next page's uri
    assert [r.status for r in tw.lists] == [200, 200, 200, 400, 503]
    assert "StartTime>" in tw.lists[3].response["message"]
    assert tw.calls_to("+15550001111") == [made[0].sid, made[1].sid, made[2].sid, made[4].sid, inbound]


@pytest.mark.asyncio
async def test_twilio_rest_create_then_error_stall_or_drop() -> None:
    from twilio.base.exceptions import TwilioRestException

    async with FakeTwilioRest(auth_token="tok") as tw:
        client = tw.client(use_async=True)
        tw.create_then("error", to="+15550002222")  # waits for a create to that number
        tw.create_then("drop")
        tw.create_then("stall")
        tw.clock_offset = -3600.0
        outcomes: list[str] = []
        for to in ("+15550001111", "+15550002222", "+15550003333", "+15550004444"):
            try:
                async with asyncio.timeout(0.3):
                    await client.calls.create_async(to=to, from_="+1666", twiml="<Response/>")
            except (TwilioRestException, aiohttp.ClientError, TimeoutError) as exc:
                outcomes.append(type(exc).__name__)
        await client.http_client.close()  # type: ignore[attr-defined]

    assert outcomes == ["ServerDisconnectedError", "TwilioRestException", "TimeoutError"]
    assert [len(tw.calls_to(to)) for to in ("+15550001111", "+15550002222", "+15550003333")] == [1, 1, 1]
    assert [r.status for r in tw.creates] == [0, 500, 0, 201]  # 0: no answer
    assert tw.creates[1].response["code"] == 20500
    created = datetime.strptime(next(iter(tw.calls.values()))["date_created"], "%a, %d %b %Y %H:%M:%S %z")
    assert abs((datetime.now(UTC) - created).total_seconds() - 3600) < 5  # Twilio's clock, an hour behind


@pytest.mark.asyncio
async def test_twilio_rest_drives_webhooks_with_signatures() -> None:
    from twilio.request_validator import RequestValidator

    received: list[tuple[str, dict[str, str], bool]] = []

    async with FakeTwilioRest(auth_token="tok") as tw:

        async def webhook(request: web.Request) -> web.Response:
            form = {k: str(v) for k, v in (await request.post()).items()}
            ok = RequestValidator("tok").validate(
                str(request.url), form, request.headers.get("X-Twilio-Signature", "")
            )
            received.append((request.path, form, ok))
            return web.Response(text="<Response/>", content_type="text/xml")

        async with tiny_server(webhook, "/twilio/{hook}", "POST") as host:
            client = tw.client(use_async=True)
            call = await client.calls.create_async(
                to="+15551230001",
                from_="+15550000000",
                url=f"http://{host}/twilio/voice",
                status_callback=f"http://{host}/twilio/status",
            )
            await client.http_client.close()  # type: ignore[attr-defined]
            assert call.sid is not None
            status, body = await tw.fetch_twiml(call.sid, AnsweredBy="human")
            assert (status, body) == (200, "<Response/>")
            status, _ = await tw.send_status_callback(call.sid, "completed")
            assert status == 200

    (voice_path, voice, voice_ok), (status_path, cb, cb_ok) = received
    assert voice_path == "/twilio/voice" and voice_ok
    assert voice["CallSid"] == call.sid and voice["CallStatus"] == "in-progress"
    assert voice["Direction"] == "outbound-api" and voice["AnsweredBy"] == "human"
    assert status_path == "/twilio/status" and cb_ok
    assert cb["CallStatus"] == "completed" and cb["CallDuration"].isdigit()


# ---------------------------------------------------------------------------------
# Twilio Media Streams caller
# ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_caller_speaks_media_streams_protocol_to_echo_server() -> None:
    """Echo server: returns the caller's speech as outbound media, and records everything."""
    inbound: list[dict[str, Any]] = []
    echoed = bytearray()

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = ""
        async for msg in ws:
            m = json.loads(msg.data)
            inbound.append(m)
            if m["event"] == "start":
                sid = m["start"]["streamSid"]
            elif m["event"] == "media":
                payload = base64.b64decode(m["media"]["payload"])
                if payload != b"\xff" * 160:  # echo speech only
                    echoed.extend(payload)
                    await ws.send_json(
                        {
                            "event": "media",
                            "streamSid": sid,
                            "media": {"payload": m["media"]["payload"]},
                        }
                    )
            elif m["event"] == "stop":
                break
        return ws

    speech = load("yes_thats_right")
    async with tiny_server(echo, "/twilio/stream") as host:
        caller = TwilioCaller(
            f"ws://{host}/twilio/stream",
            custom_parameters={"from_number": "+15557654321", "token": "abc"},
        )
        async with caller:
            t0 = time.monotonic()
            await caller.say(speech)
            said_in = time.monotonic() - t0
            await caller.wait_for(lambda e: e.event == "media", 2)
            await caller.wait_for_bot_silence(quiet=0.2, timeout=5)
            await caller.press("1")
        await caller.wait_closed(2)

    # what the server saw
    assert inbound[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = inbound[1]
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["start"]["customParameters"] == {"from_number": "+15557654321", "token": "abc"}
    assert start["start"]["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    assert start["start"]["callSid"] == caller.call_sid and caller.stream_sid.startswith("MZ")
    assert start["start"]["tracks"] == ["inbound"] and start["streamSid"] == caller.stream_sid
    seqs = [int(m["sequenceNumber"]) for m in inbound[1:]]
    assert seqs == list(range(1, len(seqs) + 1))
    media = [m for m in inbound if m["event"] == "media"]
    assert [int(m["media"]["chunk"]) for m in media] == list(range(1, len(media) + 1))
    assert [int(m["media"]["timestamp"]) for m in media[:3]] == [0, 20, 40]
    assert all(len(base64.b64decode(m["media"]["payload"])) == 160 for m in media)
    frames = [speech[i : i + 160].ljust(160, b"\xff") for i in range(0, len(speech), 160)]
    assert bytes(echoed) == b"".join(f for f in frames if f != b"\xff" * 160)
    # Paced at real time: never faster; the upper bound only catches a stall (load delays it).
    assert len(speech) / 8000 - 0.05 <= said_in < len(speech) / 8000 + 2
    dtmf = next(m for m in inbound if m["event"] == "dtmf")
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "1"}
    stop = inbound[-1]
    assert stop["event"] == "stop"
    assert stop["stop"] == {"accountSid": caller.account_sid, "callSid": caller.call_sid}

    # what the caller recorded
    assert caller.received_audio == bytes(echoed)
    assert caller.protocol_errors == []
    assert caller.close_code == 1000 and not caller.closed_by_server


@pytest.mark.asyncio
async def test_caller_plays_and_clears_what_pipecats_serializer_sends() -> None:
    """The bot's side as Pipecat writes it (the app's serializer only changes how a call ends):
    a second of speech in 20 ms media messages, then the clear of an interruption."""
    from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame

    async def bot(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # connected
        ser = await twilio_serializer(json.loads((await ws.receive()).data)["streamSid"])
        voice = tone(1.0, RATE)
        for i in range(0, len(voice), 320):
            await ws.send_str(str(await ser.serialize(OutputAudioRawFrame(voice[i : i + 320], RATE, 1))))
        await asyncio.sleep(0.2)
        await ws.send_str(str(await ser.serialize(InterruptionFrame())))
        async for _ in ws:  # the caller's audio, until it hangs up
            pass
        return ws

    async with tiny_server(bot) as host, TwilioCaller(f"ws://{host}/") as caller:
        await caller.wait_for_event("clear", 3)
        heard = caller.heard_audio()
    assert caller.protocol_errors == []  # every message had this stream's sid and a known event
    assert len(caller.received_audio) == RATE  # a second of mu-law, a byte a sample
    assert 0 < len(heard) < RATE  # played out from arrival, and the clear dropped the rest
    assert caller.heard_audio() == heard  # nothing more played after the clear


@pytest.mark.asyncio
async def test_caller_records_server_close_code() -> None:
    async def reject(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # connected
        await ws.receive()  # start
        await ws.close(code=1008, message=b"unknown stream")
        return ws

    async with tiny_server(reject) as host, TwilioCaller(f"ws://{host}/") as caller:
        assert await caller.wait_closed(3) == 1008
        speech = load("cancel")
        # Returns at once, the call being over: well before the speech could have been paced out.
        await asyncio.wait_for(caller.say(speech), timeout=len(speech) / 8000 / 2)
        with pytest.raises(ConnectionError):
            await caller.wait_for_event("media", 1)
    assert caller.closed_by_server and caller.close_code == 1008


def test_twiml_helpers() -> None:
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="wss://shop.example/twilio/stream">'
        '<Parameter name="from_number" value="+15557654321"/>'
        '<Parameter name="token" value="t1"/></Stream></Connect></Response>'
    )
    stream = parse_stream_twiml(twiml)
    assert stream.url == "wss://shop.example/twilio/stream"
    assert stream.parameters == {"from_number": "+15557654321", "token": "t1"}
    caller = TwilioCaller.from_twiml(twiml, url="ws://127.0.0.1:1/twilio/stream")
    assert caller.url == "ws://127.0.0.1:1/twilio/stream"
    assert caller.custom_parameters == stream.parameters

    params = inbound_call_params("CA1", "+15557654321", "+15550000000", "AC1")
    assert params["From"] == "+15557654321" and params["Direction"] == "inbound"
    numbered = TwilioCaller("ws://x/", call_sid="CA1", account_sid="AC1", from_number="+1", to_number="+2")
    assert numbered.webhook_params(CallStatus="ringing") == {
        **inbound_call_params("CA1", "+1", "+2", "AC1"),
        "CallStatus": "ringing",
    }
    from twilio.request_validator import RequestValidator

    url = "https://shop.example/twilio/voice"
    sig = twilio_signature("tok", url, params)
    assert RequestValidator("tok").validate(url, params, sig)
    assert not RequestValidator("other").validate(url, params, sig)
