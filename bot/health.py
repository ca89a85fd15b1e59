"""`GET /health`: can this launcher take calls right now, and what is degraded?

503 while draining or when the database or the cache is down. While call-log writes wait to be
written to the database, `journal` says how many and where (`redis` is null when Redis cannot be
asked), and the status stays `degraded` until they are written; a healthy answer has no `journal`.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import crm
from bot.calls import ActiveCalls
from config.settings import get_settings
from crm import db, journal
from crm.cache import cache

DATABASE_CHECK_SECONDS = 1.0


async def _database_ok() -> bool:
    try:
        # Bounded as a whole: while the database is down the pool would wait its own 3 s.
        async with asyncio.timeout(DATABASE_CHECK_SECONDS):
            async with db.connection() as conn:
                await conn.execute("SELECT 1")
        return True
    except (crm.DatabaseUnavailable, TimeoutError):
        return False


def router(calls: ActiveCalls) -> APIRouter:
    routes = APIRouter()

    @routes.get("/health")
    async def health() -> JSONResponse:
        database, cache_ok, backlog = await asyncio.gather(
            _database_ok(), (await cache()).ping(), (await journal.journal()).backlog())
        up = database and cache_ok
        status = ("draining" if calls.draining
                  else "ok" if up and not backlog.waiting else "degraded")
        body: dict[str, object] = {
            "status": status, "database": "ok" if database else "down",
            "cache": "ok" if cache_ok else "down", "active_calls": len(calls),
            "max_concurrent_calls": get_settings().max_concurrent_calls}
        if backlog.waiting or backlog.redis is None:
            body["journal"] = {"waiting": backlog.waiting, "redis": backlog.redis,
                               "file": backlog.file, "path": backlog.path}
        return JSONResponse(body, status_code=503 if calls.draining or not up else 200)

    return routes
