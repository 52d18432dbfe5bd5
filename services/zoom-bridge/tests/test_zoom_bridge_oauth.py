"""R-ZOOM-1: OAuth connection, signed state, encrypted tokens, refresh, deauthorization."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select

from zoom_bridge.models import ZoomAccount

if TYPE_CHECKING:
    from conftest import Env


async def _account(env: Env, account_id: str) -> ZoomAccount | None:
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        rows = (await session.execute(select(ZoomAccount))).scalars()
        return next((a for a in rows if str(a.id) == account_id), None)


async def test_r_zoom_1_oauth_connects_and_never_returns_or_stores_plain_tokens(env: Env) -> None:
    account_id = await env.connect("administrator", sim_user="oauth1@zoom.test")
    async with env.client() as bridge:
        r = await bridge.get("/v1/zoom/accounts", headers=env.admin())
        assert r.status_code == 200
        listed = next(a for a in r.json() if a["id"] == account_id)
        assert listed["role"] == "administrator"
        assert set(listed) == {"id", "role", "kind", "zoom_user_email", "connected_at"}
        other = await bridge.get("/v1/zoom/accounts", headers=env.admin(company="globex"))
        assert all(a["id"] != account_id for a in other.json())
    account = await _account(env, account_id)
    assert account is not None
    assert account.access_token_enc
    assert account.refresh_token_enc
    # encrypted at rest: the stored value is a Fernet token, not the bearer token itself
    plain = env.app.state.runtime.extras["zoom"].cipher.decrypt(account.access_token_enc)
    assert plain not in account.access_token_enc
    assert base64.urlsafe_b64decode(account.access_token_enc.encode())[0] == 0x80


async def test_r_zoom_1_state_is_signed_single_use_and_bound(env: Env) -> None:
    async with env.client() as bridge, env.sim() as sim:
        r = await bridge.get(
            "/v1/zoom/oauth/authorize",
            params={"role": "participant", "return_to": "/admin"},
            headers=env.admin(),
        )
        state = env.query(r.headers["location"])["state"]
        back = await sim.get(r.headers["location"])
        callback = back.headers["location"]
        tampered = await bridge.get(
            "/v1/zoom/oauth/callback",
            params={"code": env.query(callback)["code"], "state": state[:-4] + "AAAA"},
        )
        assert tampered.status_code == 400
        assert tampered.json()["code"] == "bad_state"
        ok = await bridge.get(callback)
        assert ok.status_code == 302
        replay = await bridge.get(callback)
        assert replay.status_code == 400  # single use
        # only admins start the flow; return_to cannot leave the admin panel
        r = await bridge.get(
            "/v1/zoom/oauth/authorize", params={"role": "participant"}, headers=env.user("u9")
        )
        assert r.status_code == 403
        r = await bridge.get(
            "/v1/zoom/oauth/authorize",
            params={"role": "participant", "return_to": "https://evil.example/x"},
            headers=env.admin(),
        )
        assert r.status_code == 422


async def test_r_zoom_1_patch_role_and_other_company_is_404(env: Env) -> None:
    account_id = await env.connect("administrator", sim_user="patch@zoom.test")
    async with env.client() as bridge:
        r = await bridge.patch(
            f"/v1/zoom/accounts/{account_id}", json={"role": "participant"}, headers=env.admin()
        )
        assert r.status_code == 200
        assert r.json()["role"] == "participant"
        r = await bridge.patch(
            f"/v1/zoom/accounts/{account_id}",
            json={"role": "participant"},
            headers=env.admin(company="globex"),
        )
        assert r.status_code == 404
        r = await bridge.patch(
            f"/v1/zoom/accounts/{account_id}", json={"role": "owner"}, headers=env.admin()
        )
        assert r.status_code == 422


async def test_r_zoom_1_expired_token_is_refreshed_with_rotation(env: Env) -> None:
    account_id = await env.connect("administrator", sim_user="refresh@zoom.test")
    before = await _account(env, account_id)
    assert before is not None
    async with env.sim() as sim:
        # Zoom revokes the access token early: the bridge gets a 401, refreshes and retries
        await sim.post("/_sim/tokens/expire", json={"include_refresh": False})
    zoom = env.app.state.runtime.extras["zoom"]
    r = await zoom.call(before.id, "GET", "/users/me")
    assert r.status_code == 200
    after = await _account(env, account_id)
    assert after is not None
    assert zoom.cipher.decrypt(after.refresh_token_enc) != zoom.cipher.decrypt(
        before.refresh_token_enc
    )


async def test_r_zoom_1_server_to_server_connection(env: Env) -> None:
    async with env.client() as bridge:
        r = await bridge.post(
            "/v1/zoom/accounts/server-to-server",
            json={
                "zoom_account_id": "zoomSimAccount00000001",
                "client_id": "dev-client-id",
                "client_secret": "dev-client-secret",
                "role": "administrator",
            },
            headers=env.admin(),
        )
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "s2s"
        assert "client_secret" not in r.text
        bad = await bridge.post(
            "/v1/zoom/accounts/server-to-server",
            json={
                "zoom_account_id": "zoomSimAccount00000001",
                "client_id": "dev-client-id",
                "client_secret": "wrong",
                "role": "administrator",
            },
            headers=env.admin(),
        )
        assert bad.status_code == 422


async def test_r_zoom_1_deauthorization_removes_the_connection(env: Env) -> None:
    account_id = await env.connect("administrator", sim_user="leaver@zoom.test")
    async with env.sim() as sim:
        users = (await sim.get("/_sim/users")).json()
        zoom_user = next(u for u in users if u["email"] == "leaver@zoom.test")
        r = await sim.post("/_sim/deauthorize", json={"user_id": zoom_user["id"]})
        assert r.json()["webhook_status"] == 200

    async def gone() -> bool:
        return await _account(env, account_id) is None

    await env.wait(gone)


async def test_r_zoom_1_token_refreshed_before_it_expires(env: Env) -> None:
    account_id = await env.connect("administrator", sim_user="soon@zoom.test")
    factory = env.app.state.runtime.session_factory()
    async with factory() as session, session.begin():
        account = await session.get(ZoomAccount, uuid.UUID(account_id))
        assert account is not None
        old_access = account.access_token_enc
        account.expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    zoom = env.app.state.runtime.extras["zoom"]
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        r = await zoom.call(uuid.UUID(account_id), "GET", "/users/me")
        assert r.status_code == 200
        calls = (await sim.get("/_sim/calls")).json()
    # refreshed first, so Zoom never saw the old token fail
    assert [c["path"] for c in calls] == ["/oauth/token", "/v2/users/me"]
    assert all(c["status"] == 200 for c in calls)
    after = await _account(env, account_id)
    assert after is not None
    assert after.access_token_enc != old_access
    assert after.expires_at is not None
    assert after.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
