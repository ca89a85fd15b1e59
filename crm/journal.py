"""The call-log journal: call-log writes the database could not take, kept in order until it can.

A write is data (`Entry`: an operation of `crm.call_logs` or `crm.callback_requests` and its
arguments), so it can wait: in Redis (one list, shared by the launchers on that Redis), or,
when Redis is down too, in a local append-only file (CALL_LOG_JOURNAL_PATH). `write` tries the
database first. Once one of a call's writes went to the journal, its later writes follow it
there until a replay has written them, so a call's log keeps its order; and once a call's
writes went to the file, they stay in the file.

A replay takes the Redis list, then the file, each oldest first: a call's entries are in that
order (it moves to the file, never back). With Redis unreachable, the file's entries are written
but those of calls whose earlier entries are in Redis, which wait for it.

Each entry is written in one transaction with its id in `call_log_journal_applied`, and only
then taken off the journal. An
entry whose id is there already was written before (a replay cut off between the two steps, or
another launcher replaying the same list at the same moment) and is only taken off: a replay
may stop anywhere and start again without doubling a turn. An entry the database refuses for
good (not an outage) is set aside (the Redis list's `:failed` twin, or the file's `.failed`
twin) with an error log, so it cannot hold up the others.

Entries hold transcripts: the file is private to the launcher's user (0600), and logs name a
call only by its SID.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from config.settings import get_settings
from crm import call_logs, callback_requests, db, embedded
from crm.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

REDIS_KEY = "call-log-journal"
FAILED_SUFFIX = ":failed"
# Markers outlive the entries they stand for by far more than any replay takes.
MARKER_DAYS = 1

OPERATIONS: dict[str, Callable[..., Awaitable[Any]]] = {
    "open_call_log": call_logs.open_call_log,
    "identify_caller": call_logs.identify_caller,
    "record_proof": call_logs.record_proof,
    "append_turn": call_logs.append_turn,
    "append_metrics": call_logs.append_metrics,
    "record_outcome": call_logs.record_outcome,
    "record_flag": call_logs.record_flag,
    "close_call_log": call_logs.close_call_log,
    "record_callback_request": callback_requests.record_callback_request,
}

# KEYS: the list; ARGV: the entry written. Takes it off only if it is still the oldest: another
# launcher replaying the same list may have taken it already.
_POP_IF_OLDEST = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
  redis.call('LPOP', KEYS[1])
  return 1
end
return 0
"""

# Errors that say "not now" rather than "never": the entry stays for the next replay.
_RETRY_LATER = (DatabaseUnavailable, psycopg.errors.TransactionRollback)


@dataclass(frozen=True)
class Entry:
    """One call-log write: `OPERATIONS[op](call_sid, **args)`; `args` are JSON values."""

    op: str
    call_sid: str
    args: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # A file entry of a call whose earlier entries wait in Redis: written only after those.
    behind_redis: bool = False

    def __post_init__(self) -> None:
        if self.op not in OPERATIONS:
            raise ValueError(f"not a call-log write: {self.op!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Entry:
        return cls(**json.loads(raw))


def entry(op: str, call_sid: str, **args: Any) -> Entry:
    return Entry(op, call_sid, args)


def now() -> str:
    """This moment, for an entry's time of a turn or a message (it may be written much later)."""
    return datetime.now().astimezone().isoformat()


@dataclass(frozen=True)
class Backlog:
    """What waits to be written, and where."""

    redis: int | None  # None: Redis cannot be asked
    file: int
    path: str

    @property
    def waiting(self) -> int:
        return (self.redis or 0) + self.file


class JournalFile:
    """JSON lines appended under an exclusive `flock`, so launchers sharing the file take turns.
    Rewriting replaces the file; a writer that opened the old one notices and opens it again."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, line: str) -> None:
        with self._locked() as file:
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self._locked() as file:
            return _lines(file)

    def set_aside(self, line: str) -> None:
        JournalFile(self.path.with_name(self.path.name + ".failed")).append(line)

    def replace_head(self, count: int, kept: list[str]) -> None:
        """Drop the first `count` lines (a replay's snapshot), keeping `kept` in their place and
        whatever was appended since."""
        with self._locked() as file:
            remaining = kept + _lines(file)[count:]
            if not remaining:
                file.truncate(0)
                return
            spare = self.path.with_name(self.path.name + ".new")
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as new:
                new.write("".join(line + "\n" for line in remaining))
                new.flush()
                os.fsync(new.fileno())
            os.replace(spare, self.path)

    @contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            os.fchmod(fd, 0o600)  # transcripts: the launcher's user only, whatever the umask made it
            file = os.fdopen(fd, "r+", encoding="utf-8")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            file.close()  # replaced while we waited for the lock: open the new one
        try:
            yield file
        finally:
            file.close()


def _lines(file: IO[str]) -> list[str]:
    file.seek(0)
    return [line for line in file.read().splitlines() if line.strip()]


Place = Literal["redis", "file", "file_behind_redis"]


class Journal:
    def __init__(self, redis_url: str, path: Path) -> None:
        self._redis = aioredis.Redis.from_url(
            redis_url, socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True)
        self._pop_if_oldest = self._redis.register_script(_POP_IF_OLDEST)
        self.file = JournalFile(path)
        # Calls of this process with entries in the journal, and where their next entry goes.
        self._held: dict[str, Place] = {}
        # Appends ever finished, and per held call the number of its latest: a replay releases
        # only calls whose entries were all in place before it began.
        self._appended = 0
        self._last_append: dict[str, int] = {}
        self._appending: Counter[str] = Counter()  # per call, appends under way
        self._replaying = asyncio.Lock()

    def holds(self, call_sid: str) -> bool:
        """Whether `call_sid` has writes waiting here (its next write must follow them)."""
        return call_sid in self._held

    async def write(self, item: Entry) -> None:
        """Write `item` to the database, or to the journal when the database is down (or the
        write lost a deadlock) or the call already has entries waiting. Other failures are
        logged, as a bug, and the write dropped."""
        if not self.holds(item.call_sid):
            try:
                await OPERATIONS[item.op](item.call_sid, **item.args)
                return
            except _RETRY_LATER as exc:
                log.warning("call %s: database unavailable (%s), keeping its call-log writes in the"
                            " journal", item.call_sid, exc)
            except Exception:
                log.exception("call %s: call-log write %s failed", item.call_sid, item.op)
                return
        await self.append(item)

    async def append(self, item: Entry) -> None:
        """Keep `item` for a replay: in Redis, or in the file when Redis is down."""
        self._appending[item.call_sid] += 1
        try:
            place = self._held.get(item.call_sid)
            if place in (None, "redis"):
                self._held[item.call_sid] = "redis"
                try:
                    await self._redis.rpush(REDIS_KEY, item.to_json())
                    return
                except (RedisError, OSError) as exc:
                    log.warning("call %s: Redis unavailable (%s), keeping its call-log writes in %s",
                                item.call_sid, exc, self.file.path)
                    # Even if this one never got there, earlier ones of the call may have.
                    place = "file_behind_redis" if place == "redis" else "file"
            self._held[item.call_sid] = place
            try:
                await asyncio.to_thread(self.file.append,
                                        replace(item, behind_redis=place == "file_behind_redis").to_json())
            except OSError as exc:
                log.error("call %s: call-log write %s lost: neither the database, Redis nor %s took"
                          " it (%s)", item.call_sid, item.op, self.file.path, exc)
        finally:
            self._appended += 1
            self._last_append[item.call_sid] = self._appended
            self._appending[item.call_sid] -= 1
            if not self._appending[item.call_sid]:
                del self._appending[item.call_sid]

    async def backlog(self) -> Backlog:
        try:
            in_redis: int | None = await self._redis.llen(REDIS_KEY)
        except (RedisError, OSError):
            in_redis = None
        in_file = len(await asyncio.to_thread(self.file.lines))
        return Backlog(in_redis, in_file, str(self.file.path))

    @property
    def idle(self) -> bool:
        """No call of this process has writes waiting (as far as it knows)."""
        return not self._held

    async def replay(self) -> int:
        """Write what the journal holds to the database, oldest first; how many entries were
        written. Raises `DatabaseUnavailable` when the database still cannot take them (what is
        left stays for the next replay)."""
        async with self._replaying:
            appended = self._appended
            written, redis_drained = await self._replay_redis()
            file_written, file_drained = await self._replay_file(redis_drained)
            written += file_written
            if written:
                await self._forget_old_markers()
            if redis_drained and file_drained:
                self._release(appended)
            return written

    def _release(self, appended: int) -> None:
        """The calls whose entries were all written (none added since the replay began): their
        next write may go straight to the database again."""
        for call_sid, last in list(self._last_append.items()):
            if last <= appended and call_sid not in self._appending:
                del self._last_append[call_sid]
                self._held.pop(call_sid, None)

    async def _replay_redis(self) -> tuple[int, bool]:
        """Entries written from the Redis list, and whether it was found empty at the end."""
        written = 0
        try:
            while (raw := await self._redis.lindex(REDIS_KEY, 0)) is not None:
                if await self._write_once(raw, self._set_aside_in_redis):
                    written += 1
                await self._pop_if_oldest(keys=[REDIS_KEY], args=[raw])
        except (RedisError, OSError) as exc:
            log.warning("call-log journal: Redis unavailable for the replay (%s)", exc)
            return written, False
        return written, True

    async def _replay_file(self, redis_drained: bool) -> tuple[int, bool]:
        """Entries written from the file, and whether it holds nothing more of the snapshot."""
        snapshot = await asyncio.to_thread(self.file.lines)
        if not snapshot:
            return 0, True
        written, kept = 0, []
        try:
            for index, raw in enumerate(snapshot):
                if not redis_drained and _behind_redis(raw):
                    kept.append(raw)  # its call's earlier writes are in Redis, still unreachable
                    continue
                try:
                    if await self._write_once(raw, self._set_aside_in_file):
                        written += 1
                except _RETRY_LATER:
                    kept.extend(snapshot[index:])
                    raise
        finally:
            await asyncio.to_thread(self.file.replace_head, len(snapshot), kept)
        return written, not kept

    async def _write_once(self, raw: str, set_aside: Callable[[str], Awaitable[None]]) -> bool:
        """Write one journal line unless it was written before; False when it was (or when it
        is set aside). `_RETRY_LATER` errors propagate."""
        try:
            item = Entry.from_json(raw)
            async with db.connection() as conn:
                marked = await conn.execute(
                    "INSERT INTO call_log_journal_applied (entry_id) VALUES (%s) ON CONFLICT DO NOTHING",
                    (item.id,))
                if marked.rowcount == 0:
                    return False
                await OPERATIONS[item.op](item.call_sid, **item.args, conn=conn)
            return True
        except _RETRY_LATER:
            raise
        except Exception as exc:
            # The error's text may quote the entry (a transcript): its type is enough to look.
            log.error("call-log journal: an entry the database refuses (%s) is set aside",
                      type(exc).__name__)
            await set_aside(raw)
            return False

    async def _set_aside_in_redis(self, raw: str) -> None:
        await self._redis.rpush(REDIS_KEY + FAILED_SUFFIX, raw)

    async def _set_aside_in_file(self, raw: str) -> None:
        await asyncio.to_thread(self.file.set_aside, raw)

    async def _forget_old_markers(self) -> None:
        async with db.connection() as conn:
            await conn.execute(
                "DELETE FROM call_log_journal_applied WHERE applied_at < now() - make_interval(days => %s)",
                (MARKER_DAYS,))

    async def close(self) -> None:
        await self._redis.aclose()


def _behind_redis(raw: str) -> bool:
    try:
        return bool(json.loads(raw).get("behind_redis"))
    except (ValueError, AttributeError):
        return False


_journal: Journal | None = None
_lock = asyncio.Lock()


async def journal() -> Journal:
    global _journal
    if _journal is None:
        async with _lock:
            if _journal is None:
                settings = get_settings()
                url = settings.redis_url or await asyncio.to_thread(embedded.redis_url)
                _journal = Journal(url, Path(settings.call_log_journal_path))
    return _journal


async def write(item: Entry) -> None:
    """`Journal.write` on the process's journal."""
    await (await journal()).write(item)


async def keep(*items: Entry) -> None:
    """Put `items` in the journal, in order, without trying the database (known to be down)."""
    kept = await journal()
    for item in items:
        await kept.append(item)


async def replay() -> int:
    """Write the journal's entries to the database now (on demand); how many were written."""
    return await (await journal()).replay()


async def run_replay_worker() -> None:
    """Replay the journal every CALL_LOG_JOURNAL_REPLAY_SECONDS while it holds anything, until
    cancelled (the launcher runs one)."""
    every = get_settings().call_log_journal_replay_seconds
    while True:
        try:
            current = await journal()
            if not current.idle or (await current.backlog()).waiting:
                written = await current.replay()
                if written:
                    log.warning("call-log journal: %d waiting write(s) stored in the database", written)
        except DatabaseUnavailable:
            pass  # still down: the entries wait for the next round
        except Exception:
            log.exception("call-log journal replay failed")
        await asyncio.sleep(every)


async def close() -> None:
    global _journal
    if _journal is not None:
        await _journal.close()
        _journal = None
