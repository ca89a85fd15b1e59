"""The launcher: FastAPI routes for Twilio, one call pipeline per media stream."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import calendar_adapter
import crm
from bot import browser_test, health, media_stream, reminder_webhooks, twilio_webhooks
from bot.banner import banner
from bot.calls import ActiveCalls
from config import log_privacy
from config.settings import get_settings
from crm.migrate import migrate
from pipeline import turns
from telephony.rest import NoTwilioAccount, TwilioRest

log = logging.getLogger(__name__)

DRAIN_SECONDS = 600  # a service call rarely runs longer


def create_app() -> FastAPI:
    log_privacy.install()  # here, so `uvicorn bot.app:create_app --factory` gets it too
    calls = ActiveCalls()
    try:
        telephony: TwilioRest | None = TwilioRest(get_settings())
    except NoTwilioAccount as exc:
        log.warning("no hang-up or transfer through Twilio's REST API: %s", exc)
        telephony = None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate()  # idempotent; a new install answers its first call with a schema
        await asyncio.to_thread(turns.load_models)  # before the first caller, not during
        # What is loaded by now (modules, models) lives as long as the process. Frozen, it is
        # no longer walked by every full garbage collection, which stops the event loop, and so
        # every call at once, each time one runs.
        gc.freeze()
        print("\n".join(banner(get_settings())), flush=True)
        yield
        if not await calls.drain(DRAIN_SECONDS):
            log.warning("shutting down with %d calls still up", len(calls))
        if telephony is not None:
            await telephony.close()
        await calendar_adapter.close()
        await crm.close()

    app = FastAPI(title="Service desk phone agent", lifespan=lifespan)
    app.include_router(health.router(calls))
    app.include_router(twilio_webhooks.router(calls))
    app.include_router(reminder_webhooks.router(calls))
    app.include_router(media_stream.router(calls, telephony))
    app.include_router(browser_test.router(calls))
    return app
