"""Pipecat's OpenTelemetry tracing, on with `OTEL_TRACING=on`: a span per call (`conversation`,
its `conversation.id` the call SID), one per turn inside it, and one per speech-to-text, model
and text-to-speech operation, exported over OTLP/HTTP to the standard `OTEL_EXPORTER_OTLP_*`
endpoint (default http://localhost:4318).

Pipecat puts the words into its spans (the transcript, the text spoken, the model's messages and
its instructions, which hold the customer's record). A trace collector is not where callers'
words belong, any more than a log: only the attributes named below leave the process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

SERVICE_NAME = "service-desk-agent"
# Timings, counts and which service or model did the work; nothing anyone said.
KEPT = frozenset({
    "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.operation.name", "gen_ai.output.type",
    "stream", "tool_count", "tools.count", "tool.calls_count", "function_calls.count", "is_final",
    "language", "vad_enabled", "voice_id", "service.operation", "tts.interrupted",
    "exception.type",
})
KEPT_PREFIXES = ("metrics.", "gen_ai.usage.", "turn.", "conversation.")


def _kept(attributes: object) -> dict[str, object]:
    return {key: value for key, value in dict(attributes or {}).items()
            if key in KEPT or key.startswith(KEPT_PREFIXES)}


class WordlessExporter(SpanExporter):
    """Hands spans on to `exporter` with only the attributes above (on the spans and their events)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([
            ReadableSpan(
                name=span.name, context=span.context, parent=span.parent, resource=span.resource,
                attributes=_kept(span.attributes),
                events=[Event(event.name, _kept(event.attributes), event.timestamp) for event in span.events],
                links=span.links, kind=span.kind, status=span.status, start_time=span.start_time,
                end_time=span.end_time, instrumentation_scope=span.instrumentation_scope)
            for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


@cache
def install() -> bool:
    """Send this process's call spans to the OTLP endpoint; once per process (the tracer
    provider is global). False when Pipecat could not set it up."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from pipecat.utils.tracing.setup import setup_tracing

    return setup_tracing(service_name=os.environ.get("OTEL_SERVICE_NAME", SERVICE_NAME),
                         exporter=WordlessExporter(OTLPSpanExporter()))
