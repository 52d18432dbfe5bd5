"""Standard Webhooks signatures (https://www.standardwebhooks.com). Pure functions.

A secret is ``whsec_`` and the base64 of 32 random bytes; the key is those bytes. A delivery
carries ``webhook-id`` (the same on every attempt), ``webhook-timestamp`` (the attempt's time,
in seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
one per secret that signs, separated by spaces (after a rotation the old secret signs beside
the new one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence

PREFIX = "whsec_"
SECRET_BYTES = 32
#: webhook-ids are derived from (endpoint, message): the same on every attempt and redelivery
_NAMESPACE = uuid.UUID("6c2b8a70-3d5e-4f1b-9a52-5b0f3c9e2d41")


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after ``whsec_``."""
    return base64.b64decode(secret.removeprefix(PREFIX), validate=True)


def webhook_id(endpoint_id: uuid.UUID, message_id: uuid.UUID) -> str:
    return "msg_" + uuid.uuid5(_NAMESPACE, f"{endpoint_id}:{message_id}").hex


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(signing: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one ``v1,...`` per secret, the current one first."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in signing)


def headers(signing: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(signing, msg_id, timestamp, body),
        "content-type": "application/json",
    }
