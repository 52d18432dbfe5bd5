"""The HTTP call of an attempt against a receiver in this process: the host is resolved and
checked at connection time (a name that now resolves to an internal address reaches nothing:
DNS rebinding), TLS-free here, but the request keeps its host name."""

from __future__ import annotations

from integrations.delivery import sender
from integrations.delivery.targets import TargetPolicy
from te_testing.webhooks import WebhookReceiver

LOOPBACK = TargetPolicy.of(True, ["127.0.0.0/8"])
PRODUCTION_NETWORKS = TargetPolicy.of(True, [])


def resolving(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


async def post(policy: TargetPolicy, url: str, table: dict[str, list[str]]) -> sender.Answer:
    client = sender.make_client(policy, resolving(table))
    try:
        return await sender.send(
            client,
            url,
            {"webhook-id": "msg_1"},
            b"{}",
            policy=policy,
            timeout=2,
            excerpt_bytes=512,
        )
    finally:
        await client.aclose()


async def test_a_name_is_connected_to_the_address_that_was_checked(
    webhook_receiver: WebhookReceiver,
) -> None:
    url = f"http://receiver.test:{webhook_receiver.port}/named"
    answer = await post(LOOPBACK, url, {"receiver.test": ["127.0.0.1"]})
    assert answer.status_code == 200, answer
    [got] = webhook_receiver.at("/named")
    assert got.headers["host"] == f"receiver.test:{webhook_receiver.port}"
    assert got.headers["user-agent"] == sender.USER_AGENT


async def test_a_name_that_now_resolves_inside_is_refused_at_delivery(
    webhook_receiver: WebhookReceiver,
) -> None:
    """Registered while it resolved to a public address; at delivery it points at loopback."""
    url = f"http://rebind.test:{webhook_receiver.port}/rebound"
    for addresses in (["127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["::ffff:127.0.0.1"]):
        answer = await post(PRODUCTION_NETWORKS, url, {"rebind.test": addresses})
        assert answer.status_code is None
        assert answer.error is not None
        assert answer.error.startswith("target refused: "), answer
    assert not webhook_receiver.received


async def test_plain_http_is_refused_at_delivery_once_it_is_not_allowed(
    webhook_receiver: WebhookReceiver,
) -> None:
    https_only = TargetPolicy.of(False, ["127.0.0.0/8"])
    answer = await post(https_only, webhook_receiver.url("/plain"), {})
    assert answer.error is not None
    assert answer.error.startswith("target refused: "), answer
    assert not webhook_receiver.received


async def test_a_receiver_that_is_not_there_is_a_connection_failure() -> None:
    from te_testing.processes import free_port

    answer = await post(LOOPBACK, f"http://127.0.0.1:{free_port()}/", {})
    assert answer.status_code is None
    assert answer.error is not None
    assert answer.error.startswith("connection failed"), answer
