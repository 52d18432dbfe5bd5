"""Encryption of tokens at rest (Fernet, key from TOKEN_ENCRYPTION_KEY)."""

from __future__ import annotations

from cryptography.fernet import Fernet

from zoom_bridge.settings import ZoomBridgeSettings


class TokenCipher:
    def __init__(self, settings: ZoomBridgeSettings) -> None:
        self._fernet = Fernet(settings.token_encryption_key.get_secret_value().encode())

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        return self._fernet.decrypt(value.encode()).decode()

    def decrypt_fresh(self, value: str, ttl_seconds: int) -> str:
        """Decrypt a value encrypted at most ``ttl_seconds`` ago (raises InvalidToken)."""
        return self._fernet.decrypt(value.encode(), ttl=ttl_seconds).decode()
