"""Operations: one trace crosses the broker; /metrics and /asyncapi.json describe the service."""

from __future__ import annotations

import re
import uuid

from faststream.rabbit import RabbitBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from catalog.app import create_app as create_catalog
from catalog.settings import CatalogSettings
from registration.app import create_app as create_registration
from registration.settings import RegistrationSettings
from te_shared import contracts as c
from te_testing.api import auth
from te_testing.infra import DatabaseFactory, RabbitNamespace, running_app, settings_for
from te_testing.polling import eventually


async def test_trace_context_crosses_the_broker_through_the_outbox(
    databases: DatabaseFactory, fresh_rabbit: RabbitNamespace, token: object
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    catalog = create_catalog(
        settings_for(CatalogSettings, await databases.create("trace_cat"), fresh_rabbit),
        tracer_provider=provider,
    )
    registration = create_registration(
        settings_for(RegistrationSettings, await databases.create("trace_reg"), fresh_rabbit),
        tracer_provider=provider,
    )
    admin = token(role="admin", company="traced")  # type: ignore[operator]
    async with running_app(registration) as reg_client, running_app(catalog) as client:
        response = await client.put(
            "/v1/company/settings", json={"timezone": "UTC"}, headers=auth(admin)
        )
        assert response.status_code == 200

        def consumer_spans() -> list[object]:
            return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]

        async def consumed() -> list[object]:
            return consumer_spans()

        await eventually(consumed, timeout=10, interval=0.1, what="a consumer span")
        metrics = (await reg_client.get("/metrics")).text

    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind is SpanKind.SERVER and "PUT" in s.name]
    producer = [s for s in spans if s.kind is SpanKind.PRODUCER]
    consumer = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert server, [s.name for s in spans]
    assert producer, [s.name for s in spans]
    assert consumer, [s.name for s in spans]
    trace_id = server[0].context.trace_id
    assert (
        producer[0].context.trace_id == trace_id
    )  # the relay published inside the request's trace
    assert consumer[0].context.trace_id == trace_id
    assert (
        'messages_consumed_total{outcome="processed",'
        'routing_key="catalog.company.settings_changed"} 1.0' in metrics
    )


async def test_metrics_endpoint_exposes_http_outbox_and_dead_letter_figures(
    databases: DatabaseFactory, fresh_rabbit: RabbitNamespace, token: object
) -> None:
    app = create_catalog(
        settings_for(CatalogSettings, await databases.create("metrics"), fresh_rabbit)
    )
    admin = token(role="admin", company="metrics-co")  # type: ignore[operator]
    async with running_app(app) as client:
        for _ in range(3):
            assert (
                await client.put("/v1/company/settings", json={}, headers=auth(admin))
            ).status_code == 200
        published = 'messages_published_total{routing_key="catalog.company.settings_changed"} 3.0'
        response = await eventually(  # the gauges are read before the counters: both settle
            lambda: client.get("/metrics"),
            lambda r: published in r.text and "outbox_backlog 0.0" in r.text,
            timeout=5,
            interval=0.1,
            what="the messages published and the backlog drained",
        )
        text = response.text
    assert published in text
    assert (
        'http_request_duration_seconds_count{method="PUT",route="/v1/company/settings",'
        'status="200"} 3.0' in text
    )
    assert "outbox_backlog 0.0" in text
    assert "outbox_oldest_unsent_age_seconds" in text
    assert "dead_lettered_messages 0.0" in text
    assert "zoom_api_calls_total" in text


async def test_asyncapi_document_lists_what_the_service_consumes_and_publishes(
    databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
) -> None:
    app = create_registration(
        settings_for(RegistrationSettings, await databases.create("asyncapi"), fresh_rabbit)
    )
    async with running_app(app) as client:
        document = (await client.get("/asyncapi.json")).json()
    assert document["asyncapi"].startswith("3.")
    text = str(document)
    assert "registration.enrollment.changed" in text  # published
    assert "catalog.company.settings_changed" in text  # consumed


def gauge(metrics: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    assert match, f"{name} is not exported"
    return float(match.group(1))


async def test_dead_lettered_gauge_follows_the_queue_between_scrapes(
    databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
) -> None:
    """The gauge reads the dead-letter queue's depth live at every scrape (it once kept the
    count of the first scrape): 0, then a poison message, then 1."""
    app = create_registration(
        settings_for(RegistrationSettings, await databases.create("dlq_gauge"), fresh_rabbit)
    )
    async with running_app(app) as client:
        assert gauge((await client.get("/metrics")).text, "dead_lettered_messages") == 0.0
        broker = RabbitBroker(fresh_rabbit.amqp_url)
        await broker.connect()
        try:  # a body that does not validate is rejected at once, so it is dead-lettered
            await broker.publish(
                {"company_id": "poisoned", "message_id": str(uuid.uuid4())},
                exchange=fresh_rabbit.topology.exchange,
                routing_key=c.CompanySettingsChanged.routing_key,
                persist=True,
            )
        finally:
            await broker.stop()

        async def scrape() -> float:
            return gauge((await client.get("/metrics")).text, "dead_lettered_messages")

        assert await eventually(scrape, lambda v: v == 1.0, what="one dead letter") == 1.0
        assert (await client.get("/health/ready")).status_code == 200  # consumers' channel intact
