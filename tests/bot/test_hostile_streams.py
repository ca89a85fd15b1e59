"""Media streams that send what no Twilio stream sends: broken handshakes are refused with 1008
and one log line, bad messages during a call are dropped without harm to it or to other calls,
and oversized ones never reach speech-to-text, with or without uvicorn's message-size limit."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import httpx
import psycopg
import pytest
import uvicorn

import crm
from config.settings import get_settings
from telephony.serializer import MAX_MEDIA_BYTES, MAX_MESSAGE_BYTES
from tests.audio import TEXTS, load
from tests.bot.conftest import DESK_NUMBER, Launcher, _free_socket
from tests.fakes.openai import Reply
from tests.fakes.twilio_caller import FRAME_SECONDS, TwilioCaller, new_sid

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
MESSAGE_TOO_BIG = 1009
# Reply time allowed on top of the same call's reply time alone. The hold-up this guards
# against (a 2 MiB media message's minutes of audio going to speech-to-text) delayed a normal
# call's answers by 5.9 s and 13.4 s; 2 s is far below that (alone, a reply takes ~0.7 s), yet
# wide enough for a dozen more live calls and other agents' tests on a shared 2-core machine.
REPLY_MARGIN_SECONDS = 2.0

CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
DEEP = "[" * 4000 + "]" * 4000  # under the size limit, too deeply nested for the JSON parser


def _start(**fields: Any) -> str:
    start = {"accountSid": new_sid("AC"), "streamSid": new_sid("MZ"), "callSid": new_sid("CA"),
             "tracks": ["inbound"], "customParameters": {}, **fields}
    return json.dumps({"event": "start", "start": {k: v for k, v in start.items() if v is not None}})


def _media(payload: Any) -> str:
    return json.dumps({"event": "media", "media": {"track": "inbound", "payload": payload}})


def _audio(size: int) -> str:
    return base64.b64encode(b"\x00" * size).decode()  # 0x00: the loudest mu-law sample


# -- logs ---------------------------------------------------------------------------------


@pytest.fixture
def logs(launcher: Launcher, caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, also fed by uvicorn, whose loggers do not propagate. (Pipecat's loguru records
    reach it as standard ones: `create_app` installs `config.log_privacy`, which forwards them.)"""
    uvicorn_log = logging.getLogger("uvicorn")
    uvicorn_log.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        uvicorn_log.removeHandler(caplog.handler)


def _trouble(logs: pytest.LogCaptureFixture) -> list[str]:
    """Tracebacks, and errors of the launcher, uvicorn or Pipecat (the database's own are fine)."""
    return [record.getMessage() for record in logs.records
            if record.exc_info or "Traceback" in record.getMessage()
            or (record.levelno >= logging.ERROR
                and record.name.split(".")[0] in ("bot", "pipeline", "uvicorn", "pipecat"))]


def _lines(logs: pytest.LogCaptureFixture, logger_name: str, text: str = "") -> list[str]:
    return [r.getMessage() for r in logs.records if r.name == logger_name and text in r.getMessage()]


async def _eventually(condition: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        # What is waited for happens in the launcher's own tasks: polling is the only way to see it.
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _healthy(launcher: Launcher) -> None:
    """GET /health answers 200 (at once, or soon after the database came back)."""
    async with httpx.AsyncClient(base_url=launcher.base_url) as client:
        async def ok() -> bool:
            return (await client.get("/health")).status_code == 200
        await _eventually(ok)


# -- a second instance, without uvicorn's limit -------------------------------------------


@contextlib.asynccontextmanager
async def _instance_without_size_limit() -> AsyncIterator[str]:
    """A second launcher instance, as `uvicorn bot.app:create_app --factory` starts one: without
    `ws_max_size` (uvicorn then takes messages up to 16 MiB). It shares the first instance's
    configuration and database, so it takes streams of calls the first one answered, as any
    instance may. Yields its stream URL."""
    from bot.app import create_app

    sock = _free_socket()
    # log_config=None keeps uvicorn's logging as the first instance set it, feeding `logs`.
    server = uvicorn.Server(uvicorn.Config(create_app(), ws="websockets-sansio", lifespan="on",
                                           log_level="warning", log_config=None))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/twilio/stream"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 30)
        sock.close()


# -- handshakes -----------------------------------------------------------------------------


async def _handshake(url: str, *messages: str | bytes) -> int | None:
    """Send the messages as a stream's first ones; the close code the server answers with."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0) as ws:
        for message in messages:
            await (ws.send_str(message) if isinstance(message, str) else ws.send_bytes(message))
        answer = await ws.receive(timeout=10)
    assert answer.type == aiohttp.WSMsgType.CLOSE, answer
    return answer.data


# What a stream sends first, and the reason it is refused for.
HANDSHAKE_PROBLEMS: dict[str, tuple[list[str | bytes], str]] = {
    "text that is not JSON": (["not json"], "not JSON"),
    "a binary first message": ([CONNECTED.encode()], "binary frame"),
    "JSON that is not an object": ([json.dumps([1, 2])], "not a JSON object"),
    "JSON nested too deep": ([DEEP], "not JSON"),
    "media before start": ([json.dumps({"event": "media"})], "expected a start message"),
    "a start that is not an object": (
        [CONNECTED, json.dumps({"event": "start", "start": "CA1"})], "expected a start message"),
    "customParameters that are not an object": (
        [CONNECTED, _start(customParameters=["token"])], "customParameters"),
    "customParameters that are not strings": (
        [CONNECTED, _start(customParameters={"customer": 5, "token": "1.x"})], "customParameters"),
    "no callSid": ([CONNECTED, _start(callSid=None)], "callSid"),
    "a callSid that is not a string": ([CONNECTED, _start(callSid=5)], "callSid"),
    "a callSid made to forge log lines": (
        [CONNECTED, _start(callSid="CA1\nrefusing nothing")], "callSid"),
    "no streamSid": ([CONNECTED, _start(streamSid=None)], "streamSid"),
    "a non-ASCII stream token": (
        [CONNECTED, _start(customParameters={"token": "9999999999.é"})], "malformed stream token"),
    "a token expiring beyond int()'s digits": (
        [CONNECTED, _start(customParameters={"token": "9" * 5000 + "." + "A" * 43})],
        "malformed stream token"),
    "an appointment_id beyond int()'s digits": (
        [CONNECTED, _start(customParameters={"appointment_id": "9" * 5000, "token": "1.x"})],
        "malformed stream token"),
}


@pytest.mark.parametrize("problem", list(HANDSHAKE_PROBLEMS))
async def test_a_broken_handshake_is_refused_with_one_log_line(
        launcher: Launcher, logs: pytest.LogCaptureFixture, problem: str) -> None:
    messages, reason = HANDSHAKE_PROBLEMS[problem]
    url = launcher.base_url.replace("http://", "ws://") + "/twilio/stream"
    assert await _handshake(url, *messages) == POLICY_VIOLATION
    (refusal,) = _lines(logs, "bot.media_stream")
    assert refusal.startswith("refusing media stream") and reason in refusal, refusal
    assert "\n" not in refusal
    assert _trouble(logs) == []
    await _healthy(launcher)


async def test_an_oversized_handshake_is_closed_with_or_without_uvicorns_limit(
        launcher: Launcher, logs: pytest.LogCaptureFixture) -> None:
    oversized = _start(customParameters={"token": "1." + "x" * MAX_MESSAGE_BYTES})
    url = launcher.base_url.replace("http://", "ws://") + "/twilio/stream"
    assert await _handshake(url, CONNECTED, oversized) == MESSAGE_TOO_BIG  # uvicorn's doing
    async with _instance_without_size_limit() as unlimited:
        assert await _handshake(unlimited, CONNECTED, oversized) == POLICY_VIOLATION
    assert _lines(logs, "bot.media_stream") == ["refusing media stream: bad handshake: oversized message"]
    assert _trouble(logs) == []
    await _healthy(launcher)


async def test_a_client_leaving_mid_handshake_is_let_go_quietly(
        launcher: Launcher, logs: pytest.LogCaptureFixture) -> None:
    url = launcher.base_url.replace("http://", "ws://") + "/twilio/stream"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url)
        await ws.send_str(CONNECTED)
        await ws.close()
    await asyncio.sleep(0.5)  # the route sees the disconnect at once; it leaves no other trace
    assert _lines(logs, "bot.media_stream") == []
    assert _trouble(logs) == []
    await _healthy(launcher)


async def test_a_database_down_at_the_stream_claim_hands_the_call_to_the_desk(
        launcher: Launcher, logs: pytest.LogCaptureFixture, database_url: str, server_url: str) -> None:
    caller = await launcher.ring("+16465550160")
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
        # The database goes away between the webhook and the stream: no new connections,
        # existing ones cut.
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        try:
            async with caller:
                await caller.wait_closed(timeout=15)
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    # Not a silent refusal: Twilio was told to apologise and dial the desk, then the stream closed.
    assert caller.closed_by_server and caller.close_code == TRY_AGAIN_LATER
    (update,) = [u for u in launcher.twilio.updates if u.call_sid == caller.call_sid]
    assert f"<Dial>{DESK_NUMBER}</Dial>" in (update.get("Twiml") or "")
    assert [line.split(" (")[0] for line in _lines(logs, "bot.media_stream")] == [
        f"call {caller.call_sid}: database unavailable to claim the stream"]
    assert _trouble(logs) == []
    await _healthy(launcher)


# -- bad messages during calls ---------------------------------------------------------------


HOSTILE: dict[str, list[str | bytes]] = {
    "text that is not JSON": ["not json", "{"],
    "binary frames": [b"\x00\xff\x10 binary", _media(_audio(160)).encode()],
    "JSON that is not an object": [json.dumps([1, 2]), json.dumps("media"), "null", "5"],
    "JSON nested too deep": [DEEP],
    "media without a payload": [json.dumps({"event": "media"}), _media(None),
                                json.dumps({"event": "media", "media": "x"})],
    "media with a payload that is not a string": [_media(5), _media(["AAAA"]), _media({"a": 1})],
    "media with a payload that is not base64": [_media("%%%"), _media("abc"), _media("é")],
    "media far larger than one frame": [_media(_audio(6000))] * 3,
    "unknown events": [json.dumps({"event": "hello"}), json.dumps({"event": ["media"]}), "{}"],
    "dtmf without a valid digit": [json.dumps({"event": "dtmf"}), json.dumps({"event": "dtmf", "dtmf": "5"}),
                                   json.dumps({"event": "dtmf", "dtmf": {}}),
                                   json.dumps({"event": "dtmf", "dtmf": {"digit": "12"}}),
                                   json.dumps({"event": "dtmf", "dtmf": {"digit": [1]}})],
    # Ignored, like every mark and start: Twilio's own events, with nothing for the pipeline.
    "marks with odd fields": [json.dumps({"event": "mark"}), json.dumps({"event": "mark", "mark": 5}),
                              json.dumps({"event": "mark", "mark": {"name": ["x"]}})],
    "a second start": [_start(customParameters={"customer": "+16465550199", "token": "1.x"})],
}
IGNORED = {"marks with odd fields", "a second start"}


async def _nothing() -> None:
    pass


async def _reply_seconds(caller: TwilioCaller, meanwhile: Callable[[], Awaitable[Any]]) -> float:
    """From the end of the caller's words to the agent's first audio in reply, with
    `meanwhile` done as the caller stops speaking."""
    await caller.wait_for_bot_silence(timeout=15)
    before = caller.position()
    await caller.say(load("yes_thats_right"))
    ended = time.monotonic()
    await meanwhile()
    return (await caller.wait_for_event("media", timeout=15, after=before)).at - ended


async def test_bad_messages_leave_their_call_up_and_other_calls_unhurried(
        launcher: Launcher, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_CALLS", "40")  # room for all of them at once
    get_settings.cache_clear()
    launcher.deepgram.add_script(*[TEXTS["yes_thats_right"]] * (4 + len(HOSTILE)))
    launcher.policy.add(*[Reply("All right.")] * (4 + len(HOSTILE)))

    normal = await launcher.ring("+16465550170")
    async with normal, contextlib.AsyncExitStack() as stack:
        await normal.wait_for_event("media", timeout=5)  # the greeting
        alone = [await _reply_seconds(normal, _nothing) for _ in range(2)]

        hostile = {name: await launcher.ring(f"+1646555{index:04d}") for index, name in enumerate(HOSTILE)}
        for caller in hostile.values():
            await stack.enter_async_context(caller)
        await asyncio.gather(*(caller.wait_for_event("media", timeout=15) for caller in hostile.values()))
        # Many greetings at once, on a machine the other test workers load too.
        await asyncio.gather(*(caller.wait_for_bot_silence(timeout=40) for caller in hostile.values()))

        async def attack() -> None:
            await asyncio.gather(*(caller.send_raw(frame) for name, caller in hostile.items()
                                   for frame in HOSTILE[name]))

        attacked = [await _reply_seconds(normal, attack) for _ in range(2)]
        assert max(attacked) < max(alone) + REPLY_MARGIN_SECONDS, (alone, attacked)

        # Each hostile call is still up, and its agent still hears and answers it.
        assert [name for name, caller in hostile.items() if caller.closed] == []
        answered = await asyncio.gather(*(_reply_seconds(caller, _nothing) for caller in hostile.values()))
        assert all(seconds < 15 for seconds in answered)
        for caller in (normal, *hostile.values()):
            await caller.hang_up()

    sent_seconds = sum(caller.media_sent for caller in (normal, *hostile.values())) * FRAME_SECONDS
    heard_seconds = sum(connection.audio_seconds for connection in launcher.deepgram.stt_connections)
    assert heard_seconds < sent_seconds + 1.0  # no oversized media reached speech-to-text
    for name, caller in hostile.items():  # counted per call, and logged once at its end
        async def reported(sid: str = caller.call_sid) -> bool:
            return bool(_lines(logs, "pipeline.lines", f"call {sid}: dropped"))
        if name in IGNORED:
            assert not await reported(), name
        else:
            await _eventually(reported)
            assert len(_lines(logs, "pipeline.lines", caller.call_sid)) == 1, name
        assert (await crm.get_call_log(caller.call_sid))["outcome"] != "error", name
    assert _trouble(logs) == []
    await _healthy(launcher)


# -- oversized media, with and without uvicorn's limit ------------------------------------


TWO_MIB_OF_MEDIA = _media(_audio(3 * 2**19))  # 2 MiB of base64: 3.3 minutes of audio


def _padded(size: int) -> str:
    """A message of exactly `size` bytes, of an event no Twilio stream sends."""
    message = json.dumps({"event": "padding", "padding": ""})
    return json.dumps({"event": "padding", "padding": "x" * (size - len(message))})


async def test_under_uvicorns_limit_a_message_over_it_closes_the_stream_with_1009(
        launcher: Launcher, logs: pytest.LogCaptureFixture) -> None:
    launcher.deepgram.add_script(TEXTS["yes_thats_right"])
    launcher.policy.add(Reply("All right."))
    caller = await launcher.ring("+16465550180")
    async with caller:
        await caller.wait_for_event("media", timeout=5)
        await caller.send_raw(_padded(MAX_MESSAGE_BYTES))
        # An answer to what the caller says next shows the server has read past that message:
        # uvicorn drops the messages it has not handed on yet when it closes with 1009.
        await _reply_seconds(caller, _nothing)
        await caller.send_raw(_padded(MAX_MESSAGE_BYTES + 1))
        assert await caller.wait_closed(timeout=10) == MESSAGE_TOO_BIG
    # The message at the limit was let in, to be dropped by the serializer.
    async def reported() -> bool:
        return bool(_lines(logs, "pipeline.lines", caller.call_sid))
    await _eventually(reported)
    assert _lines(logs, "pipeline.lines") == [
        f"call {caller.call_sid}: dropped 1 stream messages (1 x unknown event)"]

    caller = await launcher.ring("+16465550181")
    async with caller:
        await caller.wait_for_event("media", timeout=5)
        await caller.send_raw(TWO_MIB_OF_MEDIA)
        await caller.wait_closed(timeout=10)
    # uvicorn closes with 1009 at the message's header and leaves the rest of it unread; the
    # TCP reset that closing such a socket sends often destroys the close frame (1006).
    assert caller.closed_by_server and caller.close_code in (MESSAGE_TOO_BIG, 1006)
    assert len(TWO_MIB_OF_MEDIA) > 2 * 2**20
    stt = launcher.deepgram.stt_connections[-1]
    assert stt.audio_seconds < caller.media_sent * FRAME_SECONDS + 1.0  # it never reached it
    assert _trouble(logs) == []
    await _healthy(launcher)


async def test_without_uvicorns_limit_a_2_mib_media_message_is_dropped_and_counted(
        launcher: Launcher, logs: pytest.LogCaptureFixture) -> None:
    launcher.deepgram.add_script(TEXTS["yes_thats_right"])
    launcher.policy.add(Reply("All right."))
    caller = await launcher.ring("+16465550182")  # answered by the first instance
    async with _instance_without_size_limit() as unlimited:
        caller.url = unlimited  # streamed to the second, as Twilio may reach any instance
        async with caller:
            await caller.wait_for_event("media", timeout=5)
            await caller.send_raw(TWO_MIB_OF_MEDIA)
            await caller.send_raw(_media(_audio(MAX_MEDIA_BYTES + 1)))
            assert await _reply_seconds(caller, _nothing) < 15  # the call goes on
            assert _lines(logs, "pipeline.lines") == []  # reported at the end, not before
            await caller.hang_up()

        async def reported() -> bool:
            return bool(_lines(logs, "pipeline.lines"))
        await _eventually(reported)
    assert _lines(logs, "pipeline.lines") == [
        f"call {caller.call_sid}: dropped 2 stream messages (1 x oversized message, 1 x oversized media)"]
    (stt,) = launcher.deepgram.stt_connections
    assert stt.audio_seconds < caller.media_sent * FRAME_SECONDS + 1.0  # neither reached speech-to-text
    assert _trouble(logs) == []
    await _healthy(launcher)
