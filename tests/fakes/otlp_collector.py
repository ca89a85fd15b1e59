"""Fake OpenTelemetry collector: OTLP/HTTP traces (`POST /v1/traces`, protobuf).

Why: with OTEL_TRACING on, the launcher's spans leave through the real OTLP/HTTP exporter to
OTEL_EXPORTER_OTLP_ENDPOINT (pipeline/tracing.py); tests point that at this server and read
what arrived, names and attributes decoded, as a collector would store them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.fakes._server import LoopbackServer


@dataclass
class Span:
    name: str
    trace_id: str
    attributes: dict[str, Any]  # values as OTLP's JSON mapping writes them ({"stringValue": ...})
    resource: dict[str, Any]

    def attribute(self, key: str) -> Any:
        value = self.attributes.get(key, {})
        return next(iter(value.values()), None)


class FakeCollector(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Span] = []

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self._traces)

    async def _traces(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-protobuf":
            return web.Response(status=415)
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = {a.key: MessageToDict(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans += [
                    Span(span.name, span.trace_id.hex(),
                         {a.key: MessageToDict(a.value) for a in span.attributes}, resource)
                    for span in scope.spans]
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    def named(self, name: str) -> list[Span]:
        return [span for span in self.spans if span.name == name]
