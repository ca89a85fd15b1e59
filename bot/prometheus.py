"""`GET /metrics`: this process's calls in Prometheus' text format (defined in pipeline/metrics.py).

It holds counts and timings, nothing about who called; like `/health`, scrape it from inside
your network and leave it out of what a public proxy passes on.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from pipeline import metrics


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/metrics")
    async def exposition() -> Response:
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return routes
