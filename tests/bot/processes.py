"""The launcher as a real process of its own (`python -m bot` or uvicorn), served by the fakes of
the `launcher` fixture and started from an empty folder."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import STDOUT

import httpx

from tests.bot.conftest import Launcher
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60  # start-up (migrations, models) on a loaded 2-core machine
EXIT_MARGIN = 20  # past the drain: the wrap-up, closing the logs, the server's own shutdown

Command = Callable[[int], list[str]]
COMMANDS: dict[str, Command] = {
    "python -m bot": lambda port: ["-m", "bot"],
    "uvicorn --factory": lambda port: ["-m", "uvicorn", "bot.app:create_app", "--factory",
                                       "--port", str(port), "--ws-max-size", "8192"],
}


@dataclasses.dataclass
class Running:
    """A launcher process, served by the fakes of the `launcher` fixture."""

    process: asyncio.subprocess.Process
    launcher: Launcher  # the same fakes, with the process's address
    output: Path
    drain_seconds: float

    async def health(self) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.launcher.base_url) as client:
            return await client.get("/health")

    async def stopped(self) -> int:
        """The exit code, once the process has drained and exited (a stall fails the test)."""
        return await asyncio.wait_for(self.process.wait(), self.drain_seconds + EXIT_MARGIN)


@asynccontextmanager
async def launcher_process(launcher: Launcher, tmp_path: Path, command: Command,
                   drain_seconds: float) -> AsyncIterator[Running]:
    """The launcher as its own process, pointed at the fixture's fakes by the settings the
    fixture put in the environment; started from an empty folder, so no `.env` applies."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PORT": str(port), "PUBLIC_BASE_URL": base_url,
           "DRAIN_SECONDS": str(drain_seconds), "PYTHONPATH": str(ROOT)}
    output = tmp_path / f"launcher-{port}.log"  # one each, when several run
    with output.open("w") as sink:
        process = await asyncio.create_subprocess_exec(sys.executable, *command(port), cwd=tmp_path,
                                                       env=env, stdout=sink, stderr=STDOUT)
    running = Running(process, dataclasses.replace(launcher, base_url=base_url), output, drain_seconds)
    try:
        async with asyncio.timeout(START_SECONDS):
            while True:
                try:
                    if (await running.health()).status_code == 200:
                        break
                except httpx.TransportError:
                    assert process.returncode is None, output.read_text()
                await asyncio.sleep(0.2)
        yield running
    finally:
        if process.returncode is None:  # the test failed before the process ended
            process.kill()
            await process.wait()
