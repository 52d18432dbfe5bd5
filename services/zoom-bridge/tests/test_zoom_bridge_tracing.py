"""Operations: the trace of the change that scheduled a day runs through the bridge's durable
Zoom job (the Zoom call) into the MeetingCreated it publishes back to catalog."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from te_shared import contracts as c
from te_testing.polling import eventually


async def test_trace_crosses_day_scheduled_zoom_call_and_meeting_created(env: Any) -> None:
    e = env  # the bridge and simulator harness of conftest.py
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    await e.stop_bridge()
    e.tracer_provider = provider
    await e.start_bridge()
    account = await e.connect("administrator", sim_user="traced@zoom.test")
    day = e.day(str(account))

    # publish as catalog's relay does: inside the admin's trace, through the telemetry middleware
    catalog = RabbitBroker(
        e.ns.amqp_url, middlewares=[RabbitTelemetryMiddleware(tracer_provider=provider)]
    )
    await catalog.connect()
    with provider.get_tracer("test").start_as_current_span("POST /v1/sessions/{id}/days") as root:
        await catalog.publish(
            day.model_dump(mode="json"),
            exchange=e.ns.topology.exchange,
            routing_key=day.routing_key,
            persist=True,
        )
    await catalog.stop()
    await e.created(day.day_id)
    trace_id = root.get_span_context().trace_id

    def spans_of_trace() -> list[Any]:
        return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]

    async def traced() -> list[Any]:
        return spans_of_trace()

    in_trace = await eventually(  # the relay publishes MeetingCreated shortly after the Zoom call
        traced,
        lambda spans: any(
            s.kind is SpanKind.PRODUCER and c.MeetingCreated.routing_key in s.name for s in spans
        ),
        timeout=10,
        interval=0.1,
        what="MeetingCreated published in the trace",
    )
    names = [(s.kind.name, s.name) for s in in_trace]
    assert any(s.kind is SpanKind.CONSUMER for s in in_trace), names  # DayScheduled consumed
    assert any(s.name == "zoom sync" and s.kind is SpanKind.CLIENT for s in in_trace), names
    assert any(
        s.kind is SpanKind.PRODUCER and c.MeetingCreated.routing_key in s.name for s in in_trace
    ), names
    await e.stop_bridge()
    e.tracer_provider = None
    await e.start_bridge()
