"""A real headless Chromium whose microphone plays a WAV file, driven over the DevTools protocol."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """`async with Chromium(wav) as page:` a page whose `getUserMedia` hears `wav` (looped)."""

    def __init__(self, microphone: Path) -> None:
        self._microphone = microphone
        # Chromium's helper processes can still be writing the profile as the browser exits.
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)
        self._process: asyncio.subprocess.Process | None = None
        self._socket: Any = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Chromium:
        assert CHROMIUM, "chromium is not installed (.ci/run installs it)"
        self._process = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={self._microphone}",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and len(port_file.read_text().splitlines()) == 2:
                break
            await asyncio.sleep(0.05)
        port = port_file.read_text().splitlines()[0]
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        self._socket = await websockets.connect(page["webSocketDebuggerUrl"], max_size=None)
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._process is not None:
            self._process.terminate()
            await asyncio.wait_for(self._process.wait(), 10)
        self._profile.cleanup()

    async def _send(self, method: str, **params: Any) -> dict[str, Any]:
        sent = next(self._ids)
        await self._socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(await self._socket.recv())
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def open(self, url: str) -> None:
        await self._send("Page.navigate", url=url)
        await self.until("document.readyState === 'complete'")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = await self._send("Runtime.evaluate", expression=expression, awaitPromise=True,
                                  returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str, within: float = 10) -> Any:
        """Poll `expression` until it is truthy, for at most `within` seconds; its value."""
        async with asyncio.timeout(within):
            while not (value := await self.evaluate(expression)):  # noqa: ASYNC110 - a page to poll
                await asyncio.sleep(0.1)
        return value
