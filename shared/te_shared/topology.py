"""Broker topology: one durable topic exchange, per-consumer quorum queues with dead-lettering.

Every service declares the *whole* topology at start-up (idempotently), so a message published
before its consumer first starts is queued, never dropped as unroutable.
"""

from __future__ import annotations

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
        c.MeetingCreated,
        c.MeetingUpdated,
        c.MeetingFailed,
        c.MeetingDeleted,
        c.RecordingAvailable,
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
        c.MeetingCreated,
        c.MeetingUpdated,
        c.MeetingFailed,
        c.MeetingDeleted,
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
    ),
}


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

    def all_queue_names(self) -> list[str]:
        names = [self.queue_name(s, m) for s, msgs in CONSUMES.items() for m in msgs]
        names += [self.dead_letter_queue(s).name for s in CONSUMES]
        return names

    async def declare(self, broker: RabbitBroker) -> None:
        """Declare exchanges, every service's queues and their bindings (idempotent)."""
        exchange = await broker.declare_exchange(self.exchange)
        dlx = await broker.declare_exchange(self.dead_letter_exchange)
        for service, messages in CONSUMES.items():
            dlq = await broker.declare_queue(self.dead_letter_queue(service))
            await dlq.bind(dlx, routing_key=service)
            for message in messages:
                queue = await broker.declare_queue(self.queue(service, message))
                await queue.bind(exchange, routing_key=message.routing_key)
