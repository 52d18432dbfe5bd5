"""Issue 7, tracing, over the real processes: one trace runs from an admin's
``POST /v1/sessions/{id}/days`` in catalog, through the outbox and the broker, into the bridge's
consumer and its Zoom call, and back through ``MeetingCreated`` into catalog's consumer.

The services export with their production exporter (OTLP over HTTP, turned on by
``OTEL_EXPORTER_OTLP_ENDPOINT``) to a collector this test runs, and the test reads the spans
back from it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from te_shared import contracts as c
from te_testing.api import ok
from te_testing.clock import iso
from te_testing.infra import DatabaseFactory, TokenFactory, namespace
from te_testing.polling import eventually
from te_testing.processes import free_port
from te_testing.servers import InProcessServer
from te_testing.system import System, create_event, start_system, zoom_company, zoom_day

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Collector:
    """A minimal OTLP/HTTP traces receiver (``POST /v1/traces``, protobuf)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        app = Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])])
        self.server = InProcessServer(app, free_port(), lifespan="off")

    @property
    def endpoint(self) -> str:
        return self.server.url

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            service=resource.get("service.name", ""),
                            name=span.name,
                            kind=SpanProto.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={
                                a.key: a.value.string_value or a.value.int_value
                                for a in span.attributes
                            },
                        )
                    )
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )

    async def __aenter__(self) -> Collector:
        await self.server.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.server.stop()


@pytest.fixture
async def traced(
    databases: DatabaseFactory,
    amqp_url: str,
    token: TokenFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[System, Collector]]:
    async with Collector() as collector, namespace(amqp_url) as ns:
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export every 100 ms, not every 5 s
        }
        async with start_system(databases, ns, token, tmp_path_factory, extra_env=otel) as system:
            yield system, collector


async def test_one_trace_from_the_admin_request_through_the_zoom_call_back_to_catalog(
    traced: tuple[System, Collector],
) -> None:
    system, collector = traced
    company = "traced-co"
    admin = system.admin(company)
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).replace(microsecond=0)
    async with system.client(system.catalog, admin) as cat:
        account_id = await zoom_company(system, company, timezone="UTC", locales=["en"])
        event = await create_event(
            system,
            company,
            title="Traced",
            dated=True,
            sessions=[
                {
                    "name": "Traced run",
                    "registration_end": iso(start - dt.timedelta(days=2)),
                    "days": [
                        zoom_day(
                            start, start + dt.timedelta(hours=1), account_id, auto_recording=False
                        )
                    ],
                }
            ],
        )
        [day] = event.days["Traced run"]

        async def meeting_status() -> str | None:
            full = await ok(await cat.get(f"/v1/events/{event.id}"))
            [found] = [d for s in full["sessions"] for d in s["days"] if d["id"] == day["id"]]
            return ((found.get("zoom") or {}).get("meeting") or {}).get("status")

        await eventually(meeting_status, lambda s: s == "created", what="MeetingCreated in catalog")

    def status_of(span: Span) -> int | None:
        code = span.attributes.get(
            "http.response.status_code", span.attributes.get("http.status_code")
        )
        return int(code) if code is not None else None

    def request_span() -> Span | None:
        for span in collector.spans:
            if (
                span.service == "catalog"
                and span.kind == "SERVER"
                and span.attributes.get("http.route") == "/v1/sessions/{session_id}/days"
                and status_of(span) == 201  # not a retried 422 (the account was not known yet)
            ):
                return span
        return None

    async def root() -> Span | None:
        return request_span()

    server = await eventually(root, lambda s: s is not None, what="catalog's HTTP span")
    assert server is not None
    assert server.name.startswith("POST")

    def in_trace() -> list[Span]:
        return [s for s in collector.spans if s.trace_id == server.trace_id]

    def consumed(service: str, routing_key: str) -> bool:
        return any(
            s.service == service
            and s.kind == "CONSUMER"
            and routing_key in json.dumps([s.name, s.attributes])
            for s in in_trace()
        )

    def complete(spans: list[Span]) -> bool:
        return (
            consumed("zoom-bridge", c.DayScheduled.routing_key)
            and any(s.service == "zoom-bridge" and s.kind == "CLIENT" for s in spans)
            and consumed("catalog", c.MeetingCreated.routing_key)
        )

    async def spans() -> list[Span]:
        return in_trace()

    chain = await eventually(spans, complete, what="the whole chain in one trace")
    names = sorted((s.service, s.kind, s.name) for s in chain)
    assert any(s.service == "catalog" and s.kind == "PRODUCER" for s in chain), names  # relay
    zoom_call = [s for s in chain if s.service == "zoom-bridge" and s.kind == "CLIENT"]
    # the day's sync (the meeting's create) is the one Zoom call the change armed; the sync
    # arms a registrants pass for an administrator-role meeting, which joins the trace too
    assert [s.name for s in zoom_call if s.name != "zoom registrants"] == ["zoom sync"], names
    # each hop's consumer continues a span of the service that published: the context crossed
    # the broker (twice) and the bridge's durable Zoom job, it was not merely shared
    by_id = {s.span_id: s for s in chain}

    def consumer_of(service: str, routing_key: str) -> Span:
        [span] = [
            s
            for s in chain
            if s.service == service and s.kind == "CONSUMER" and routing_key in s.name
        ]
        return span

    assert by_id[consumer_of("zoom-bridge", c.DayScheduled.routing_key).parent_id].service == (
        "catalog"
    ), names
    assert by_id[consumer_of("catalog", c.MeetingCreated.routing_key).parent_id].service == (
        "zoom-bridge"
    ), names
    assert by_id[zoom_call[0].parent_id].service == "zoom-bridge", names

    # the logs of the same run (issue 7, logs): JSON lines naming the service, the bridge's
    # Zoom work carrying the trace id, and never the admin's token
    traced_lines = []
    for proc, name in (
        (system.catalog, "catalog"),
        (system.registration, "registration"),
        (system.bridge, "zoom-bridge"),
    ):
        text = proc.log_path.read_text()
        assert admin not in text, f"{name} logged the bearer token"
        assert admin.split(".")[1] not in text, f"{name} logged the token's claims"
        for line in text.splitlines():
            entry = json.loads(line)  # every line is one JSON object
            assert entry["service"] == name, line
            if entry.get("trace_id") == server.trace_id:
                traced_lines.append((name, entry["event"]))
    assert ("zoom-bridge", "zoom_meeting_synced") in traced_lines, traced_lines
