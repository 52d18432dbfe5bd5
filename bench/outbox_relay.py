"""Outbox relay: messages/s relayed with publisher confirms, against raw aio-pika with confirms."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
from faststream.rabbit import RabbitBroker

from bench.common import AMQP_URL, Result, Timer, create_database
from te_shared import contracts as c
from te_shared.db import create_engine, create_sessionmaker, unit_of_work
from te_shared.outbox import OutboxRelay, add_message
from te_shared.topology import Topology
from te_testing import messages
from te_testing.tables import Base, Outbox

N = 5000


def message(i: int) -> c.CompanySettingsChanged:
    return messages.company_settings_changed(company=f"bench-{i}")


async def raw_publish_rate(exchange_name: str) -> float:
    """Baseline: aio-pika publishes with confirms, awaited together in batches of 200."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        bodies = [json.dumps(message(i).model_dump(mode="json")).encode() for i in range(N)]
        with Timer() as t:
            for start in range(0, N, 200):
                await asyncio.gather(
                    *(
                        exchange.publish(
                            aio_pika.Message(
                                b,
                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                message_id=str(uuid.uuid4()),
                            ),
                            routing_key=c.CompanySettingsChanged.routing_key,
                        )
                        for b in bodies[start : start + 200]
                    )
                )
        return N / t.elapsed


async def relay_rate(exchange_name: str) -> float:
    url, drop = await create_database("outbox")
    engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sm = create_sessionmaker(engine)
        for start in range(0, N, 1000):
            async with unit_of_work(sm) as session:
                for i in range(start, start + 1000):
                    add_message(session, Outbox, message(i))
        broker = RabbitBroker(AMQP_URL, logger=None)
        await broker.connect()
        topology = Topology(exchange_name=exchange_name)
        await broker.declare_exchange(topology.exchange)
        relay = OutboxRelay(sm, Outbox, broker, topology.exchange, batch_size=200)
        with Timer() as t:
            while await relay.relay_once():
                pass
        await broker.stop()
        return N / t.elapsed
    finally:
        await engine.dispose()
        await drop()


async def run() -> list[Result]:
    exchange = f"bench-{uuid.uuid4().hex[:6]}"
    baseline = await raw_publish_rate(exchange + "-raw")
    relayed = await relay_rate(exchange)
    return [
        Result(
            "outbox relay",
            f"{N} messages relayed with confirms",
            relayed,
            "msg/s",
            "raw aio-pika publish with confirms",
            baseline,
            key="outbox.vs_raw",
        ),
    ]
