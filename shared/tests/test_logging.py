"""Logs (issue 7): JSON lines with service, correlation id, trace id and company id; no token,
secret or personal data beyond ids, whatever a log call or a library hands the logger."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.exceptions import RejectMessage
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from te_shared import contracts as c
from te_shared.auth import CurrentPrincipal, JWTConfig, make_token
from te_shared.errors import install_error_handlers
from te_shared.inbox import InboxRecordMixin, _make_consumer
from te_shared.logging import configure_logging, get_logger, scrub
from te_shared.middleware import CorrelationIdMiddleware

SECRET = "dev-secret"
JWT = make_token(secret=SECRET, company_id="acme", user_id="u1", role="user", email="u1@acme.io")
#: Values that must never appear in a log line.
CREDENTIALS = {
    "access": "ya29.access-VALUE-1",
    "refresh": "rt-REFRESH-VALUE-2",
    "client": "cs-CLIENT-SECRET-3",
    "password": "hunter2-PASSWORD-4",
    "webhook": "wh-WEBHOOK-SECRET-5",
    "amqp": "amqp-PASSWORD-6",
    "api_key": "ak-API-KEY-7",
}


@pytest.fixture
def lines() -> Iterator[Any]:
    """Logging configured as a service does (its stdout handler writing into a buffer here);
    call the fixture's value to read the lines back, each parsed as JSON."""
    configure_logging("svc-under-test", "INFO", json=True)
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield read
    logging.getLogger().handlers.clear()


def make_app(provider: TracerProvider) -> FastAPI:
    app = FastAPI()
    app.state.jwt_config = JWTConfig(secret=SECRET, audience="training-events")
    install_error_handlers(app)
    app.add_middleware(CorrelationIdMiddleware)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    log = get_logger("test.app")

    @app.get("/things")
    async def things(principal: CurrentPrincipal) -> dict[str, str]:
        log.info("listed_things", user_id=principal.user_id)
        return {"ok": "yes"}

    return app


async def test_a_request_log_line_carries_service_correlation_trace_and_company(
    lines: Any,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    transport = httpx.ASGITransport(app=make_app(provider))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(
            "/things",
            headers={"Authorization": f"Bearer {JWT}", "X-Correlation-ID": "cid-logs-1"},
        )
    assert response.status_code == 200
    [line] = [entry for entry in lines() if entry["event"] == "listed_things"]
    assert line["service"] == "svc-under-test"
    assert line["correlation_id"] == "cid-logs-1"
    assert line["company_id"] == "acme"
    assert line["user_id"] == "u1"
    assert line["level"] == "info"
    assert "timestamp" in line
    server = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server, "no server span"
    assert line["trace_id"] == format(server[0].context.trace_id, "032x")


def test_credentials_are_masked_by_key_and_scrubbed_from_values(lines: Any) -> None:
    log = get_logger("test.secrets")
    log.info(
        "zoom_tokens_refreshed",
        access_token=CREDENTIALS["access"],
        refresh_token=CREDENTIALS["refresh"],
        client_secret=CREDENTIALS["client"],
        Authorization=f"Bearer {JWT}",
        db_password=CREDENTIALS["password"],
        ZOOM_WEBHOOK_SECRET=CREDENTIALS["webhook"],
        headers={"x-api-key": CREDENTIALS["api_key"], "accept": "application/json"},
        detail=f"connecting to amqp://svc:{CREDENTIALS['amqp']}@rabbit:5672/ with {JWT}",
        url=f"https://zoom.us/oauth/token?refresh_token={CREDENTIALS['refresh']}&x=1",
        routing_key="catalog.day.scheduled",
        message_id="m-1",
    )
    # a library logging through the standard library goes through the same filter
    logging.getLogger("aio_pika.fake").warning(
        "Connection to amqp://svc:%s@rabbit:5672/ lost; Authorization: Bearer %s",
        CREDENTIALS["amqp"],
        JWT,
    )
    try:
        raise RuntimeError(f"cannot reach postgresql://app:{CREDENTIALS['password']}@db/app")
    except RuntimeError:
        log.exception("unexpected")
    entries = lines()
    text = json.dumps(entries)
    for name, value in CREDENTIALS.items():
        assert value not in text, f"{name} credential logged"
    assert JWT not in text
    assert JWT.split(".")[1] not in text  # not even the claims part
    [entry] = [e for e in entries if e["event"] == "zoom_tokens_refreshed"]
    for key in (
        "access_token",
        "refresh_token",
        "client_secret",
        "Authorization",
        "db_password",
        "ZOOM_WEBHOOK_SECRET",
    ):
        assert entry[key] == "***", key
    assert entry["headers"] == {"x-api-key": "***", "accept": "application/json"}
    assert entry["detail"] == "connecting to amqp://svc:***@rabbit:5672/ with ***"
    assert entry["url"] == "https://zoom.us/oauth/token?refresh_token=***&x=1"
    assert entry["routing_key"] == "catalog.day.scheduled"  # ids and keys stay readable
    assert entry["message_id"] == "m-1"
    [stdlib] = [e for e in entries if "Connection to" in e["event"]]
    assert "amqp://svc:***@rabbit" in stdlib["event"]
    [failure] = [e for e in entries if e["event"] == "unexpected"]
    assert "postgresql://app:***@db/app" in failure["exception"]


def test_scrub_leaves_ordinary_text_alone() -> None:
    text = "session 42 moved to 2026-05-01 by admin-1 (routing key catalog.day.rescheduled)"
    assert scrub(text) == text
    assert scrub("Basic dXNlcjpwYXNzd29yZA==") == "Basic ***"
    assert scrub("/v1/zoom/oauth/callback?code=SPLxq&state=s1") == (
        "/v1/zoom/oauth/callback?code=***&state=s1"
    )


class _Inbox(InboxRecordMixin):
    pass


async def test_an_invalid_message_is_logged_by_location_and_type_not_value(lines: Any) -> None:
    """A contract violation names where the body is wrong, never what it held (an email)."""
    body = {
        "message_id": str(uuid.uuid4()),
        "company_id": "acme",
        "occurred_at": "2026-01-01T00:00:00Z",
        "user_id": "u1",
        "email": "jane.doe@example.org",
        "version": "not-a-number-jane.doe@example.org",
    }
    consume = _make_consumer(
        c.EnrollmentChanged,
        fn=lambda *_: None,  # type: ignore[arg-type]
        consumer_name="test:registration.enrollment.changed",
        sessionmaker=lambda: None,  # type: ignore[arg-type,return-value]
        inbox_model=_Inbox,
        after_commit=lambda _: None,
        observe=lambda *_: None,
    )
    message = SimpleNamespace(
        body=json.dumps(body).encode(), correlation_id="cid-msg", message_id=body["message_id"]
    )
    with pytest.raises(RejectMessage):
        await consume(message)  # type: ignore[arg-type]
    [entry] = [e for e in lines() if e["event"] == "message_rejected_invalid"]
    assert "jane.doe" not in json.dumps(entry)
    assert entry["correlation_id"] == "cid-msg"
    assert entry["errors"], entry
    assert {"loc", "type"} == set(entry["errors"][0])
    assert "version" in {e["loc"] for e in entry["errors"]}
