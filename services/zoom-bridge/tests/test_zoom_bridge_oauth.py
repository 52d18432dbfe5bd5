"""R-ZOOM-1: OAuth connection, signed state, encrypted tokens, refresh, deauthorization."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from zoom_bridge.models import WebhookEvent, ZoomAccount
from zoom_bridge.settings import DEV_TOKEN_KEY
from zoom_bridge.zoom.client import one_job, read_with_job

if TYPE_CHECKING:
    from conftest import Env


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


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
        assert set(listed) == {
            "id",
            "role",
            "kind",
            "zoom_user_email",
            "connected_at",
            "needs_reconnect",
        }
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
        assert r.json()["errors"][0]["code"] == "return_origin_not_allowed"
        # control characters, padding, and the two starts browsers read as another host
        for odd in (
            "/\x00x",
            "/a\r\nSet-Cookie: x=1",
            " /padded",
            "//evil.example",
            "/\\evil.example",
        ):
            r = await bridge.get(
                "/v1/zoom/oauth/authorize",
                params={"role": "participant", "return_to": odd},
                headers=env.admin(),
            )
            assert r.status_code == 422, odd


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
    old_refresh = zoom.cipher.decrypt(before.refresh_token_enc)
    assert zoom.cipher.decrypt(after.refresh_token_enc) != old_refresh
    # rotation: the refresh token used is dead at Zoom now
    async with env.sim() as sim:
        r = await sim.post(
            "/oauth/token",
            headers={"Authorization": _basic("dev-client-id", "dev-client-secret")},
            data={"grant_type": "refresh_token", "refresh_token": old_refresh},
        )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


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


async def test_r_zoom_1_declined_authorization_goes_back_to_the_admin_panel(env: Env) -> None:
    """Zoom redirects with error=access_denied and no code when the admin declines: back to
    return_to with zoom_error (the state is still checked and used up)."""
    async with env.client() as bridge, env.sim() as sim:
        listed = len((await bridge.get("/v1/zoom/accounts", headers=env.admin())).json())
        r = await bridge.get(
            "/v1/zoom/oauth/authorize",
            params={"role": "administrator", "return_to": "/admin/zoom?tab=accounts"},
            headers=env.admin(),
        )
        back = await sim.get(r.headers["location"] + "&sim_deny=1")
        callback = back.headers["location"]
        assert env.query(callback)["error"] == "access_denied"
        done = await bridge.get(callback)
        assert done.status_code == 302
        assert done.headers["location"] == "/admin/zoom?tab=accounts&zoom_error=access_denied"
        replay = await bridge.get(callback)
        assert replay.status_code == 400  # the state was used up
        assert replay.json()["code"] == "bad_state"
        forged = await bridge.get(
            "/v1/zoom/oauth/callback", params={"error": "access_denied", "state": "forged"}
        )
        assert forged.status_code == 400
        state = env.query(callback)["state"]
        neither = await bridge.get("/v1/zoom/oauth/callback", params={"state": state})
        assert neither.status_code == 422
        assert len((await bridge.get("/v1/zoom/accounts", headers=env.admin())).json()) == listed


async def test_r_zoom_1_no_token_or_secret_is_ever_logged(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Over a start-up, an OAuth connect, a refresh (with rotation) and a Server-to-Server
    connect with its webhook secret token, the logs name what happened but carry no token,
    code or secret. The start-up warns that the dev token-encryption key is in use."""

    def capture() -> None:  # building the app configured logging afresh: capture again
        logging.getLogger().addHandler(caplog.handler)
        caplog.set_level(logging.DEBUG)

    await env.stop_bridge()
    await env.start_bridge(before_serve=capture)
    zoom = env.app.state.runtime.extras["zoom"]
    forbidden = {
        "dev-client-secret",
        env.settings().zoom_webhook_secret.get_secret_value(),
        DEV_TOKEN_KEY,
        "s2s-logs-client-secret",
        "s2s-logs-webhook-secret",
    }
    async with env.client() as bridge, env.sim() as sim:
        r = await bridge.get(
            "/v1/zoom/oauth/authorize",
            params={"role": "administrator", "return_to": "/admin/zoom"},
            headers=env.admin(),
        )
        back = await sim.get(r.headers["location"] + "&sim_user=logs@zoom.test")
        forbidden.add(env.query(back.headers["location"])["code"])
        assert (await bridge.get(back.headers["location"])).status_code == 302
        accounts = (await bridge.get("/v1/zoom/accounts", headers=env.admin())).json()
        account_id = next(a["id"] for a in accounts if a["zoom_user_email"] == "logs@zoom.test")
        before = await _account(env, account_id)
        assert before is not None
        forbidden |= {
            zoom.cipher.decrypt(before.access_token_enc),
            zoom.cipher.decrypt(before.refresh_token_enc),
        }
        await sim.post("/_sim/tokens/expire", json={"include_refresh": False})
        assert (await zoom.call(before.id, "GET", "/users/me")).status_code == 200
        after = await _account(env, account_id)
        assert after is not None
        forbidden |= {
            zoom.cipher.decrypt(after.access_token_enc),
            zoom.cipher.decrypt(after.refresh_token_enc),
        }
        await sim.post(
            "/_sim/s2s-apps",
            json={
                "client_id": "s2s-logs-id",
                "client_secret": "s2s-logs-client-secret",
                "account_id": "s2sAcctLogs",
                "webhook_secret": "s2s-logs-webhook-secret",
            },
        )
        s2s = await bridge.post(
            "/v1/zoom/accounts/server-to-server",
            json={
                "zoom_account_id": "s2sAcctLogs",
                "client_id": "s2s-logs-id",
                "client_secret": "s2s-logs-client-secret",
                "role": "administrator",
                "webhook_secret_token": "s2s-logs-webhook-secret",
            },
            headers=env.admin(),
        )
        assert s2s.status_code == 201, s2s.text
        s2s_row = await _account(env, s2s.json()["id"])
        assert s2s_row is not None
        forbidden.add(zoom.cipher.decrypt(s2s_row.access_token_enc))
    text = caplog.text
    for event in (
        "token_encryption_key_is_the_dev_default",
        "zoom_account_connected",
        "zoom_token_refreshed",
    ):
        assert event in text  # the capture saw the flow
    leaked = sum(1 for value in forbidden if value in text)  # a count: never print them
    assert leaked == 0, f"{leaked} secret value(s) appear in the logs"


async def _other_user_of(env: Env, email: str, other_email: str) -> tuple[str, str]:
    """A second user (``other_email``) in the Zoom account of ``email``'s user: their ids."""
    async with env.sim() as sim:
        users = (await sim.get("/_sim/users")).json()
        owner = next(u for u in users if u["email"] == email)
        r = await sim.post(
            "/_sim/users", json={"email": other_email, "account_id": owner["account_id"]}
        )
        assert r.status_code < 300, r.text
        users = (await sim.get("/_sim/users")).json()
    other = next(u for u in users if u["email"] == other_email)
    assert other["account_id"] == owner["account_id"]
    return str(owner["id"]), str(other["id"])


async def test_r_zoom_1_another_admin_removing_an_account_level_app_removes_the_connection(
    env: Env,
) -> None:
    """The app was installed for the whole Zoom account (account-level scopes, ``:admin``):
    another admin of that account removes it, and Zoom's notice names that admin, not the user
    who connected. The connection goes anyway (its grant is gone), announced to catalog."""
    account_id = await env.connect("administrator", sim_user="installer@zoom.test")
    account = await _account(env, account_id)
    assert account is not None
    assert account.scopes is not None
    assert ":admin" in account.scopes
    _, other = await _other_user_of(env, "installer@zoom.test", "second-admin@zoom.test")
    async with env.sim() as sim:
        r = await sim.post("/_sim/deauthorize", json={"user_id": other})
        assert r.json()["webhook_status"] == 200

    async def gone() -> bool:
        return await _account(env, account_id) is None

    await env.wait(gone)
    announced = [
        p for p in await env.outbox("zoom-bridge.account.changed") if p["account_id"] == account_id
    ]
    assert announced[-1]["connected"] is False


async def test_r_zoom_1_another_users_notice_leaves_a_user_level_connection(env: Env) -> None:
    """A user-level grant (no account-level scopes) is only its user's: another user of the
    same Zoom account removing the app leaves it; its own user's notice removes it."""
    account_id = await env.connect("administrator", sim_user="own-grant@zoom.test")
    factory = env.app.state.runtime.session_factory()
    async with factory() as session, session.begin():
        row = await session.get(ZoomAccount, uuid.UUID(account_id))
        assert row is not None
        row.scopes = "meeting:read meeting:write user:read"
    owner, other = await _other_user_of(env, "own-grant@zoom.test", "colleague@zoom.test")
    async with env.sim() as sim:
        r = await sim.post("/_sim/deauthorize", json={"user_id": other})
        assert r.json()["webhook_status"] == 200

    async def processed() -> bool:
        async with factory() as session:
            rows = (await session.execute(select(WebhookEvent))).scalars().all()
        mine = [w for w in rows if (w.body.get("payload") or {}).get("user_id") == other]
        return bool(mine) and all(w.processed for w in mine)

    await env.wait(processed)
    assert await _account(env, account_id) is not None
    async with env.sim() as sim:
        r = await sim.post("/_sim/deauthorize", json={"user_id": owner})
        assert r.json()["webhook_status"] == 200

    async def gone() -> bool:
        return await _account(env, account_id) is None

    await env.wait(gone)


class _AccountReads:
    """Counts the statements that read ``zoom_accounts`` on the bridge's engine."""

    def __init__(self, env: Env) -> None:
        self.engine = env.app.state.runtime.engine.sync_engine
        self.count = 0

    def _seen(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "FROM zoom_accounts" in statement:
            self.count += 1

    def __enter__(self) -> _AccountReads:
        sa_event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        sa_event.remove(self.engine, "before_cursor_execute", self._seen)


async def test_r_zoom_1_a_job_calls_zoom_with_the_token_read_with_its_snapshot(env: Env) -> None:
    account_id = uuid.UUID(await env.connect("administrator", sim_user="job@zoom.test"))
    account = await _account(env, str(account_id))
    assert account is not None
    zoom = env.app.state.runtime.extras["zoom"]
    with _AccountReads(env) as reads:
        with one_job():
            read_with_job(account)  # as the job's snapshot does
            assert (await zoom.call(account_id, "GET", "/users/me")).status_code == 200
            assert (await zoom.call(account_id, "GET", "/users/me")).status_code == 200
        assert reads.count == 0
        # outside a job every call reads the account: a token is never kept between jobs
        assert (await zoom.call(account_id, "GET", "/users/me")).status_code == 200
        assert reads.count == 1
        read_with_job(account)  # no job: nothing is kept
        assert (await zoom.call(account_id, "GET", "/users/me")).status_code == 200
        assert reads.count == 2


async def test_r_zoom_1_a_token_refreshed_in_a_job_serves_the_rest_of_the_job(env: Env) -> None:
    account_id = uuid.UUID(await env.connect("administrator", sim_user="revoked@zoom.test"))
    account = await _account(env, str(account_id))
    assert account is not None
    zoom = env.app.state.runtime.extras["zoom"]
    async with env.sim() as sim:
        await sim.post("/_sim/tokens/expire", json={"include_refresh": False})
        await sim.delete("/_sim/calls")
        with one_job():
            read_with_job(account)  # read before Zoom revoked the token
            assert (await zoom.call(account_id, "GET", "/users/me")).status_code == 200
            assert (await zoom.call(account_id, "GET", "/users/me")).status_code == 200
        calls = [(c["path"], c["status"]) for c in (await sim.get("/_sim/calls")).json()]
    # one 401 and one refresh: the second call used the refreshed token, not the job's first
    assert calls == [
        ("/v2/users/me", 401),
        ("/oauth/token", 200),
        ("/v2/users/me", 200),
        ("/v2/users/me", 200),
    ]


async def test_r_zoom_1_a_token_read_with_a_job_that_is_about_to_expire_is_refreshed(
    env: Env,
) -> None:
    account_id = uuid.UUID(await env.connect("administrator", sim_user="expiring@zoom.test"))
    factory = env.app.state.runtime.session_factory()
    async with factory() as session, session.begin():
        stored = await session.get(ZoomAccount, account_id)
        assert stored is not None
        stored.expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    account = await _account(env, str(account_id))
    assert account is not None
    zoom = env.app.state.runtime.extras["zoom"]
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        with one_job():
            read_with_job(account)
            assert (await zoom.call(account_id, "GET", "/users/me")).status_code == 200
        calls = [(c["path"], c["status"]) for c in (await sim.get("/_sim/calls")).json()]
    assert calls == [("/oauth/token", 200), ("/v2/users/me", 200)]
