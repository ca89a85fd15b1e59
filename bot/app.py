"""The launcher: FastAPI routes for Twilio, one call pipeline per media stream."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI

import calendar_adapter
import crm
from bot import (
    browser_test,
    desk_webhooks,
    health,
    media_stream,
    prometheus,
    reminder_webhooks,
    summaries,
    text_webhooks,
    twilio_webhooks,
)
from bot.banner import banner
from bot.calls import ActiveCalls
from config import log_privacy
from config.settings import get_settings
from crm import journal
from crm.migrate import migrate
from pipeline import metrics, plugins, services, tracing, turns
from telephony.rest import NoTwilioAccount, TwilioRest
from telephony.texts import Texts
from telephony.warm_transfer import DeskLegs

log = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# For the last call-log writes of calls the server cut off itself (its graceful timeout).
CALL_LOG_SECONDS = 10


@contextmanager
def draining_on_signals(calls: ActiveCalls, seconds: float) -> Iterator[None]:
    """While the app runs, SIGTERM or SIGINT first drains the launcher, then shuts it down.

    uvicorn installs its own handlers before the lifespan starts (`Server.capture_signals`);
    on a signal its `handle_exit` sets `should_exit`, and `Server.shutdown` then closes every
    websocket at once (1012) and only afterwards runs the lifespan's shutdown: too late to
    let a call finish. So the app takes these signals while it runs. The first one drains
    (bot/calls.py); then uvicorn's handlers are put back and the signal is raised again, and
    uvicorn shuts down as it would have, with no call left to cut off (and, having seen the
    signal, re-raises it once done, so the exit status says what stopped the process). One
    more signal while draining cuts the current wait short.
    """
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread receives signals; a server run elsewhere handles its own ending.
        yield
        return
    loop = asyncio.get_running_loop()
    replaced = {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}
    drain: asyncio.Task[None] | None = None

    def give_back() -> None:
        for sig, handler in replaced.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)

    async def drain_then_shut_down(sig: signal.Signals) -> None:
        log.warning("%s: draining with %d call(s) up; they may go on for %g s (signal again to"
                    " wrap them up now)", sig.name, len(calls), seconds)
        try:
            drained = await calls.drain(seconds)
        except Exception:  # the signal is handed on whatever happens: a launcher must stop
            log.exception("draining failed")
            drained = False
        if drained:
            log.info("drained: no calls left")
        else:
            log.warning("shutting down with %d call(s) still up", len(calls))
        give_back()
        signal.raise_signal(sig)

    def received(sig: signal.Signals) -> None:
        nonlocal drain
        if drain is None:
            drain = loop.create_task(drain_then_shut_down(sig))
        else:
            calls.hurry()

    for sig in SHUTDOWN_SIGNALS:
        loop.add_signal_handler(sig, received, sig)
    try:
        yield
    finally:
        if drain is not None:
            drain.cancel()  # the server is shutting down anyway; nothing is left to drain for
        give_back()


def create_app() -> FastAPI:
    log_privacy.install()  # here, so `uvicorn bot.app:create_app --factory` gets it too
    plugins.check(get_settings())  # a plug-in that cannot be imported stops the start, not a call
    if get_settings().otel_tracing:
        tracing.install()  # before any call, whose worker then traces it
    calls = ActiveCalls(crm.streams_gone_elsewhere)
    browser = browser_test.BrowserCalls(calls)
    try:
        telephony: TwilioRest | None = TwilioRest(get_settings())
    except NoTwilioAccount as exc:
        log.warning("no hang-up or transfer through Twilio's REST API: %s", exc)
        telephony = None
    # Warm transfers ring the desk through the same account; without one a transfer is a <Dial>.
    desk = DeskLegs(telephony) if telephony is not None else None
    texts = Texts(telephony)  # to customers, after a booking, a move, a cancellation, a voicemail

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate()  # idempotent; a new install answers its first call with a schema
        # Before the first caller, not during.
        await asyncio.to_thread(turns.load_models)
        await asyncio.to_thread(services.load_models, get_settings())
        # What is loaded by now (modules, models) lives as long as the process. Frozen, it is
        # no longer walked by every full garbage collection, which stops the event loop, and so
        # every call at once, each time one runs.
        gc.freeze()
        print("\n".join(banner(get_settings())), flush=True)
        # Google Calendar events follow the bookings from here; on `local` it has nothing to do.
        calendar_sync = asyncio.create_task(calendar_adapter.run_sync_worker(), name="calendar-sync")
        # Call-log writes kept while the database was down are written once it answers again.
        journal_replay = asyncio.create_task(journal.run_replay_worker(), name="call-log-journal")
        # The advisor's summary of each call that ended, made after its log was closed.
        call_summaries = asyncio.create_task(summaries.run_summary_worker(), name="call-summaries")
        with draining_on_signals(calls, get_settings().drain_seconds):
            yield
        await browser.close()
        # The server has closed every connection; calls still closing their logs need the pool.
        if not await calls.until_idle(CALL_LOG_SECONDS, streams=False):
            log.warning("closing the database with %d call log(s) still being written", len(calls))
        # What it has not written yet stays queued for the next start or another launcher.
        calendar_sync.cancel()
        journal_replay.cancel()
        call_summaries.cancel()
        await asyncio.gather(calendar_sync, journal_replay, call_summaries, return_exceptions=True)
        await texts.close()  # the texts still on their way need the REST client
        if telephony is not None:
            await telephony.close()
        if desk is not None:
            await desk.close()
        await calendar_adapter.close()
        await crm.close()
        metrics.process_stopping()

    app = FastAPI(title="Service desk phone agent", lifespan=lifespan)
    app.include_router(health.router(calls))
    app.include_router(prometheus.router())
    app.include_router(twilio_webhooks.router(calls))
    app.include_router(reminder_webhooks.router(calls, texts))
    app.include_router(text_webhooks.router())
    app.include_router(media_stream.router(calls, telephony, desk, texts))
    if desk is not None:
        app.include_router(desk_webhooks.router(desk))
    app.include_router(browser.router())
    return app
