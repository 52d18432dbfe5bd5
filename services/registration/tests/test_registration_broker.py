"""Through the real broker: catalog's messages build the read model, and registration's
EnrollmentChanged (with the user's email) and AccessGranted reach RabbitMQ."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import aio_pika

from te_shared import contracts as c
from te_testing import messages
from te_testing.polling import eventually

if TYPE_CHECKING:
    from conftest import Reg


async def test_read_model_through_broker_and_enrollment_changed_published(reg: Reg) -> None:
    """Read model from catalog's messages over RabbitMQ (out of order, duplicated); R-ENR-3
    sign-up; EnrollmentChanged with the user's email and AccessGranted published to RabbitMQ."""
    connection = await aio_pika.connect(reg.ns.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(reg.ns.exchange)
        tap = await channel.declare_queue(exclusive=True, auto_delete=True)
        await tap.bind(exchange, routing_key="registration.#")

        event_id = uuid.uuid4()
        event = messages.event_changed(event_id=event_id, title={"en": "Broker"})
        created = reg.session_msg(event_id, limit=5)
        day = reg.day_msg(event_id, created.session_id)
        await messages.publish(reg.ns, day, created, event, created)  # day first, session twice

        async def applied() -> Any:
            r = await reg.client.get(f"/v1/me/events/{event_id}", headers=reg.admin())
            ok = r.status_code == 200 and r.json()["sessions"]
            return ok and r.json()["sessions"][0]["days"]

        await eventually(applied, interval=0.1)
        r = await reg.client.put(
            f"/v1/events/{event_id}/access", json={"user_ids": ["bk-1"]}, headers=reg.admin()
        )
        assert r.json() == {"granted": ["bk-1"]}
        r = await reg.sign_up(created.session_id, "bk-1", email="bk1@x.io")
        assert r.status_code == 201, r.text

        seen: dict[str, dict[str, Any]] = {}

        async def received() -> bool:
            message = await tap.get(fail=False, no_ack=True)
            while message is not None:
                body = json.loads(message.body)
                seen[message.routing_key or ""] = body
                message = await tap.get(fail=False, no_ack=True)
            return len(seen) == 2

        await eventually(received, interval=0.1)
        changed = seen[c.EnrollmentChanged.routing_key]
        assert (changed["user_id"], changed["email"], changed["status"]) == (
            "bk-1",
            "bk1@x.io",
            "approved",
        )
        assert (changed["by"], changed["reason"]) == ("bk-1", "sign-up")  # R-ENR-12
        assert seen[c.AccessGranted.routing_key]["user_ids"] == ["bk-1"]
