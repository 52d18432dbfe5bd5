"""Settings come from the documented environment variables; secrets never show in repr."""

from __future__ import annotations

import pytest

from zoom_sim.settings import Settings


def test_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "ZOOM_SIM_PORT": "9123",
        "ZOOM_SIM_HOST": "0.0.0.0",
        "ZOOM_SIM_WEBHOOK_URL": "http://bridge:8003/v1/zoom/webhooks",
        "ZOOM_WEBHOOK_SECRET": "whsec",
        "ZOOM_CLIENT_ID": "cid",
        "ZOOM_CLIENT_SECRET": "csec",
        "ZOOM_SIM_PUBLIC_URL": "http://zoom:8099/",
        "ZOOM_SIM_USER_EMAIL": "owner@corp.test",
        "ZOOM_SIM_ACCOUNT_ID": "acct1",
        "ZOOM_SIM_TOKEN_TTL": "60",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.port == 9123
    assert s.host == "0.0.0.0"
    assert s.webhook_url == "http://bridge:8003/v1/zoom/webhooks"
    assert s.webhook_secret.get_secret_value() == "whsec"
    assert s.client_id == "cid"
    assert s.client_secret.get_secret_value() == "csec"
    assert s.base_url == "http://zoom:8099"
    assert s.user_email == "owner@corp.test"
    assert s.account_id == "acct1"
    assert s.token_ttl == 60
    assert "whsec" not in repr(s)
    assert "csec" not in repr(s)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ZOOM_SIM_PORT", "ZOOM_WEBHOOK_SECRET", "ZOOM_CLIENT_ID", "ZOOM_SIM_WEBHOOK_URL"):
        monkeypatch.delenv(key, raising=False)
    s = Settings()
    assert s.port == 8099
    assert s.webhook_secret.get_secret_value() == "dev-webhook-secret"
    assert s.client_id == "dev-client-id"
    assert s.webhook_url == "http://127.0.0.1:8003/v1/zoom/webhooks"
