"""`GET /health`: can this launcher take calls right now?"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import crm
from bot.calls import ActiveCalls
from config.settings import get_settings
from crm import db
from crm.cache import cache


async def _database_ok() -> bool:
    try:
        async with db.connection() as conn:
            await asyncio.wait_for(conn.execute("SELECT 1"), 2)
        return True
    except (crm.DatabaseUnavailable, TimeoutError):
        return False


def router(calls: ActiveCalls) -> APIRouter:
    routes = APIRouter()

    @routes.get("/health")
    async def health() -> JSONResponse:
        database, cache_ok = await asyncio.gather(_database_ok(), (await cache()).ping())
        status = "draining" if calls.draining else "ok" if database and cache_ok else "degraded"
        body = {"status": status, "database": "ok" if database else "down",
                "cache": "ok" if cache_ok else "down", "active_calls": len(calls),
                "max_concurrent_calls": get_settings().max_concurrent_calls}
        return JSONResponse(body, status_code=503 if calls.draining or not database else 200)

    return routes
