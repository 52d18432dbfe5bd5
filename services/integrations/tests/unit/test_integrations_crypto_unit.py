"""Secrets at rest: Fernet with WEBHOOK_SECRET_KEY, rotatable by listing several keys."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken

from integrations.crypto import SecretCipher


def test_a_secret_round_trips_and_is_not_stored_in_clear() -> None:
    cipher = SecretCipher(Fernet.generate_key().decode())
    sealed = cipher.encrypt("whsec_abc")
    assert "whsec_abc" not in sealed
    assert cipher.decrypt(sealed) == "whsec_abc"


def test_listing_a_new_key_first_rotates_the_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_before = SecretCipher(old).encrypt("whsec_before")
    rotated = SecretCipher(f"{new}, {old}")
    assert rotated.decrypt(sealed_before) == "whsec_before"
    sealed_after = rotated.encrypt("whsec_after")
    assert SecretCipher(new).decrypt(sealed_after) == "whsec_after"
    with pytest.raises(InvalidToken):
        SecretCipher(old).decrypt(sealed_after)
