"""OAuth: auto-approve, code exchange, refresh-token rotation, expiry, S2S, client checks."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from zoom_sim.app import create_app
from zoom_sim.settings import Settings


async def test_authorize_redirects_with_code_and_state(kit: Any) -> None:
    r = await kit.client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": kit.CLIENT_ID,
            "redirect_uri": kit.REDIRECT_URI + "?x=1",
            "state": "abc",
        },
    )
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == kit.REDIRECT_URI
    query = parse_qs(location.query)
    assert query["x"] == ["1"]
    assert query["state"] == ["abc"]
    assert query["code"][0]


async def test_authorize_rejects_unknown_client(kit: Any) -> None:
    r = await kit.client.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": "nope", "redirect_uri": kit.REDIRECT_URI},
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client"


async def test_code_exchange_returns_zoom_token_shape(kit: Any) -> None:
    tokens = await kit.connect()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["access_token"]
    assert tokens["refresh_token"]
    assert isinstance(tokens["scope"], str)
    me = await kit.client.get("/v2/users/me", headers=kit.bearer(tokens["access_token"]))
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == "host@zoom-sim.local"
    assert body["type"] == 2
    assert body["role_name"] == "Owner"
    assert body["account_id"] == "acctTEST"
    assert body["id"]


async def test_code_is_single_use_and_bound_to_redirect_uri(kit: Any) -> None:
    code = await kit.authorize_code()
    bad = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://x/y"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request"
    again = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": kit.REDIRECT_URI},
    )
    assert again.status_code == 400
    assert again.json() == {"reason": "Invalid authorization code", "error": "invalid_grant"}


async def test_token_endpoint_requires_configured_client(kit: Any) -> None:
    code = await kit.authorize_code()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": kit.REDIRECT_URI}
    wrong = await kit.client.post("/oauth/token", headers=kit.basic(secret="wrong"), data=form)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    missing = await kit.client.post("/oauth/token", data=form)
    assert missing.status_code == 401


async def test_query_string_parameters_are_accepted(kit: Any) -> None:
    code = await kit.authorize_code()
    r = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        params={"grant_type": "authorization_code", "code": code, "redirect_uri": kit.REDIRECT_URI},
    )
    assert r.status_code == 200


async def test_refresh_rotates_and_invalidates_old_refresh_token(kit: Any) -> None:
    first = await kit.connect()
    r = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    reuse = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"

    third = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert third.status_code == 200


async def test_expired_access_token_gets_401_then_refresh_recovers(kit: Any) -> None:
    tokens = await kit.connect()
    auth = kit.bearer(tokens["access_token"])
    assert (await kit.client.get("/v2/users/me", headers=auth)).status_code == 200

    r = await kit.client.post("/_sim/tokens/expire")
    assert r.json() == {"expired_access_tokens": 1, "revoked_refresh_tokens": 0}
    expired = await kit.client.get("/v2/users/me", headers=auth)
    assert expired.status_code == 401
    assert expired.json() == {"code": 124, "message": "Access token is expired."}

    r = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    fresh = kit.bearer(r.json()["access_token"])
    assert (await kit.client.get("/v2/users/me", headers=fresh)).status_code == 200


async def test_expire_can_also_revoke_refresh_tokens(kit: Any) -> None:
    tokens = await kit.connect()
    r = await kit.client.post("/_sim/tokens/expire", json={"include_refresh": True})
    assert r.json()["revoked_refresh_tokens"] == 1
    r = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert r.status_code == 400


async def test_missing_or_bad_bearer_is_zoom_401(kit: Any) -> None:
    r = await kit.client.get("/v2/users/me")
    assert r.status_code == 401
    assert r.json() == {"code": 124, "message": "Invalid access token."}
    r = await kit.client.get("/v2/users/me", headers=kit.bearer("garbage"))
    assert r.status_code == 401
    assert r.json()["code"] == 124


async def test_server_to_server_account_credentials(kit: Any) -> None:
    r = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "account_credentials", "account_id": "acctTEST"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert "refresh_token" not in body
    me = await kit.client.get("/v2/users/me", headers=kit.bearer(body["access_token"]))
    assert me.json()["account_id"] == "acctTEST"

    bad = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "account_credentials", "account_id": "other"},
    )
    assert bad.status_code == 400


async def test_unsupported_grant_type(kit: Any) -> None:
    r = await kit.client.post("/oauth/token", headers=kit.basic(), data={"grant_type": "password"})
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"


async def test_pkce_s256(kit: Any) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
    challenge = challenge.rstrip("=")
    form = {"grant_type": "authorization_code", "redirect_uri": kit.REDIRECT_URI}
    code = await kit.authorize_code(code_challenge=challenge, code_challenge_method="S256")
    wrong = await kit.client.post(
        "/oauth/token", headers=kit.basic(), data={**form, "code": code, "code_verifier": "x" * 50}
    )
    assert wrong.status_code == 400
    code = await kit.authorize_code(code_challenge=challenge, code_challenge_method="S256")
    ok = await kit.client.post(
        "/oauth/token", headers=kit.basic(), data={**form, "code": code, "code_verifier": verifier}
    )
    assert ok.status_code == 200


async def test_sim_user_gives_a_separate_account(kit: Any) -> None:
    other = await kit.auth(sim_user="boss@acme.test")
    me = (await kit.client.get("/v2/users/me", headers=other)).json()
    assert me["email"] == "boss@acme.test"
    assert me["account_id"] != "acctTEST"
    host = await kit.auth()
    meeting = await kit.create_meeting(host)
    r = await kit.client.get(f"/v2/meetings/{meeting['id']}", headers=other)
    assert r.status_code == 404


async def test_revoke(kit: Any) -> None:
    tokens = await kit.connect()
    r = await kit.client.post(
        "/oauth/revoke", headers=kit.basic(), params={"token": tokens["access_token"]}
    )
    assert r.json() == {"status": "success"}
    me = await kit.client.get("/v2/users/me", headers=kit.bearer(tokens["access_token"]))
    assert me.status_code == 401


async def test_configured_server_to_server_app_gets_tokens_for_its_own_account(kit: Any) -> None:
    r = await kit.client.post(
        "/_sim/s2s-apps",
        json={"client_id": "s2s-id", "client_secret": "s2s-secret", "account_id": "acctS2S"},
    )
    assert r.status_code == 200
    form = {"grant_type": "account_credentials", "account_id": "acctS2S"}
    ok = await kit.client.post("/oauth/token", headers=kit.basic("s2s-id", "s2s-secret"), data=form)
    assert ok.status_code == 200, ok.text
    me = await kit.client.get("/v2/users/me", headers=kit.bearer(ok.json()["access_token"]))
    assert me.json()["account_id"] == "acctS2S"  # the account got an owner on the fly
    wrong = await kit.client.post("/oauth/token", headers=kit.basic("s2s-id", "not-it"), data=form)
    assert wrong.status_code == 401
    other = await kit.client.post(
        "/oauth/token",
        headers=kit.basic("s2s-id", "s2s-secret"),
        data={"grant_type": "account_credentials", "account_id": "acctTEST"},
    )
    assert other.status_code == 400
    # an S2S app has no authorization-code or refresh grant
    code = await kit.authorize_code()
    exchange = await kit.client.post(
        "/oauth/token",
        headers=kit.basic("s2s-id", "s2s-secret"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": kit.REDIRECT_URI},
    )
    assert exchange.status_code == 401


async def test_s2s_apps_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ZOOM_SIM_S2S_APPS",
        '[{"client_id": "e-id", "client_secret": "e-secret", "account_id": "acctEnv", '
        '"webhook_secret": "e-hook"}]',
    )
    settings = Settings()
    assert settings.s2s_apps[0].account_id == "acctEnv"
    assert "e-secret" not in repr(settings)
    assert "e-hook" not in repr(settings)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as client:
        basic = base64.b64encode(b"e-id:e-secret").decode()
        r = await client.post(
            "/oauth/token",
            headers={"Authorization": f"Basic {basic}"},
            data={"grant_type": "account_credentials", "account_id": "acctEnv"},
        )
    assert r.status_code == 200


async def test_declined_authorization_redirects_with_access_denied(kit: Any) -> None:
    r = await kit.client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": kit.CLIENT_ID,
            "redirect_uri": kit.REDIRECT_URI,
            "state": "st-9",
            "sim_deny": "1",
        },
    )
    assert r.status_code == 302
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["st-9"]
    assert "code" not in query


async def test_an_authorization_code_lives_five_minutes(kit: Any) -> None:
    now = [dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)]
    kit.app.state.sim.clock = lambda: now[0]
    form = {"grant_type": "authorization_code", "redirect_uri": kit.REDIRECT_URI}
    code = await kit.authorize_code()
    now[0] += dt.timedelta(minutes=4, seconds=59)
    ok = await kit.client.post("/oauth/token", headers=kit.basic(), data={**form, "code": code})
    assert ok.status_code == 200
    code = await kit.authorize_code()
    now[0] += dt.timedelta(minutes=5)
    late = await kit.client.post("/oauth/token", headers=kit.basic(), data={**form, "code": code})
    assert late.status_code == 400
    assert late.json() == {"reason": "Invalid authorization code", "error": "invalid_grant"}


async def test_a_refresh_whose_answer_was_lost_leaves_a_dead_refresh_token(kit: Any) -> None:
    """Zoom rotates the refresh token on every refresh; when the answer carrying the new one
    is lost, the caller is left with a token Zoom no longer accepts, and must reconnect."""
    tokens = await kit.connect()
    await kit.client.post(
        "/_sim/faults", json={"drop_after_commit": True, "status": 502, "path": "/oauth/token"}
    )
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    lost = await kit.client.post("/oauth/token", headers=kit.basic(), data=form)
    assert lost.status_code == 502
    retry = await kit.client.post("/oauth/token", headers=kit.basic(), data=form)
    assert retry.status_code == 400
    assert retry.json() == {"reason": "Invalid Token!", "error": "invalid_grant"}
    # the access token of the lost answer was minted too, but the caller never saw it; the old
    # access token still works until it expires
    me = await kit.client.get("/v2/users/me", headers=kit.bearer(tokens["access_token"]))
    assert me.status_code == 200
