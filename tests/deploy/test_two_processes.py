"""Two `python -m bot` launchers on one database and one Redis, as behind a load balancer: a
call answered by one may stream to the other, and its one stream is still only one."""

from __future__ import annotations

from pathlib import Path

import crm
from tests.bot.conftest import Launcher
from tests.bot.processes import COMMANDS, launcher_process
from tests.fakes.twilio_caller import TwilioCaller

POLICY_VIOLATION = 1008


async def test_a_call_answered_by_one_process_streams_to_the_other_once(
        launcher: Launcher, tmp_path: Path) -> None:
    launcher.deepgram.add_script()
    command = COMMANDS["python -m bot"]
    async with (launcher_process(launcher, tmp_path, command, drain_seconds=1) as a,
                launcher_process(launcher, tmp_path, command, drain_seconds=1) as b):
        answered = await a.launcher.ring("+16465550181")
        a_stream, b_stream = (base.replace("http://", "ws://") + "/twilio/stream"
                              for base in (a.launcher.base_url, b.launcher.base_url))
        assert answered.url == a_stream  # A's TwiML names A's stream, with its token
        assert answered.custom_parameters["token"]
        on_b = TwilioCaller(b_stream, call_sid=answered.call_sid,
                            custom_parameters=answered.custom_parameters)
        replay_on_a = TwilioCaller(a_stream, call_sid=answered.call_sid,
                                   custom_parameters=answered.custom_parameters)
        async with on_b:
            await on_b.wait_for_event("media", timeout=15)
            await on_b.wait_for_bot_silence(timeout=15)  # B played the greeting
            log = await crm.get_call_log(answered.call_sid)
            assert log is not None and log["stream_claimed_at"] is not None
            async with replay_on_a:  # the same parameters again, on the process that minted them
                await replay_on_a.wait_closed(timeout=10)
            await on_b.hang_up()
    assert replay_on_a.closed_by_server and replay_on_a.close_code == POLICY_VIOLATION
    assert replay_on_a.media_events == []  # no pipeline ever spoke on A
    assert on_b.media_events and on_b.close_code != POLICY_VIOLATION
    assert launcher.deepgram.spoken  # the greeting went through the speech fake
