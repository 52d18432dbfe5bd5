"""Broker topology: one durable topic exchange, per-consumer quorum queues with dead-lettering.

Every service declares the topology of every service a deployment always has at start-up
(idempotently), so a message published before its consumer first starts is queued, never
dropped as unroutable. An optional service (:data:`OPTIONAL`: integrations) declares its own
queues, and only it does: a deployment without it queues nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from te_shared import contracts as c

CATALOG = "catalog"
REGISTRATION = "registration"
ZOOM_BRIDGE = "zoom-bridge"
INTEGRATIONS = "integrations"

#: Which messages each service consumes. One queue per (service, message type).
CONSUMES: dict[str, tuple[type[c.Message], ...]] = {
    CATALOG: (
        *c.MEETING_STATES,
        c.RecordingAvailable,
        c.RecordingsChanged,
        c.EnrollmentChanged,
        c.ZoomAccountChanged,
    ),
    REGISTRATION: (
        c.CompanySettingsChanged,
        c.EventChanged,
        c.SessionCreated,
        c.SessionUpdated,
        c.SessionDeleted,
        c.DayScheduled,
        c.DayRescheduled,
        c.DayCancelled,
        c.AttendanceRecorded,
        *c.MEETING_STATES,
    ),
    ZOOM_BRIDGE: (
        c.CompanySettingsChanged,
        c.DayScheduled,
        c.DayRescheduled,
        c.DayCancelled,
        c.EnrollmentChanged,
    ),
    # outbound webhooks (services/integrations): what a company's receivers may subscribe to
    INTEGRATIONS: (
        c.EventChanged,
        c.SessionCreated,
        c.SessionUpdated,
        c.SessionDeleted,
        c.DayScheduled,
        c.DayRescheduled,
        c.DayCancelled,
        c.EnrollmentChanged,
        c.AttendanceRecorded,
        *c.MEETING_STATES,
        c.RecordingsChanged,
    ),
}


#: Services a deployment may leave out (integrations: outbound webhooks). Their queues are
#: declared by themselves only, at their first start: declared by every service, they filled
#: with every message for as long as the service was not deployed, until RabbitMQ's disk alarm
#: would stop every publisher of the platform. Nothing is lost by it: integrations delivers
#: only to the endpoints registered with it, and none can be before it first runs.
OPTIONAL: frozenset[str] = frozenset({INTEGRATIONS})


def declared_by(service: str | None) -> tuple[str, ...]:
    """The consuming services whose queues ``service`` declares at start-up: every one a
    deployment always has, and its own."""
    return tuple(s for s in CONSUMES if s not in OPTIONAL or s == service)


@dataclass(frozen=True, slots=True)
class Topology:
    exchange_name: str = "training-events"
    queue_prefix: str = ""
    delivery_limit: int = 5

    @property
    def exchange(self) -> RabbitExchange:
        return RabbitExchange(self.exchange_name, type=ExchangeType.TOPIC, durable=True)

    @property
    def dead_letter_exchange(self) -> RabbitExchange:
        return RabbitExchange(f"{self.exchange_name}.dlx", type=ExchangeType.DIRECT, durable=True)

    def queue_name(self, service: str, message: type[c.Message]) -> str:
        return f"{self.queue_prefix}{service}.{message.routing_key}"

    def queue(self, service: str, message: type[c.Message]) -> RabbitQueue:
        """The quorum queue through which ``service`` consumes ``message``."""
        return RabbitQueue(
            self.queue_name(service, message),
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key=message.routing_key,
            arguments={
                "x-dead-letter-exchange": self.dead_letter_exchange.name,
                "x-dead-letter-routing-key": service,
                "x-delivery-limit": self.delivery_limit,
            },
        )

    def dead_letter_queue(self, service: str) -> RabbitQueue:
        return RabbitQueue(
            f"{self.queue_prefix}{service}.dead-letter",
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key=service,
        )

    def all_queue_names(self, services: Iterable[str] = CONSUMES) -> list[str]:
        """The queues of ``services`` (every consuming one by default), dead-letter ones too."""
        chosen = list(services)
        names = [self.queue_name(s, m) for s in chosen for m in CONSUMES[s]]
        names += [self.dead_letter_queue(s).name for s in chosen]
        return names

    async def declare(self, broker: RabbitBroker, service: str | None = None) -> None:
        """Declare the exchanges, and the queues and bindings of every service a deployment
        always has and of ``service`` itself (:func:`declared_by`). Idempotent."""
        exchange = await broker.declare_exchange(self.exchange)
        dlx = await broker.declare_exchange(self.dead_letter_exchange)
        for consumer in declared_by(service):
            dlq = await broker.declare_queue(self.dead_letter_queue(consumer))
            await dlq.bind(dlx, routing_key=consumer)
            for message in CONSUMES[consumer]:
                queue = await broker.declare_queue(self.queue(consumer, message))
                await queue.bind(exchange, routing_key=message.routing_key)
