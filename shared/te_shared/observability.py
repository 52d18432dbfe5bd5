"""Metrics (Prometheus) and tracing (OpenTelemetry) for a service.

Metrics live in a registry per app (so several apps can run in one test process) and are served at
``/metrics``. Tracing is off unless the standard ``OTEL_*`` variables ask for it
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
``OTEL_TRACES_EXPORTER=console``); the trace context is stored with each outbox row and carried in
the message headers, so one trace runs from an HTTP request through the broker to the consumers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServiceMetrics:
    """The metrics every service exposes; service code may add its own to ``registry``."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.messages_consumed = Counter(
            "messages_consumed_total",
            "Deliveries handled, by routing key and outcome "
            "(processed, duplicate, rejected, failed)",
            ["routing_key", "outcome"],
            registry=self.registry,
        )
        self.messages_published = Counter(
            "messages_published_total",
            "Outbox messages published with a broker confirm, by routing key",
            ["routing_key"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "outbox_backlog", "Outbox rows not yet published", registry=self.registry
        )
        self.outbox_oldest_age = Gauge(
            "outbox_oldest_unsent_age_seconds",
            "Age of the oldest unpublished outbox row",
            registry=self.registry,
        )
        self.dead_lettered = Gauge(
            "dead_lettered_messages",
            "Messages waiting in this service's dead-letter queue",
            registry=self.registry,
        )
        self.zoom_api_calls = Counter(
            "zoom_api_calls_total",
            "Calls to the Zoom API by operation and HTTP status",
            ["operation", "status"],
            registry=self.registry,
        )

    def observe_consumed(self, routing_key: str, outcome: str) -> None:
        self.messages_consumed.labels(routing_key, outcome).inc()

    def observe_published(self, routing_key: str) -> None:
        self.messages_published.labels(routing_key).inc()


class HttpMetricsMiddleware:
    """Times each request under its route template (``/v1/events/{event_id}``), not its path."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_duration.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )


#: The ``OTEL_*`` variables a service reads: (name, default, meaning). The first five are read
#: here; the rest by the OpenTelemetry SDK and its OTLP/HTTP exporter. Listed in the generated
#: configuration reference (``te_shared.docs``).
OTEL_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("OTEL_SDK_DISABLED", "false", "`true` turns tracing off whatever else is set."),
    (
        "OTEL_TRACES_EXPORTER",
        "",
        "`otlp` or `console` turns tracing on (console: spans printed to stdout); `none` off. "
        "Unset: on only when an OTLP endpoint is set.",
    ),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        "OTLP/HTTP collector base URL (e.g. `http://otel-collector:4318`); setting it turns "
        "tracing on. Spans go to `<endpoint>/v1/traces` (protobuf over HTTP only).",
    ),
    (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "",
        "Full OTLP/HTTP traces URL, instead of the base endpoint; setting it turns tracing on.",
    ),
    ("OTEL_SERVICE_NAME", "", "`service.name` of the spans (default: the service's name)."),
    (
        "OTEL_EXPORTER_OTLP_HEADERS",
        "",
        "Headers for the collector, `key=value,...` (e.g. an API key; read by the exporter).",
    ),
    (
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "10",
        "Seconds the exporter waits for the collector (read by the exporter).",
    ),
    (
        "OTEL_RESOURCE_ATTRIBUTES",
        "",
        "Extra resource attributes, `key=value,...` (e.g. `deployment.environment=prod`).",
    ),
    (
        "OTEL_TRACES_SAMPLER",
        "parentbased_always_on",
        "Sampler (read by the SDK), e.g. `parentbased_traceidratio` with "
        "`OTEL_TRACES_SAMPLER_ARG`.",
    ),
    ("OTEL_TRACES_SAMPLER_ARG", "", "The sampler's argument, e.g. `0.1` for 10% of traces."),
    (
        "OTEL_BSP_SCHEDULE_DELAY",
        "5000",
        "Milliseconds between span batch exports (read by the SDK's batch processor).",
    ),
)


def tracing_requested(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or env.get("OTEL_TRACES_EXPORTER", "").lower() in {"otlp", "console"}
    )


def tracer_provider_from_env(service: str) -> TracerProvider | None:
    """A tracer provider exporting as the ``OTEL_*`` variables say, or None when tracing is off."""
    if not tracing_requested():
        return None
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def inject_trace_context(headers: dict[str, Any]) -> None:
    """Store the current trace context (``traceparent``) in ``headers``, if a span is active."""
    propagate.inject(headers)


def attach_trace_context(headers: Mapping[str, Any]) -> object:
    """Make the context stored in ``headers`` current; pass the result to :func:`detach`."""
    carrier = {k: str(v) for k, v in headers.items()}
    return otel_context.attach(propagate.extract(carrier))


def detach(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")
