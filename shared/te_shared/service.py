"""The common skeleton of a service: FastAPI app, broker, database, outbox relay, health.

A service calls :func:`create_service_app` with its settings, routers, consumers and ORM models;
the lifespan applies migrations, connects the broker (failing fast when RabbitMQ is unreachable),
declares the topology, starts consumers and the outbox relay, and on shutdown stops taking
messages, lets in-flight handlers finish, flushes the relay's batch and disposes the engine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from aio_pika.abc import AbstractRobustConnection
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.rabbit import RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.rabbit.schemas import Channel
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from te_shared import contracts
from te_shared.auth import JWTConfig
from te_shared.contracts import Message
from te_shared.db import (
    DRIVER_POOL,
    create_engine,
    create_sessionmaker,
    is_alone,
    ping,
    run_migrations_async,
)
from te_shared.errors import document_problems, install_error_handlers
from te_shared.idempotency import IdempotencyMiddleware, IdempotencyRecordMixin
from te_shared.idempotency import document as document_idempotency
from te_shared.inbox import Consumers, InboxRecordMixin
from te_shared.logging import configure_logging, get_logger
from te_shared.middleware import (
    BodySizeLimitMiddleware,
    CorrelationIdMiddleware,
    JsonNulMiddleware,
)
from te_shared.observability import HttpMetricsMiddleware, ServiceMetrics, tracer_provider_from_env
from te_shared.outbox import OutboxRecordMixin, OutboxRelay, add_message, take_dirty_flag
from te_shared.settings import ServiceSettings
from te_shared.topology import Topology

log = get_logger(__name__)

#: net new container objects between two collections of the youngest generation (Python's
#: default: 700). A request frees what it made by reference counting when it ends, so the
#: default only ever found a hundred requests' live objects, promoted them, and scanned them
#: again in the older generations: a sign-up storm's collections took 540-670 ms of wall time
#: (seven full ones of about 20 ms, each a pause of every request in flight), against 57-65 ms
#: at this threshold. What waits longer for a collection is cyclic garbage alone: ten thousand
#: objects at most.
YOUNG_COLLECTION_THRESHOLD = 10_000

Hook = Callable[["Runtime"], Awaitable[None]]


@dataclass
class Runtime:
    """What a running service holds; reachable as ``request.app.state.runtime``."""

    settings: ServiceSettings
    topology: Topology
    broker: RabbitBroker
    outbox_model: type[OutboxRecordMixin]
    engine: AsyncEngine | None = None
    sessionmaker: async_sessionmaker[AsyncSession] | None = None
    relay: OutboxRelay | None = None
    tracer_provider: TracerProvider | None = None
    metrics: ServiceMetrics = field(default_factory=lambda: ServiceMetrics("service"))
    extras: dict[str, Any] = field(default_factory=dict)

    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        if self.sessionmaker is None:
            raise RuntimeError("the service has not started")
        return self.sessionmaker

    #: Called after every request or message transaction commits (e.g. to wake a worker).
    commit_hooks: list[Callable[[AsyncSession], None]] = field(default_factory=list)
    #: Called when Prometheus scrapes, to set the service's own gauges (e.g. from the database).
    gauge_hooks: list[Hook] = field(default_factory=list)

    def after_commit(self, session: AsyncSession) -> None:
        if take_dirty_flag(session):
            self.outbox_written()
        for hook in self.commit_hooks:
            hook(session)

    def outbox_written(self) -> None:
        """Outbox rows were committed (by a session, or a statement on a driver connection):
        the relay publishes them now rather than at its next poll."""
        if self.relay is not None:
            self.relay.wake()

    def publish(self, session: AsyncSession, message: Message) -> None:
        """Add ``message`` to the outbox in ``session``'s transaction."""
        add_message(session, self.outbox_model, message)


def make_broker(
    settings: ServiceSettings, tracer_provider: TracerProvider | None = None
) -> RabbitBroker:
    middlewares = (
        [RabbitTelemetryMiddleware(tracer_provider=tracer_provider)] if tracer_provider else []
    )
    return RabbitBroker(
        settings.amqp_url.get_secret_value(),
        graceful_timeout=settings.graceful_timeout,
        default_channel=Channel(prefetch_count=settings.amqp_prefetch),
        description=f"{settings.service_name} messages",
        logger=get_logger(f"{settings.service_name}.broker"),
        # FastStream's "Received"/"Processed" lines for every message only at LOG_LEVEL=DEBUG,
        # as uvicorn's access log is off: the outcomes are counted (messages_consumed_total),
        # a handler's failure is still logged as an error, and a storm's consumers spent two
        # log lines of CPU on every message
        log_level=logging.DEBUG,
        middlewares=middlewares,
    )


def document_publishers(broker: RabbitBroker, topology: Topology, service: str) -> None:
    """Declare (for the AsyncAPI document only) every message this service publishes."""
    for message in contracts.ALL_MESSAGES:
        if message.routing_key.startswith(f"{service}."):
            broker.publisher(
                exchange=topology.exchange,
                routing_key=message.routing_key,
                persist=True,
                title=f"{service}/{message.routing_key}",
                description=(message.__doc__ or message.__name__).strip()
                + " Published through the transactional outbox.",
                schema=message,
            )


def asyncapi_document(app_title: str, version: str, broker: RabbitBroker) -> dict[str, Any]:
    spec = AsyncAPI(broker, title=app_title, version=version).to_specification()
    document: dict[str, Any] = spec.to_jsonable()
    return document


def topology_for(settings: ServiceSettings) -> Topology:
    return Topology(
        exchange_name=settings.amqp_exchange,
        queue_prefix=settings.amqp_queue_prefix,
        delivery_limit=settings.amqp_delivery_limit,
    )


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    runtime = get_runtime(request)
    async with runtime.session_factory()() as session:
        try:
            yield session
        except BaseException:
            # statements that ran each alone were each committed or undone by themselves:
            # nothing to roll back, and closing releases the connection (a rollback restored
            # the session's snapshot first, a sixth of a refused sign-up's CPU)
            if not is_alone(session):
                await session.rollback()
            raise
        await session.commit()
        runtime.after_commit(session)


#: A request's unit of work: commits when the endpoint returns, before the response is sent
#: (and rolls back when it raises). Handlers never commit themselves; the one exception is
#: :func:`te_shared.db.statements_alone`, which commits what came before it and runs each
#: later statement as its own transaction.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


async def _runtime(request: Request) -> Runtime:
    return get_runtime(request)


#: The service's runtime. Dependencies are ``async def`` throughout: FastAPI runs a plain
#: ``def`` dependency in its thread pool, a hand-off per request (the sign-up storm's profile).
RuntimeDep = Annotated[Runtime, Depends(_runtime)]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = PydanticField(
        description="`database` and `rabbitmq`: `ok`, or `down` with the error's type."
    )


def health_router() -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live", summary="The process is running")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="Database and RabbitMQ are reachable",
        response_model=None,
        responses={
            200: {"model": Readiness, "description": "Both are reachable."},
            503: {"model": Readiness, "description": "One of them is down: `checks` says which."},
        },
    )
    async def ready(request: Request) -> JSONResponse:
        runtime = get_runtime(request)
        checks: dict[str, str] = {}
        try:
            if runtime.engine is None:
                raise RuntimeError("not started")
            await asyncio.wait_for(ping(runtime.engine), timeout=3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        try:
            ok = await runtime.broker.ping(timeout=3)
            checks["rabbitmq"] = "ok" if ok else "down"
        except Exception as exc:
            checks["rabbitmq"] = f"down: {type(exc).__name__}"
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", "checks": checks},
            status_code=200 if healthy else 503,
        )

    return router


def ops_router(title: str, version: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        runtime = get_runtime(request)
        await refresh_gauges(runtime)
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi.json", summary="AsyncAPI document of this service's messages")
    async def asyncapi(request: Request) -> dict[str, Any]:
        return asyncapi_document(title, version, get_runtime(request).broker)

    return router


async def refresh_gauges(runtime: Runtime) -> None:
    """Outbox backlog, dead-letter depth and the service's ``gauge_hooks``, read when
    Prometheus scrapes."""
    if runtime.relay is not None:
        try:
            stats = await runtime.relay.stats()
            runtime.metrics.outbox_backlog.set(stats.backlog)
            runtime.metrics.outbox_oldest_age.set(stats.oldest_age_seconds)
        except Exception as exc:  # the database may be down; /health/ready says so
            log.warning("metrics_outbox_unavailable", error=type(exc).__name__)
    try:
        dlq = runtime.topology.dead_letter_queue(runtime.settings.service_name)
        count = await asyncio.wait_for(queue_depth(runtime.broker, dlq.name), timeout=3)
        runtime.metrics.dead_lettered.set(count)
    except Exception as exc:
        log.warning("metrics_dead_letter_unavailable", error=type(exc).__name__)
    for hook in runtime.gauge_hooks:
        try:
            await hook(runtime)
        except Exception as exc:  # the database may be down; /health/ready says so
            log.warning("metrics_gauge_unavailable", error=type(exc).__name__)


async def queue_depth(broker: RabbitBroker, queue_name: str) -> int:
    """Messages ready in ``queue_name``, read live from RabbitMQ.

    A passive declare on a channel of its own: FastStream's ``declare_queue`` caches the queue
    object, so its ``declaration_result`` would keep the count of the first call; and a passive
    declare of a missing queue closes its channel, which must not be the consumers' channel.
    """
    connection: AbstractRobustConnection | None = getattr(broker, "_connection", None)
    if connection is None or connection.is_closed:
        raise ConnectionError("not connected to RabbitMQ")
    channel = await connection.channel(publisher_confirms=False)
    try:
        queue = await channel.declare_queue(queue_name, passive=True)
        result = queue.declaration_result
        return int(result.message_count or 0)
    finally:
        if not channel.is_closed:
            await channel.close()


def exact_openapi(app: FastAPI) -> None:
    """``app.openapi()`` (``/openapi.json``, ``make docs``) with every operation's errors stated
    exactly (:func:`te_shared.errors.document_problems`), generated once."""
    generate = app.openapi
    done: list[dict[str, Any]] = []  # the document last made exact (FastAPI caches it)

    def openapi() -> dict[str, Any]:
        document = generate()
        if not done or done[0] is not document:
            done[:] = [document_problems(document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    outbox_model: type[OutboxRecordMixin],
    inbox_model: type[InboxRecordMixin],
    migrations: Path,
    consumers: Consumers | None = None,
    startup: Sequence[Hook] = (),
    shutdown: Sequence[Hook] = (),
    version: str = "0.1.0",
    tracer_provider: TracerProvider | None = None,
    idempotency_model: type[IdempotencyRecordMixin] | None = None,
    idempotency_exempt: tuple[str, ...] = (),
) -> FastAPI:
    """Build a service. ``startup`` hooks run once the database and broker are connected and
    before consumers start; ``shutdown`` hooks run after consumers stopped and before the outbox
    relay's last flush. ``tracer_provider`` overrides the one built from ``OTEL_*``."""
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    tracer_provider = tracer_provider or tracer_provider_from_env(settings.service_name)
    topology = topology_for(settings)
    broker = make_broker(settings, tracer_provider)
    metrics = ServiceMetrics(settings.service_name)
    runtime = Runtime(
        settings=settings,
        topology=topology,
        broker=broker,
        outbox_model=outbox_model,
        metrics=metrics,
        tracer_provider=tracer_provider,
    )
    if consumers is not None:
        consumers.observers.append(metrics.observe_consumed)
        consumers.bind(broker, topology, runtime.session_factory, inbox_model, runtime.after_commit)
    document_publishers(broker, topology, settings.service_name)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.run_migrations:
            await run_migrations_async(settings.database_url, migrations)
        runtime.engine = create_engine(
            settings.database_url, pool_timeout=settings.database_pool_timeout
        )
        runtime.sessionmaker = create_sessionmaker(runtime.engine)
        try:
            await broker.connect()
        except Exception as exc:
            log.error("rabbitmq_unreachable", error=type(exc).__name__)
            await runtime.engine.dispose()
            raise
        await topology.declare(broker, consumers.service if consumers is not None else None)
        runtime.relay = OutboxRelay(
            runtime.sessionmaker,
            outbox_model,
            broker,
            topology.exchange,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval,
            max_backoff=settings.outbox_max_backoff,
            inbox_model=inbox_model,
            inbox_retention=dt.timedelta(days=settings.inbox_retention_days),
            expiring=[idempotency_model] if idempotency_model is not None else [],
            on_published=metrics.observe_published,
            driver=lambda: runtime.extras.get(DRIVER_POOL),
            busy_timeout=settings.database_pool_timeout,
        )
        runtime.relay.hand_over_commits()
        for hook in startup:
            await hook(runtime)
        await broker.start()
        runtime.relay.start()
        if settings.jwt_secret.get_secret_value() == "dev-secret":
            log.warning("jwt_secret_is_the_dev_default", hint="set JWT_SECRET in production")
        # What startup built (modules, classes, mappers, the app) lives as long as the process;
        # frozen, the collector stops walking it on every full collection. Unfrozen, a full
        # collection cost 100-120 ms on this 2-core machine: the p99 of every endpoint.
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
        log.info("service_started", port=settings.port)
        try:
            yield
        finally:
            # uvicorn has stopped taking requests and finished the in-flight ones by now.
            log.info("service_stopping")
            # 1. stop taking messages; wait (up to graceful_timeout) for in-flight handlers
            await asyncio.gather(
                *(sub.stop() for sub in broker.subscribers), return_exceptions=True
            )
            # 2. the service's own background work
            for hook in shutdown:
                await hook(runtime)
            # 3. publish what is due in the outbox (bounded), then close the connection
            await runtime.relay.stop(flush_timeout=settings.graceful_timeout)
            await broker.stop()
            await runtime.engine.dispose()
            log.info("service_stopped")

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    if tracer_provider is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            # a calendar feed's path carries its credential: such requests are not traced
            app,
            tracer_provider=tracer_provider,
            excluded_urls="health/.*,metrics,v1/calendar/.*",
        )
    app.state.runtime = runtime
    app.state.jwt_config = JWTConfig(
        secret=settings.jwt_secret.get_secret_value(),
        audience=settings.jwt_audience,
        algorithm=settings.jwt_algorithm,
        jwks_url=settings.jwt_jwks_url,
    )
    install_error_handlers(app)
    exact_openapi(app)
    app.add_middleware(JsonNulMiddleware)  # inside the size limit, which bounds its buffer
    if idempotency_model is not None:  # inside the size limit too: it reads the body
        app.add_middleware(
            IdempotencyMiddleware,
            model=idempotency_model,
            sessionmaker=runtime.session_factory,
            driver=lambda: runtime.extras.get(DRIVER_POOL),
            busy_timeout=lambda: settings.database_pool_timeout,
            jwt_config=lambda: app.state.jwt_config,
            ttl=dt.timedelta(hours=settings.idempotency_ttl_hours),
            lease=dt.timedelta(seconds=settings.idempotency_lease_seconds),
            exempt=idempotency_exempt,
            routes=lambda: app.router.routes,
        )
        document_idempotency(app, idempotency_exempt)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(CorrelationIdMiddleware)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.include_router(health_router())
    app.include_router(ops_router(title, version))
    for router in routers:
        app.include_router(router)
    return app
