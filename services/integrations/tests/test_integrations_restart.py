"""Nothing is lost across restarts (issue 13 §2): the service runs as its own process and is
killed with SIGKILL (``kill -9``) while deliveries wait for a retry, while one is in flight and
while messages arrive; started again on the same database, it delivers every one, each with
the webhook-id it had."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from te_shared import contracts as c
from te_testing import messages
from te_testing.api import auth
from te_testing.infra import DatabaseFactory, RabbitNamespace, TokenFactory, namespace
from te_testing.polling import eventually
from te_testing.processes import ServiceProcess, free_port
from te_testing.webhooks import WebhookReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture
async def process(
    databases: DatabaseFactory, amqp_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ServiceProcess, RabbitNamespace]]:
    async with namespace(amqp_url) as ns:
        proc = ServiceProcess(
            "integrations",
            {
                **ns.env(),
                "DATABASE_URL": await databases.create("integ_restart"),
                "LOG_JSON": "true",
                "WEBHOOK_ALLOW_HTTP": "true",
                "WEBHOOK_ALLOW_PRIVATE_NETWORKS": '["127.0.0.0/8"]',
                "WEBHOOK_RETRY_SCALE": "0.01",  # 50 ms, 3 s, 18 s, ...
                "WEBHOOK_WORKER_POLL_SECONDS": "0.1",
                "WEBHOOK_TIMEOUT_SECONDS": "2",
                "WEBHOOK_LEASE_SECONDS": "3",
            },
            free_port(),
            tmp_path / "integrations.log",
        )
        await proc.start()
        try:
            yield proc, ns
        finally:
            proc.stop()


def enrollment(company: str) -> c.EnrollmentChanged:
    return messages.enrollment_changed(company=company, email="u1@x.io")


async def test_deliveries_survive_kill_9(
    process: tuple[ServiceProcess, RabbitNamespace],
    webhook_receiver: WebhookReceiver,
    token: TokenFactory,
) -> None:
    proc, ns = process
    admin = auth(token(role="admin", company="restart-co"))
    async with httpx.AsyncClient(base_url=proc.url, headers=admin, timeout=10) as api:
        r = await api.post(
            "/v1/webhooks/endpoints",
            json={"url": webhook_receiver.url("/retrying"), "events": ["*"]},
        )
        assert r.status_code == 201, r.text
        retrying = r.json()["id"]
        r = await api.post(
            "/v1/webhooks/endpoints",
            json={"url": webhook_receiver.url("/hanging"), "events": ["enrollment.changed"]},
        )
        assert r.status_code == 201, r.text

    # one delivery waits for its third attempt (3 s after its second), and one is in flight
    # to a receiver that does not answer
    webhook_receiver.answer("/retrying", 503, 503)
    webhook_receiver.delay("/hanging", 60)
    await messages.publish(ns, enrollment("restart-co"))

    async def both_started() -> bool:
        return len(webhook_receiver.at("/retrying")) >= 2 and bool(webhook_receiver.at("/hanging"))

    await eventually(both_started, interval=0.05)
    proc.kill()  # SIGKILL: no shutdown, the lease of the one in flight stays
    webhook_receiver.delay("/hanging", 0)
    # a message that arrives while the service is down waits in its queue
    await messages.publish(ns, messages.event_changed(company="restart-co", title={"en": "Kept"}))
    await proc.start()

    async def all_delivered() -> bool:
        return (
            len(webhook_receiver.at("/retrying")) >= 4 and len(webhook_receiver.at("/hanging")) >= 2
        )

    await eventually(all_delivered, interval=0.05)
    retried = webhook_receiver.at("/retrying")
    by_id: dict[str, list[int]] = {}
    for got in retried:
        by_id.setdefault(got.headers["webhook-id"], []).append(1)
    assert sorted(len(v) for v in by_id.values()) == [1, 3]  # the event, the enrollment's 3
    hanging = webhook_receiver.at("/hanging")
    assert len({h.headers["webhook-id"] for h in hanging}) == 1
    assert hanging[0].body == hanging[1].body

    async with httpx.AsyncClient(base_url=proc.url, headers=admin, timeout=10) as api:

        async def settled() -> list[dict[str, Any]]:
            r = await api.get(f"/v1/webhooks/endpoints/{retrying}/deliveries")
            items: list[dict[str, Any]] = r.json()["items"]
            return (
                items if len(items) == 2 and all(i["state"] == "delivered" for i in items) else []
            )

        items = await eventually(settled, interval=0.05)
    enrollment_delivery = next(i for i in items if i["event_type"] == "enrollment.changed")
    statuses = [a["status_code"] for a in enrollment_delivery["attempts"]]
    # the second 503 is in the log unless the kill came between its answer and its record
    # (then that attempt is not counted and the delivery went again after its lease)
    assert statuses in ([503, 503, 200], [503, 200]), statuses
