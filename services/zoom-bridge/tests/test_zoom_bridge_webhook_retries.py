"""R-ZOOM-4 with Zoom's webhook retries (issue 11 §2): a delivery the bridge failed, or answered
after Zoom's deadline, comes again with its first timestamp and signature. The simulator's retry
schedule is scaled down (5/20/60 minutes become 0.6/2.4/7.2 s) and its deadline is 1 s; the
timestamp window is the default, which covers the real schedule (85 minutes)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from te_shared import contracts as c
from te_shared.errors import ServiceUnavailable
from te_testing.clock import iso, minutes_after
from zoom_bridge.webhooks import service

if TYPE_CHECKING:
    from conftest import Env

SIM_SETTINGS = {"webhook_retry_scale": 0.002, "webhook_timeout_s": 1.0}

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


async def _day(env: Env, user_id: str, email: str) -> tuple[c.DayData, str]:
    if "_account" not in env.overrides:
        env.overrides["_account"] = await env.connect("administrator", sim_user="retry@zoom.test")
    day = env.day(str(env.overrides["_account"]))
    await env.publish(env.approved(day, user_id, email))
    await env.publish(day)
    return day, str((await env.created(day.day_id)).zoom_meeting_id)


async def _records(env: Env, day_id: uuid.UUID) -> list[dict[str, Any]]:
    return await env.outbox(c.AttendanceRecorded.routing_key, day_id)


async def _delivered(env: Env, delivery_id: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        async with env.sim() as sim:
            found = [d for d in (await sim.get("/_sim/webhooks")).json() if d["id"] == delivery_id]
        return found[0] if found and found[0]["state"] == "delivered" else None

    result: dict[str, Any] = await env.wait(done)
    return result


async def test_r_zoom_4_a_failed_delivery_comes_again_with_its_first_timestamp(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    day, zoom_id = await _day(env, "amy", "amy@example.com")
    real = service.store_many
    failed: list[str] = []

    async def down_once(session: Any, received: list[service.Received]) -> list[bool]:
        joins = [r for r in received if r.body.get("event") == "meeting.participant_joined"]
        if joins and not failed:
            failed.append("once")
            raise ServiceUnavailable("the database is away")
        return await real(session, received)

    monkeypatch.setattr(service, "store_many", down_once)
    async with env.sim() as sim:
        r = await sim.post(
            f"/_sim/meetings/{zoom_id}/join",
            json={"email": "amy@example.com", "at": iso(minutes_after(T0, 0))},
        )
    assert r.json()["webhook_status"] == 503
    delivery = await _delivered(env, r.json()["webhook"]["id"])
    assert [a["status"] for a in delivery["attempts"]] == [503, 200]
    assert delivery["attempts"][1]["response"] == {"status": "accepted"}
    (record,) = await env.wait(lambda: _records(env, day.day_id))
    assert record["user_id"] == "amy"


async def test_r_zoom_4_a_retry_of_a_delivery_answered_too_late_is_a_duplicate(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bridge stored the webhook but answered after Zoom's 3 seconds (here 1): Zoom retries,
    and the retry is absorbed as a duplicate; the stay counts once."""
    day, zoom_id = await _day(env, "bob", "bob@example.com")
    real = service.store_many
    slow: list[str] = []

    async def slow_once(session: Any, received: list[service.Received]) -> list[bool]:
        stored = await real(session, received)
        joins = [r for r in received if r.body.get("event") == "meeting.participant_joined"]
        if joins and not slow:
            slow.append("once")
            await asyncio.sleep(1.2)
        return stored

    monkeypatch.setattr(service, "store_many", slow_once)
    async with env.sim() as sim:
        r = await sim.post(
            f"/_sim/meetings/{zoom_id}/join",
            json={"email": "bob@example.com", "at": iso(minutes_after(T0, 0))},
        )
        assert r.json()["webhook_status"] is None  # no answer within the deadline
        await sim.post(
            f"/_sim/meetings/{zoom_id}/leave",
            json={"email": "bob@example.com", "at": iso(minutes_after(T0, 20))},
        )
    delivery = await _delivered(env, r.json()["webhook"]["id"])
    assert [a["response"] for a in delivery["attempts"]][-1] == {"status": "duplicate"}

    async def counted() -> list[dict[str, Any]] | None:
        rows = await _records(env, day.day_id)
        return rows if any(r["minutes"] == 20 for r in rows) else None

    rows = await env.wait(counted)
    # the stay counts once (its join's retry was a duplicate); how many figures were published
    # on the way (one per batch) depends on whether the worker took the join and the leave
    # together
    assert [r["minutes"] for r in rows][-1] == 20
    assert max(r["minutes"] for r in rows) == 20
    assert len(rows) <= 2


async def test_r_zoom_4_the_window_covers_zooms_last_retry_and_no_more(
    env: Env, zoom_payloads: ModuleType
) -> None:
    """A delivery 85 minutes old (Zoom's last retry of it) is accepted; the same notification
    again within the window is a duplicate; one older than the window is refused."""
    day, zoom_id = await _day(env, "cy", "cy@example.com")
    cy = zoom_payloads.member("cy@example.com", "Cy")
    body = zoom_payloads.participant_joined(
        zoom_id,
        "aW5zdGFuY2Ugb25lAAAAAA==",
        cy,
        user_id=zoom_payloads.user_id(0),
        at=iso(minutes_after(T0, 0)),
    )
    send = {"event": body["event"], "payload": body["payload"]}
    async with env.sim() as sim:
        last_retry = await sim.post(
            "/_sim/webhook/send", json={**send, "timestamp_offset_s": -85 * 60}
        )
        replayed = await sim.post(
            "/_sim/webhook/send", json={**send, "timestamp_offset_s": -60 * 60}
        )
        too_old = await sim.post(
            "/_sim/webhook/send", json={**send, "timestamp_offset_s": -(95 * 60 + 30)}
        )
    assert last_retry.json()["webhook"]["response"] == {"status": "accepted"}
    assert replayed.json()["webhook"]["response"] == {"status": "duplicate"}
    assert too_old.json()["webhook_status"] == 401
    (record,) = await env.wait(lambda: _records(env, day.day_id))
    assert record["user_id"] == "cy"
