"""Fault injection: 429 with Retry-After, 5xx, delays, matching, clearing."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
import uvicorn

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
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
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
            for _ in range(100):
                made = (await client.get("/_sim/meetings")).json()
                if made:
                    break
                await asyncio.sleep(0.05)
            assert [m["topic"] for m in made] == ["lost"]
    finally:
        server.should_exit = True
        await task
