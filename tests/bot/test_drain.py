"""Never dead air, nothing lost: a launcher told to stop (a real signal to a real process) lets
its calls finish or wraps them up, and a caller hanging up mid-booking keeps the booking's
outcome in the call log."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

import crm
from config import lines
from crm import locks
from tests.audio import TEXTS, load
from tests.bot.conftest import DESK_NUMBER, Launcher
from tests.bot.processes import COMMANDS, Running, launcher_process
from tests.bot.test_calls import MARIA, _maria_with_civic, _next_open_day, closed_log
from tests.fakes.openai import Call, ToolCalls
from tests.fakes.twilio_caller import inbound_call_params, new_sid


async def _draining(running: Running) -> dict[str, Any]:
    """/health once it says the launcher drains (it must, at once)."""
    async with asyncio.timeout(5):
        while (response := await running.health()).json()["status"] != "draining":  # noqa: ASYNC110 - over HTTP
            await asyncio.sleep(0.05)
    assert response.status_code == 503
    return response.json()


@pytest.mark.parametrize(("command", "sig"), [
    pytest.param("python -m bot", signal.SIGTERM, id="python -m bot, SIGTERM"),
    pytest.param("python -m bot", signal.SIGINT, id="python -m bot, SIGINT (a terminal's Ctrl+C)"),
    pytest.param("uvicorn --factory", signal.SIGTERM, id="uvicorn --factory, SIGTERM"),
])
async def test_a_signal_turns_new_callers_away_and_lets_live_calls_finish(
        launcher: Launcher, tmp_path: Path, command: str, sig: signal.Signals) -> None:
    launcher.deepgram.add_script(TEXTS["thanks_goodbye"])
    launcher.policy.add(ToolCalls([Call("end_call", {"reason": "caller is done"})], text="You're welcome."))
    async with launcher_process(launcher, tmp_path, COMMANDS[command], drain_seconds=60) as running:
        bot = running.launcher
        live = await bot.ring("+16465550191")
        answered = await bot.ring("+16465550192")  # its stream is still on its way at the signal
        async with live:
            await live.wait_for_event("media", timeout=10)
            await live.wait_for_bot_silence(timeout=15)  # the greeting has played
            running.process.send_signal(sig)
            signalled = time.monotonic()
            health = await _draining(running)
            assert health["active_calls"] == 1

            turned_away = inbound_call_params(new_sid("CA"), "+16465550193", "+13125550100",
                                              bot.twilio.account_sid)
            busy = await bot.post("/twilio/voice", turned_away)
            assert busy.status_code == 200 and "<Stream" not in busy.text
            assert "lines are busy" in busy.text and f"<Dial>{DESK_NUMBER}</Dial>" in busy.text

            async with answered:  # answered before the signal: the caller still gets the agent
                await answered.wait_for_event("media", timeout=10)

            await live.say(load("thanks_goodbye"))
            await live.wait_closed(timeout=30)  # the agent answered, said goodbye and hung up
        assert await running.stopped() == (-signal.SIGTERM if sig == signal.SIGTERM else 0)
        output = running.output.read_text()

    assert any(event.at > signalled for event in live.media_events)  # the call kept its audio
    assert launcher.deepgram.spoken[-2:] == [
        "You're welcome.", lines.GOODBYE.format(shop="Lakeside Motors Service")]
    await launcher.twilio.wait_for_hangup(live.call_sid, timeout=5)
    assert (await closed_log(live.call_sid))["outcome"] == "completed"
    assert (await closed_log(answered.call_sid))["outcome"] == "caller_hung_up"
    log = await crm.get_call_log(turned_away["CallSid"])
    assert log["outcome"] == "transferred"
    assert [t["role"] for t in log["transcript"]] == ["agent"]  # what the caller heard is on record
    assert f"{sig.name}: draining with 1 call(s) up" in output
    assert "drained: no calls left" in output


@pytest.mark.parametrize("desk", [True, False], ids=["to the desk", "without a desk"])
async def test_a_call_outliving_the_drain_hears_why_and_is_handed_on(
        launcher: Launcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, desk: bool) -> None:
    if not desk:
        monkeypatch.delenv("SERVICE_DESK_NUMBER")
    launcher.deepgram.add_script()
    async with launcher_process(launcher, tmp_path, COMMANDS["python -m bot"], drain_seconds=1) as running:
        caller = await running.launcher.ring("+16465550194")
        async with caller:
            await caller.wait_for_event("media", timeout=10)
            await caller.wait_for_bot_silence(timeout=15)  # the greeting has played
            running.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await _draining(running)
            await caller.wait_closed(timeout=30)  # the caller stays on, silent, past the drain
        assert await running.stopped() == -signal.SIGTERM

    words = lines.WRAPPING_UP + (lines.TO_THE_DESK if desk else lines.CALL_BACK_LATER)
    assert launcher.deepgram.spoken[-1] == words
    # All of it reached the caller before the call was handed on (the fake voice: 60 ms a character).
    heard = sum(len(event.payload) for event in caller.media_events if event.at > signalled)
    assert heard >= len(words) * launcher.deepgram.tts_ms_per_char / 1000 * 8000
    log = await closed_log(caller.call_sid)
    assert log["transcript"][-1]["text"] == words
    update = next(u for u in launcher.twilio.updates if u.call_sid == caller.call_sid)
    if desk:
        assert f"<Dial>{DESK_NUMBER}</Dial>" in (update.get("Twiml") or "")
        assert launcher.twilio.hangups == []  # a hang-up would cut the transfer off
        assert log["outcome"] == "transferred"
    else:
        assert launcher.twilio.hangups == [caller.call_sid]
        assert log["outcome"] == "completed"


class DayLock:
    """Another booking's hold on a shop day's lock (crm/locks.py BOOKING_DAY, taken by every
    booking of the day, calendar_adapter/store.py): a booking of that day commits only once it
    is let go."""

    def __init__(self, conn: psycopg.AsyncConnection, day: date) -> None:
        self._conn, self._key = conn, (locks.BOOKING_DAY, day.toordinal())

    async def waited_for(self) -> None:
        """Until a booking waits for the lock."""
        async with asyncio.timeout(20):
            while not await (await self._conn.execute(  # noqa: ASYNC110 - only PostgreSQL knows
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid::bigint = %s AND objid::bigint = %s", self._key)).fetchone():
                await asyncio.sleep(0.05)

    async def take(self) -> None:
        await self._conn.execute("SELECT pg_advisory_lock(%s, %s)", self._key)

    async def release(self) -> None:
        await self._conn.execute("SELECT pg_advisory_unlock(%s, %s)", self._key)


@asynccontextmanager
async def _day_locked(database_url: str, day: date) -> AsyncIterator[DayLock]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        lock = DayLock(conn, day)
        await lock.take()
        yield lock


async def _booking_call(launcher: Launcher, database_url: str) -> tuple[date, str, int]:
    """Maria's call that books an oil change on the next open day: that day, slot and car."""
    _, vehicle_id = await _maria_with_civic(database_url)
    day, slot = await _next_open_day()
    launcher.deepgram.add_script(TEXTS["book_oil_change"])
    launcher.policy.add(ToolCalls([Call("book_appointment", {"start_time": slot, "service_type": "oil change",
                                                             "vehicle_id": vehicle_id})]))
    return day, slot, vehicle_id


async def _hangs_up_while_booking(launcher: Launcher, lock: DayLock) -> str:
    """The caller asks for the booking, and hangs up while it waits to commit; the call's SID."""
    caller = await launcher.ring(MARIA)
    async with caller:
        await caller.wait_for_event("media", timeout=10)
        await caller.wait_for_bot_silence(timeout=15)
        await caller.say(load("book_oil_change"))
        await lock.waited_for()
        await caller.hang_up()
    return caller.call_sid


async def _booked(call_sid: str, slot: str, vehicle_id: int) -> None:
    log = await closed_log(call_sid)
    assert log["outcome"] == "booked"
    booked = (await crm.lookup_customer(MARIA))["upcoming_appointments"]
    assert [(a["start_time"], a["vehicle_id"]) for a in booked] == [(slot, vehicle_id)]


async def test_a_caller_hanging_up_while_the_booking_commits_keeps_it_in_the_call_log(
        launcher: Launcher, database_url: str) -> None:
    day, slot, vehicle_id = await _booking_call(launcher, database_url)
    async with _day_locked(database_url, day) as lock:
        call_sid = await _hangs_up_while_booking(launcher, lock)
        # The call is over; were its log closed now, the booking's outcome would come too late.
        with pytest.raises(TimeoutError):
            await closed_log(call_sid, within=2)
        await lock.release()
    await _booked(call_sid, slot, vehicle_id)


async def _logged(running: Running, text: str) -> None:
    async with asyncio.timeout(30):
        while text not in running.output.read_text():  # noqa: ASYNC110 - another process's output
            await asyncio.sleep(0.05)


async def test_the_launcher_closes_the_database_only_after_its_call_logs(
        launcher: Launcher, database_url: str, tmp_path: Path) -> None:
    day, slot, vehicle_id = await _booking_call(launcher, database_url)

    def impatient(port: int) -> list[str]:  # uvicorn cancels what is left a second after the drain
        return [*COMMANDS["uvicorn --factory"](port), "--timeout-graceful-shutdown", "1"]

    async with (launcher_process(launcher, tmp_path, impatient, drain_seconds=0) as running,
                _day_locked(database_url, day) as lock):
        call_sid = await _hangs_up_while_booking(running.launcher, lock)
        running.process.send_signal(signal.SIGTERM)
        await _logged(running, "asking 1 call(s) to wrap up")  # the call's log is not closed yet
        running.process.send_signal(signal.SIGTERM)  # don't wait for it: shut down now
        await _logged(running, "timeout graceful shutdown exceeded")  # uvicorn cancelled the call
        await lock.release()
        assert await running.stopped() == -signal.SIGTERM
    await _booked(call_sid, slot, vehicle_id)
