"""R-ZOOM-1/R-ZOOM-8: a connection whose refresh token Zoom refuses (``invalid_grant``, here
after Zoom rotated it and its answer was lost) needs reconnecting: shown to admins, announced
to catalog, its meetings failing with the reason at once; connecting the same Zoom user again
heals it and its failed days are tried again. Against the simulator over HTTP."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from te_shared import contracts as c
from zoom_bridge.zoom.client import ZoomInvalidGrant

if TYPE_CHECKING:
    from conftest import Env

EMAIL = "dead-token@zoom.test"


async def _token_calls(env: Env) -> int:
    async with env.sim() as sim:
        calls = (await sim.get("/_sim/calls")).json()
    return sum(1 for x in calls if x["method"] == "POST" and x["path"] == "/oauth/token")


async def _account_row(env: Env, account_id: str) -> dict[str, Any]:
    async with env.client() as bridge:
        accounts = (await bridge.get("/v1/zoom/accounts", headers=env.admin())).json()
    return dict(next(a for a in accounts if a["id"] == account_id))


async def _announced(env: Env, account_id: str) -> list[dict[str, Any]]:
    rows = await env.outbox(c.ZoomAccountChanged.routing_key)
    return [r for r in rows if r["account_id"] == account_id]


async def test_r_zoom_8_a_dead_refresh_token_needs_reconnect_and_reconnecting_heals_it(
    env: Env,
) -> None:
    account = await env.connect("administrator", sim_user=EMAIL)
    assert (await _account_row(env, account))["needs_reconnect"] is False
    async with env.sim() as sim:
        # the access token expires; the refresh rotates the refresh token at Zoom, then the
        # answer is lost: the bridge still holds the old, now dead, refresh token
        await sim.post("/_sim/tokens/expire", json={})
        await sim.post(
            "/_sim/faults",
            json={"drop_after_commit": True, "method": "POST", "path": "/oauth/token"},
        )
    first = env.day(account)
    await env.publish(first)
    failed = await env.wait(lambda: env.outbox(c.MeetingFailed.routing_key, first.day_id))
    assert "reconnect the Zoom account" in failed[0]["error"]
    assert "gave up" not in failed[0]["error"]  # failed at once, not after the retry budget
    row = await _account_row(env, account)
    assert row["needs_reconnect"] is True
    announced = await _announced(env, account)
    assert (announced[-1]["connected"], announced[-1]["needs_reconnect"]) == (True, True)
    async with env.client() as bridge:
        seen = (await bridge.get(f"/v1/days/{first.day_id}/meeting", headers=env.admin())).json()
    assert seen["status"] == "failed"
    assert "reconnect the Zoom account" in seen["error"]

    # another day on the account fails at once, without asking Zoom for a token again
    calls = await _token_calls(env)
    second = env.day(account)
    await env.publish(second)
    failed = await env.wait(lambda: env.outbox(c.MeetingFailed.routing_key, second.day_id))
    assert "reconnect the Zoom account" in failed[0]["error"]
    assert await _token_calls(env) == calls

    # the admin connects the same Zoom user again: the same connection, healed and announced,
    # and the days that failed meanwhile get their meetings
    again = await env.connect("administrator", sim_user=EMAIL)
    assert again == account
    assert (await _account_row(env, account))["needs_reconnect"] is False
    announced = await _announced(env, account)
    assert (announced[-1]["connected"], announced[-1]["needs_reconnect"]) == (True, False)
    for day in (first, second):
        made = await env.created(day.day_id)
        assert made.error is None
        assert await env.outbox(c.MeetingCreated.routing_key, day.day_id)


async def test_r_zoom_1_a_refresh_that_lost_a_race_does_not_mark_the_account(env: Env) -> None:
    """Two refreshes with the same refresh token (where rows are not locked, as on SQLite):
    Zoom refuses the second, but the first stored a new, good token. The refused one uses
    that token; the account is not marked."""
    account = await env.connect("administrator", sim_user="racer@zoom.test")
    zoom = env.app.state.runtime.extras["zoom"]
    refused = ZoomInvalidGrant("Zoom answered 400: Invalid Token!", 400)
    # the refresh token this call used is not the stored one any more: another call rotated it
    token = await zoom._refused(uuid.UUID(account), "the-refresh-token-before", refused)
    assert token == await zoom.access_token(uuid.UUID(account))
    assert (await _account_row(env, account))["needs_reconnect"] is False
    assert [a["needs_reconnect"] for a in await _announced(env, account)] == [False]
