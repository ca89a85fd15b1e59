"""`python -m bot` as a newcomer runs it: embedded database and cache, no API keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from config.settings import Settings
from tests.fakes.twilio_caller import inbound_call_params, new_sid, twilio_signature
from tests.ports import free_port


def test_starts_on_embedded_defaults_without_keys(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PORT=str(port), TWILIO_AUTH_TOKEN="tok", SERVICE_DESK_NUMBER="+13125550111",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for key in ("OPENAI_API_KEY", "DEEPGRAM_API_KEY"):
        env.pop(key, None)
    # Its own process group, which Ctrl-C in a terminal signals as a whole (`make run` too).
    bot = subprocess.Popen([sys.executable, "-m", "bot"], cwd=tmp_path, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(base + "/health", timeout=1)
                break
            except httpx.TransportError:
                assert bot.poll() is None, bot.stdout.read() if bot.stdout else ""
                assert time.monotonic() < deadline, "the launcher did not come up in 60 s"
                time.sleep(0.2)
        assert health.status_code == 200
        limit = Settings.model_fields["max_concurrent_calls"].default
        assert health.json() == {"status": "ok", "database": "ok", "cache": "ok",
                                 "active_calls": 0, "max_concurrent_calls": limit}
        assert (tmp_path / ".data" / "postgres" / "PG_VERSION").exists()

        form = inbound_call_params(new_sid("CA"), "+16465550160", "+13125550100", new_sid("AC"))
        signature = twilio_signature("tok", base + "/twilio/voice", form)
        answer = httpx.post(base + "/twilio/voice", data=form,
                            headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 200
        assert "<Say>" in answer.text and "<Dial>+13125550111</Dial>" in answer.text
    finally:
        os.killpg(bot.pid, signal.SIGINT)
        output, _ = bot.communicate(timeout=60)
    assert f"Twilio voice webhook:  http://127.0.0.1:{port}/twilio/voice" in output
    # Speech is offline without a Deepgram key; only the model endpoint is missing, and said plainly.
    assert "Not ready: the conversation needs a model endpoint: set OPENAI_BASE_URL" in output
    assert "Speech is offline (Whisper tiny.en, Piper)" in output and "set DEEPGRAM_API_KEY" not in output
    assert "embedded PostgreSQL" in output
    # initdb and pg_ctl said their piece in the embedded servers' log, not here.
    assert "initdb" not in output and "pg_ctl" not in output
    assert "initdb" in (tmp_path / ".data" / "embedded.log").read_text()
    # No public address and a loopback host: a developer's machine, so the test page is on.
    assert f"Talk in a browser:     http://127.0.0.1:{port}/test?token=" in output
    assert bot.returncode == 0, output
    # Nothing it started outlives it: the embedded PostgreSQL and Redis stopped with it.
    left = subprocess.run(["pgrep", "-f", str(tmp_path / ".data")], capture_output=True, text=True)
    assert left.stdout == "", left.stdout


def test_incomplete_google_calendar_settings_stop_start_up(tmp_path: Path) -> None:
    env = {**os.environ, "CALENDAR_BACKEND": "google", "GOOGLE_CALENDAR_ID": "shop@example.com"}
    for key in ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_REFRESH_TOKEN"):
        env.pop(key, None)
    done = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "GOOGLE_REFRESH_TOKEN" in lines[0], done.stderr
