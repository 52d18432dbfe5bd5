"""Fault injection: 429 (QPS, daily) with Retry-After, 5xx, Zoom error codes on one path,
delays, answers dropped after the work was done, matching, clearing."""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from te_testing.polling import eventually
from te_testing.servers import served
from zoom_sim.app import create_app
from zoom_sim.settings import Settings


async def test_429_with_retry_after_then_recovers(kit: Any) -> None:
    auth = await kit.auth()
    r = await kit.client.post("/_sim/faults", json={"status": 429, "count": 1, "retry_after": 2})
    assert r.status_code == 200
    first = await kit.client.get("/v2/users/me", headers=auth)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "2"
    assert first.json()["code"] == 429
    assert "rate limit" in first.json()["message"]
    assert (await kit.client.get("/v2/users/me", headers=auth)).status_code == 200


async def test_429_default_retry_after(kit: Any) -> None:
    auth = await kit.auth()
    await kit.client.post("/_sim/faults", json={"status": 429})
    r = await kit.client.get("/v2/users/me", headers=auth)
    assert r.headers["Retry-After"] == "1"


async def test_500_for_count_calls_and_no_meeting_created(kit: Any) -> None:
    auth = await kit.auth()
    await kit.client.post("/_sim/faults", json={"status": 500, "count": 2})
    for _ in range(2):
        r = await kit.client.post("/v2/users/me/meetings", headers=auth, json={"topic": "x"})
        assert r.status_code == 500
        assert r.json() == {"code": 500, "message": "Internal Server Error"}
    assert (await kit.client.get("/_sim/meetings")).json() == []
    await kit.create_meeting(auth)
    calls = (await kit.client.get("/_sim/calls")).json()
    assert [(c["status"], c["faulted"]) for c in calls[-3:]] == [
        (500, True),
        (500, True),
        (201, False),
    ]


async def test_delay(kit: Any) -> None:
    auth = await kit.auth()
    await kit.client.post("/_sim/faults", json={"delay_ms": 300})
    started = time.perf_counter()
    r = await kit.client.get("/v2/users/me", headers=auth)
    assert r.status_code == 200
    assert time.perf_counter() - started >= 0.29
    started = time.perf_counter()
    await kit.client.get("/v2/users/me", headers=auth)
    assert time.perf_counter() - started < 0.25


async def test_fault_on_token_endpoint(kit: Any) -> None:
    await kit.client.post("/_sim/faults", json={"status": 503})
    code = await kit.authorize_code()  # /oauth/authorize is not subject to faults
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": kit.REDIRECT_URI}
    r = await kit.client.post("/oauth/token", headers=kit.basic(), data=form)
    assert r.status_code == 503
    r = await kit.client.post("/oauth/token", headers=kit.basic(), data=form)
    assert r.status_code == 200  # the code was not consumed by the failed call


async def test_fault_matching_by_method_and_path(kit: Any) -> None:
    auth = await kit.auth()
    await kit.client.post(
        "/_sim/faults",
        json={"status": 429, "method": "POST", "path_prefix": "/v2/users/me/meetings"},
    )
    assert (await kit.client.get("/v2/users/me", headers=auth)).status_code == 200
    r = await kit.client.post("/v2/users/me/meetings", headers=auth, json={})
    assert r.status_code == 429


async def test_delete_faults(kit: Any) -> None:
    auth = await kit.auth()
    await kit.client.post("/_sim/faults", json={"status": 500, "count": 5})
    assert len((await kit.client.get("/_sim/faults")).json()["faults"]) == 1
    await kit.client.delete("/_sim/faults")
    assert (await kit.client.get("/v2/users/me", headers=auth)).status_code == 200


async def test_fault_needs_status_or_delay(kit: Any) -> None:
    r = await kit.client.post("/_sim/faults", json={"count": 1})
    assert r.status_code == 422


async def test_retry_after_as_an_http_date_or_zoom_daily_iso_time(kit: Any) -> None:
    """Zoom's daily-limit 429 says when to come back as an ISO 8601 time
    (``Retry-After: 2020-05-31T00:00:00Z``); an HTTP date is the other RFC 9110 form."""
    auth = await kit.auth()
    await kit.client.post(
        "/_sim/faults", json={"status": 429, "retry_after": 3600, "retry_after_format": "iso"}
    )
    await kit.client.post(
        "/_sim/faults",
        json={"status": 429, "retry_after": 120, "retry_after_format": "http-date"},
    )
    before = dt.datetime.now(dt.UTC)
    daily = await kit.client.get("/v2/users/me", headers=auth)
    assert daily.status_code == 429
    assert daily.headers["X-RateLimit-Type"] == "Daily-limit"
    assert "daily rate limit" in daily.json()["message"]
    value = daily.headers["Retry-After"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value)
    wait = (dt.datetime.fromisoformat(value.replace("Z", "+00:00")) - before).total_seconds()
    assert 3599 <= wait <= 3602
    dated = await kit.client.get("/v2/users/me", headers=auth)
    assert dated.headers["X-RateLimit-Type"] == "QPS"
    wait = (parsedate_to_datetime(dated.headers["Retry-After"]) - before).total_seconds()
    assert dated.headers["Retry-After"].endswith(" GMT")
    assert 119 <= wait <= 122
    assert (await kit.client.get("/v2/users/me", headers=auth)).status_code == 200


async def test_a_delayed_create_still_happens_when_the_caller_stops_waiting() -> None:
    """Like Zoom: the caller times out, but the meeting was created (its answer is lost)."""
    app = create_app(Settings(webhook_url="", account_id="acctLost"))
    async with (
        served(app, lifespan="on") as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        basic = base64.b64encode(b"dev-client-id:dev-client-secret").decode()
        token = await client.post(
            "/oauth/token",
            headers={"Authorization": f"Basic {basic}"},
            data={"grant_type": "account_credentials", "account_id": "acctLost"},
        )
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        await client.post(
            "/_sim/faults",
            json={"delay_ms": 800, "method": "POST", "path_prefix": "/v2/users"},
        )
        with pytest.raises(httpx.TimeoutException):
            await client.post(
                "/v2/users/me/meetings", headers=auth, json={"topic": "lost"}, timeout=0.2
            )
        made = await eventually(
            lambda: client.get("/_sim/meetings"),
            lambda r: bool(r.json()),
            timeout=5,
            interval=0.05,
            what="the meeting created",
        )
        assert [m["topic"] for m in made.json()] == ["lost"]


async def _ended_meeting(kit: Any, auth: dict[str, str]) -> int:
    m = await kit.create_meeting(auth)
    await kit.client.post(f"/_sim/meetings/{m['id']}/join", json={"email": "a@b.test"})
    await kit.client.post(f"/_sim/meetings/{m['id']}/end")
    mid: int = m["id"]
    return mid


async def test_a_path_scoped_fault_with_zoom_code_4711_hits_only_the_report(kit: Any) -> None:
    """Zoom answers a token without report:read:admin with 400 and code 4711."""
    auth = await kit.auth()
    mid = await _ended_meeting(kit, auth)
    r = await kit.client.post(
        "/_sim/faults", json={"status": 400, "zoom_code": 4711, "path": "/v2/report/", "count": 1}
    )
    assert r.json()["faults"][0]["path_prefix"] == "/v2/report/"
    assert (await kit.client.get("/v2/users/me", headers=auth)).status_code == 200
    assert (await kit.client.get(f"/v2/meetings/{mid}", headers=auth)).status_code == 200
    report = await kit.client.get(f"/v2/report/meetings/{mid}/participants", headers=auth)
    assert report.status_code == 400
    assert report.json() == {
        "code": 4711,
        "message": "Invalid access token, does not contain scopes:[report:read:admin].",
    }
    again = await kit.client.get(f"/v2/report/meetings/{mid}/participants", headers=auth)
    assert again.status_code == 200


async def test_the_free_plan_answer_can_come_with_status_200(kit: Any) -> None:
    """Zoom documents the free plan's report answer under 200: a body with no participants."""
    auth = await kit.auth()
    mid = await _ended_meeting(kit, auth)
    await kit.client.post(
        "/_sim/faults", json={"status": 200, "zoom_code": 200, "path_prefix": "/v2/report/"}
    )
    r = await kit.client.get(f"/v2/report/meetings/{mid}/participants", headers=auth)
    assert r.status_code == 200
    assert r.json() == {"code": 200, "message": "Only available for Paid or ZMP account: acctTEST."}


async def test_a_daily_limit_fault_says_the_next_utc_midnight(kit: Any) -> None:
    kit.app.state.sim.clock = lambda: dt.datetime(2026, 12, 2, 15, 30, 12, tzinfo=dt.UTC)
    auth = await kit.auth()
    await kit.client.post(
        "/_sim/faults", json={"status": 429, "rate_limit_type": "Daily-limit", "path": "/v2/"}
    )
    r = await kit.client.get("/v2/users/me", headers=auth)
    assert r.status_code == 429
    assert r.headers["X-RateLimit-Type"] == "Daily-limit"
    assert r.headers["Retry-After"] == "2026-12-03T00:00:00Z"
    assert r.json()["code"] == 429
    assert "daily rate limit" in r.json()["message"]
    # a per-second 429 may come with no Retry-After at all
    await kit.client.post(
        "/_sim/faults", json={"status": 429, "rate_limit_type": "QPS", "retry_after": None}
    )
    r = await kit.client.get("/v2/users/me", headers=auth)
    assert r.headers["X-RateLimit-Type"] == "QPS"
    assert "Retry-After" not in r.headers
    assert "per-second" in r.json()["message"]


async def test_drop_after_commit_rotates_the_refresh_token_then_answers_500(kit: Any) -> None:
    """Zoom rotated the refresh token but the answer with the new one was lost: the token the
    caller still holds is dead."""
    tokens = await kit.connect()
    await kit.client.post(
        "/_sim/faults", json={"drop_after_commit": True, "status": 500, "path": "/oauth/token"}
    )
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    lost = await kit.client.post("/oauth/token", headers=kit.basic(), data=form)
    assert lost.status_code == 500
    assert "refresh_token" not in lost.text
    again = await kit.client.post("/oauth/token", headers=kit.basic(), data=form)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    calls = (await kit.client.get("/_sim/calls")).json()
    assert [(c["status"], c["faulted"], c["dropped"]) for c in calls[-2:]] == [
        (500, True, True),
        (400, False, False),
    ]


async def test_drop_after_commit_closes_the_connection_after_the_work() -> None:
    app = create_app(Settings(webhook_url="", account_id="acctDrop"))
    async with (
        served(app, lifespan="on", log_level="critical") as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        basic = base64.b64encode(b"dev-client-id:dev-client-secret").decode()
        sim_user = "drop@acme.test"
        params = {
            "response_type": "code",
            "client_id": "dev-client-id",
            "redirect_uri": "http://bridge.test/cb",
            "sim_user": sim_user,
        }
        r = await client.get("/oauth/authorize", params=params)
        code = r.headers["location"].split("code=")[1]
        token = await client.post(
            "/oauth/token",
            headers={"Authorization": f"Basic {basic}"},
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://bridge.test/cb",
            },
        )
        refresh = token.json()["refresh_token"]
        await client.post("/_sim/faults", json={"drop_after_commit": True, "path": "/oauth/token"})
        form = {"grant_type": "refresh_token", "refresh_token": refresh}
        headers = {"Authorization": f"Basic {basic}"}
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/oauth/token", headers=headers, data=form)
        dead = await client.post("/oauth/token", headers=headers, data=form)
        assert dead.status_code == 400
        assert dead.json()["error"] == "invalid_grant"
        # the same for a create: the meeting exists, the caller never heard of it
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        await client.post(
            "/_sim/faults",
            json={"drop_after_commit": True, "method": "POST", "path": "/v2/users/"},
        )
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/v2/users/me/meetings", headers=auth, json={"topic": "lost"})
        made = (await client.get("/_sim/meetings")).json()
        assert [m["topic"] for m in made] == ["lost"]
        calls = (await client.get("/_sim/calls")).json()
        assert [(c["status"], c["dropped"]) for c in calls if c["dropped"]] == [
            (200, True),
            (201, True),
        ]
