"""What the calls of this process report to Prometheus: every metric is defined here, and fed
from where the figures already flow (the call, its session, its LatencyMeter, its pipeline's
errors). `GET /metrics` (bot/prometheus.py) serves them. With LAUNCHER_PROCESSES > 1 the
processes share PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode), and any one of
them serves the sums of all.

They hold counts and timings only, never a number, a name or a word said.
"""

from __future__ import annotations

import os
from typing import Any, Literal, get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from crm.call_logs import OUTCOMES

CONTENT_TYPE = CONTENT_TYPE_LATEST
ServiceKind = Literal["stt", "llm", "tts", "tool"]
SERVICE_KINDS: tuple[ServiceKind, ...] = get_args(ServiceKind)

# Summed over the processes still running ("livesum"): a stopped one holds no calls.
CALLS_ACTIVE = Gauge("service_desk_calls_active", "Calls the launcher is holding now (a pipeline running).",
                     multiprocess_mode="livesum")
CALLS = Counter("service_desk_calls", "Calls whose pipeline has ended, by the call log's outcome for them.",
                ["outcome"])
# Around the README's promise (audible within about 2 s whatever fails) and a good reply (< 1 s).
REPLY_LATENCY = Histogram(
    "service_desk_reply_latency_seconds",
    "From the end of the caller's speech to the agent's first audio, per answered turn.",
    buckets=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0))
BARGE_IN = Histogram(
    "service_desk_barge_in_seconds",
    "From the onset of the caller's speech over the agent to the agent's audio being cleared.",
    buckets=(0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0))
SERVICE_ERRORS = Counter("service_desk_service_errors",
                         "Errors the call pipelines reported, by what failed.", ["kind"])

# Every label known up front, so a rate over a counter that never moved yet reads 0, not nothing.
for _outcome in sorted(OUTCOMES):
    CALLS.labels(_outcome)
for _kind in SERVICE_KINDS:
    SERVICE_ERRORS.labels(_kind)


def turn(figures: dict[str, Any]) -> None:
    """One answered caller turn's figures, as processors/latency_meter.py emits them."""
    REPLY_LATENCY.observe(figures["latency_ms"] / 1000)
    if "barge_in_ms" in figures:
        BARGE_IN.observe(figures["barge_in_ms"] / 1000)


def call_ended(outcome: str) -> None:
    CALLS.labels(outcome).inc()


def service_error(kind: ServiceKind) -> None:
    SERVICE_ERRORS.labels(kind).inc()


def _shared() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


def exposition() -> bytes:
    """Every metric as text: this process's (with the client's own process and Python ones), or
    with several launcher processes, the sums over all of them."""
    if not _shared():
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def process_stopping() -> None:
    """With several processes: this one's calls-active figure leaves the sum."""
    if _shared():
        multiprocess.mark_process_dead(os.getpid())
