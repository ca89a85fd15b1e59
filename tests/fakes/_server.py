"""Shared lifecycle for the loopback fakes: an aiohttp app on 127.0.0.1:<free port>.

Why: every fake must run inside the test's own event loop, on a real socket,
and shut down cleanly (closing websockets it still holds) when the test ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self

from aiohttp import WSCloseCode, web

log = logging.getLogger(__name__)


class LoopbackServer(ABC):
    """Base class: subclasses add routes in :meth:`_setup_routes`."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self._host = host
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._websockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------

    @abstractmethod
    def _setup_routes(self, app: web.Application) -> None: ...

    async def start(self) -> None:
        """Bind to a free port and start serving."""
        app = web.Application()
        self._setup_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Close open websockets (code 1001), cancel background tasks, stop serving."""
        for ws in list(self._websockets):
            if not ws.closed:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake shutting down")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- addresses -------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started: use `async with`")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``"""
        return f"http://{self._host}:{self.port}"

    @property
    def ws_base_url(self) -> str:
        """``ws://127.0.0.1:<port>``"""
        return f"ws://{self._host}:{self.port}"

    # -- helpers for subclasses and tests -------------------------------------

    def _track(self, ws: web.WebSocketResponse) -> None:
        self._websockets.add(ws)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        # A client that left while it was being sent to ends its session, as with the real
        # service; any other failure of a session task is a fault of the fake.
        if error is not None and not isinstance(error, ConnectionResetError):
            log.error("%s: session task failed", type(self).__name__, exc_info=error)

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> None:
        """Poll ``predicate`` every 10 ms; raise ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)
