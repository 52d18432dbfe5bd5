"""Standard Webhooks signatures, checked against the reference library (``standardwebhooks``)."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from integrations.delivery import signing


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert signing.new_secret() != secret


def test_the_signature_is_the_reference_librarys() -> None:
    secret = signing.new_secret()
    timestamp = int(time.time())
    body = '{"type":"day.changed","data":{"topic":"Обучение"}}'.encode()
    ours = signing.sign(secret, "msg_1", timestamp, body)
    theirs = Webhook(secret).sign(
        "msg_1", dt.datetime.fromtimestamp(timestamp, dt.UTC), body.decode()
    )
    assert ours == theirs
    assert ours.startswith("v1,")


def test_headers_verify_with_every_secret_that_signs() -> None:
    new, old, other = signing.new_secret(), signing.new_secret(), signing.new_secret()
    body = b'{"type":"event.changed"}'
    headers = signing.headers([new, old], "msg_2", int(time.time()), body)
    assert headers["webhook-id"] == "msg_2"
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(body, headers) == {"type": "event.changed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # the body is signed, byte for byte
        Webhook(new).verify(b'{"type": "event.changed"}', headers)


def test_a_stale_timestamp_does_not_verify() -> None:
    secret = signing.new_secret()
    headers = signing.headers([secret], "msg_3", int(time.time()) - 600, b"{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b"{}", headers)


def test_the_webhook_id_is_stable_per_endpoint_and_message() -> None:
    endpoint, message = uuid.uuid4(), uuid.uuid4()
    assert signing.webhook_id(endpoint, message) == signing.webhook_id(endpoint, message)
    assert signing.webhook_id(endpoint, message) != signing.webhook_id(uuid.uuid4(), message)
    assert signing.webhook_id(endpoint, message) != signing.webhook_id(endpoint, uuid.uuid4())
    assert signing.webhook_id(endpoint, message).startswith("msg_")
