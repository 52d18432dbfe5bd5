"""Registering, reading, rotating and removing webhook endpoints (issue 13 §2)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from integrations.models import WebhookEndpoint

ENDPOINTS = "/v1/webhooks/endpoints"


def assert_secret(secret: str) -> None:
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24


async def test_an_admin_registers_an_endpoint_and_sees_the_secret_once(integ: Any) -> None:
    r = await integ.client.post(
        ENDPOINTS,
        json={
            "url": "http://127.0.0.1:9/hook",
            "events": ["enrollment.changed", "day.changed", "enrollment.changed"],
            "description": "  CRM sync ",
        },
        headers=integ.admin(),
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert_secret(created["secret"])
    assert created["events"] == ["enrollment.changed", "day.changed"]
    assert created["description"] == "CRM sync"
    assert created["enabled"] is True
    assert r.headers["location"] == f"{ENDPOINTS}/{created['id']}"
    one = await integ.client.get(r.headers["location"], headers=integ.admin())
    assert one.status_code == 200
    assert "secret" not in one.json()
    assert created["secret"] not in one.text
    listed = await integ.client.get(ENDPOINTS, headers=integ.admin())
    assert created["id"] in {e["id"] for e in listed.json()}
    assert created["secret"] not in listed.text
    # stored encrypted, never in clear
    factory = integ.app.state.runtime.session_factory()
    async with factory() as session:
        row = await session.get(WebhookEndpoint, uuid.UUID(created["id"]))
    assert row is not None
    assert created["secret"] not in row.secret_enc


async def test_unknown_event_types_are_a_422_naming_them(integ: Any) -> None:
    r = await integ.client.post(
        ENDPOINTS,
        json={"url": "http://127.0.0.1:9/hook", "events": ["day.changed", "user.deleted"]},
        headers=integ.admin(),
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body.events.1"]
    assert "user.deleted" in r.text
    empty = await integ.client.post(
        ENDPOINTS, json={"url": "http://127.0.0.1:9/hook", "events": []}, headers=integ.admin()
    )
    assert empty.status_code == 422


async def test_users_get_403_and_other_companies_404(integ: Any) -> None:
    created = await integ.register("http://127.0.0.1:9/hook")
    path = f"{ENDPOINTS}/{created['id']}"
    assert (await integ.client.get(ENDPOINTS, headers=integ.user())).status_code == 403
    for method, suffix in (
        ("GET", ""),
        ("GET", "/deliveries"),
        ("POST", "/rotate-secret"),
        ("DELETE", ""),
    ):
        r = await integ.client.request(method, path + suffix, headers=integ.admin("other-co"))
        assert r.status_code == 404, (method, suffix, r.text)
        assert created["url"] not in r.text
        r = await integ.client.request(method, path + suffix, headers=integ.user())
        assert r.status_code == 403, (method, suffix)
    listed = await integ.client.get(ENDPOINTS, headers=integ.admin("other-co"))
    assert listed.json() == []
    assert (await integ.client.get(path, headers=integ.admin())).status_code == 200


async def test_delete_removes_the_endpoint(integ: Any) -> None:
    created = await integ.register("http://127.0.0.1:9/hook")
    path = f"{ENDPOINTS}/{created['id']}"
    assert (await integ.client.delete(path, headers=integ.admin())).status_code == 204
    assert (await integ.client.get(path, headers=integ.admin())).status_code == 404
    assert (await integ.client.delete(path, headers=integ.admin())).status_code == 404


async def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_a_day(integ: Any) -> None:
    created = await integ.register("http://127.0.0.1:9/hook")
    r = await integ.client.post(f"{ENDPOINTS}/{created['id']}/rotate-secret", headers=integ.admin())
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert_secret(rotated["secret"])
    assert rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    assert rotated["secret_rotated_at"] is not None


async def test_a_replayed_create_returns_the_same_secret_stored_encrypted(integ: Any) -> None:
    """Idempotency-Key: a retried create gets the first answer (the one secret), and the kept
    answer is encrypted like the secret itself."""
    headers = {**integ.admin(), "Idempotency-Key": f"create-{uuid.uuid4()}"}
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    first = await integ.client.post(ENDPOINTS, json=body, headers=headers)
    again = await integ.client.post(ENDPOINTS, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    factory = integ.app.state.runtime.session_factory()
    async with factory() as session:
        raw = (
            await session.execute(
                text("SELECT body FROM idempotency_keys WHERE key = :key"),
                {"key": headers["Idempotency-Key"]},
            )
        ).scalar()
    assert raw
    assert b"whsec_" not in bytes(raw)
    assert first.json()["secret"].encode() not in bytes(raw)


URLS_REFUSED_IN_PRODUCTION = {
    "http://8.8.8.8/hook": "https_required",
    "ftp://example.com/hook": "https_required",
    "https://127.0.0.1/hook": "target_refused",
    "https://localhost/hook": "target_refused",
    "https://10.1.2.3/hook": "target_refused",
    "https://192.168.0.10:8443/hook": "target_refused",
    "https://172.16.5.4/hook": "target_refused",
    "https://169.254.169.254/latest/meta-data": "target_refused",
    "https://100.64.0.1/hook": "target_refused",
    "https://0.0.0.0/hook": "target_refused",
    "https://[::1]/hook": "target_refused",
    "https://[::ffff:127.0.0.1]/hook": "target_refused",
    "https://[::ffff:10.0.0.1]/hook": "target_refused",
    "https://[fe80::1]/hook": "target_refused",
    "https://[fd00::1]/hook": "target_refused",
    "https://[64:ff9b::a00:1]/hook": "target_refused",
    "https://[2002:a00:1::]/hook": "target_refused",
    "https://2130706433/hook": "target_refused",
    "https://0x7f.1/hook": "target_refused",
    "https://user:pass@8.8.8.8/hook": "invalid_url",
    "https:///hook": "invalid_url",
}


@pytest.mark.parametrize(("url", "code"), list(URLS_REFUSED_IN_PRODUCTION.items()))
async def test_targets_refused_with_production_settings(strict: Any, url: str, code: str) -> None:
    r = await strict.client.post(
        ENDPOINTS, json={"url": url, "events": ["*"]}, headers=strict.admin()
    )
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "body.url"
    assert error["code"] == code, r.text


async def test_a_public_https_target_is_accepted_with_production_settings(strict: Any) -> None:
    r = await strict.client.post(
        ENDPOINTS,
        json={"url": "https://8.8.8.8/hook", "events": ["*"]},
        headers=strict.admin("prod-co"),
    )
    assert r.status_code == 201, r.text


async def test_a_local_run_allows_loopback_but_no_other_private_network(integ: Any) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/hook"):
        r = await integ.client.post(
            ENDPOINTS, json={"url": url, "events": ["*"]}, headers=integ.admin("local")
        )
        assert r.status_code == 201, (url, r.text)
    for url in ("http://10.0.0.1/hook", "http://[::ffff:192.168.1.1]/hook"):
        r = await integ.client.post(
            ENDPOINTS, json={"url": url, "events": ["*"]}, headers=integ.admin("local")
        )
        assert r.status_code == 422, (url, r.text)
