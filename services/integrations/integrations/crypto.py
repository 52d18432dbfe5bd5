"""Encryption at rest (Fernet, key from WEBHOOK_SECRET_KEY).

Endpoints' signing secrets must be recovered to sign, so they are encrypted, never hashed. The
answer to a create or a rotation carries the new secret, and the Idempotency-Key record keeps
that answer for replays (``te_shared.idempotency``): its ``body`` column is encrypted too
(:class:`EncryptedBytes`), so no secret is ever stored in clear.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect


class SecretCipher:
    """Fernet with WEBHOOK_SECRET_KEY: one key, or several separated by commas to rotate it
    (the first encrypts, any decrypts)."""

    def __init__(self, key: str) -> None:
        keys = [part.strip() for part in key.split(",") if part.strip()]
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        return self._fernet.decrypt(value.encode()).decode()

    def encrypt_bytes(self, value: bytes) -> bytes:
        return self._fernet.encrypt(value)

    def decrypt_bytes(self, value: bytes) -> bytes:
        return self._fernet.decrypt(value)


class _Keyring:
    """The cipher of the running app, for :class:`EncryptedBytes` (a column type cannot take
    the settings: it is built when the models are imported). Every app of a process uses the
    same WEBHOOK_SECRET_KEY."""

    cipher: SecretCipher | None = None

    def get(self) -> SecretCipher:
        if self.cipher is None:
            raise RuntimeError("integrations.crypto.configure() was not called")
        return self.cipher


keyring = _Keyring()


def configure(key: str) -> SecretCipher:
    keyring.cipher = SecretCipher(key)
    return keyring.cipher


class EncryptedBytes(TypeDecorator[bytes]):
    """Bytes stored Fernet-encrypted with the app's key."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return keyring.get().encrypt_bytes(bytes(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return keyring.get().decrypt_bytes(bytes(value))
