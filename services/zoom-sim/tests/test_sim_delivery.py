"""Webhook delivery as Zoom does it: a 3-second answer deadline, retries after 5, 20 and 60
minutes with the original timestamp and signature, deliveries in the background (so not
necessarily in order), and the delivery log with every attempt."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from te_testing.polling import eventually
from zoom_sim.settings import Settings
from zoom_sim.webhooks import RETRY_DELAYS_S

#: Zoom's 5/20/60 minutes become 0.03/0.12/0.36 seconds
SCALE = 0.0001


async def _log(kit: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await kit.client.get("/_sim/webhooks")).json()
    return data


async def _settled(kit: Any, delivery_id: int, timeout: float = 5.0) -> dict[str, Any]:
    """The delivery once it is delivered or has failed for good."""

    async def delivery() -> dict[str, Any]:
        return next(d for d in await _log(kit) if d["id"] == delivery_id)

    return await eventually(
        delivery,
        lambda found: found["state"] in ("delivered", "failed"),
        timeout=timeout,
        interval=0.02,
        what=f"delivery {delivery_id} settled",
    )


def test_zoom_defaults() -> None:
    assert Settings().webhook_timeout_s == 3.0
    assert Settings().webhook_retry_scale == 1.0
    assert RETRY_DELAYS_S == (300, 1200, 3600)


async def test_an_answer_after_the_deadline_is_a_failed_delivery(
    new_sim: Any, receiver: Any
) -> None:
    receiver.delay_s = 0.3
    async with new_sim(receiver, webhook_timeout_s=0.1) as kit:
        r = await kit.client.post("/_sim/webhook/send", json={"event": "meeting.ended"})
        body = r.json()
        assert body["webhook_status"] is None
        assert "deadline" in body["webhook"]["error"]
        assert body["webhook"]["state"] == "retrying"
        assert body["webhook"]["next_attempt_at"]
        # the receiver got it all the same (it was just slow): a retry will be a duplicate
        await asyncio.sleep(0.3)
        assert receiver.events() == ["meeting.ended"]


async def test_failed_delivery_is_retried_with_the_original_timestamp_and_signature(
    new_sim: Any, receiver: Any
) -> None:
    receiver.script = [500, None]  # a 500, then connection refused, then 200
    async with new_sim(receiver, webhook_retry_scale=SCALE) as kit:
        r = await kit.client.post("/_sim/webhook/send", json={"event": "meeting.ended"})
        first = r.json()
        assert first["webhook_status"] == 500  # the first attempt, as before
        assert first["webhook"]["state"] == "retrying"
        done = await _settled(kit, first["webhook"]["id"])
    assert done["state"] == "delivered"
    assert [a["status"] for a in done["attempts"]] == [500, None, 200]
    assert "ConnectError" in done["attempts"][1]["error"]
    assert done["status"] == 200  # the latest attempt
    # three POSTs reached the receiver (the refused one did not): same bytes, same headers
    assert len(receiver.received) == 2
    a, b = receiver.received
    assert a.raw == b.raw
    assert a.headers["x-zm-request-timestamp"] == b.headers["x-zm-request-timestamp"]
    assert a.headers["x-zm-signature"] == b.headers["x-zm-signature"]
    assert b.signature_ok
    assert done["headers"]["x-zm-request-timestamp"] == a.headers["x-zm-request-timestamp"]
    # the waits follow Zoom's schedule (scaled): 5 minutes, then 20 minutes
    times = [dt.datetime.fromisoformat(x["at"]) for x in done["attempts"]]
    assert (times[1] - times[0]).total_seconds() >= 300 * SCALE
    assert (times[2] - times[1]).total_seconds() >= 1200 * SCALE


async def test_after_three_failed_retries_zoom_gives_up(new_sim: Any, receiver: Any) -> None:
    receiver.status = 503
    async with new_sim(receiver, webhook_retry_scale=SCALE) as kit:
        r = await kit.client.post("/_sim/webhook/send", json={"event": "meeting.ended"})
        done = await _settled(kit, r.json()["webhook"]["id"])
    assert done["state"] == "failed"
    assert [a["number"] for a in done["attempts"]] == [1, 2, 3, 4]
    assert len(receiver.received) == 4


async def test_url_validation_is_not_retried(new_sim: Any, receiver: Any) -> None:
    receiver.secret = "not-the-sims"
    async with new_sim(receiver, webhook_retry_scale=SCALE) as kit:
        r = await kit.client.post("/_sim/webhook/url-validation", json={})
        assert r.json()["valid"] is False
        await asyncio.sleep(0.1)
        (only,) = await _log(kit)
    assert only["state"] == "failed"
    assert len(only["attempts"]) == 1


async def test_a_held_back_delivery_arrives_after_later_ones(kit: Any) -> None:
    r = await kit.client.post(
        "/_sim/webhook/send", json={"event": "meeting.participant_joined", "delay_ms": 150}
    )
    held = r.json()
    assert held["webhook_status"] is None
    assert held["webhook"]["state"] == "scheduled"
    r = await kit.client.post("/_sim/webhook/send", json={"event": "meeting.participant_left"})
    assert r.json()["webhook_status"] == 200
    await _settled(kit, held["webhook"]["id"])
    assert kit.receiver.events() == ["meeting.participant_left", "meeting.participant_joined"]
    # the log keeps the order in which Zoom produced them
    assert [d["event"] for d in await _log(kit)] == [
        "meeting.participant_joined",
        "meeting.participant_left",
    ]


async def test_reset_cancels_pending_retries(new_sim: Any, receiver: Any) -> None:
    receiver.status = 500
    async with new_sim(receiver, webhook_retry_scale=1.0) as kit:
        r = await kit.client.post("/_sim/webhook/send", json={"event": "meeting.ended"})
        assert r.json()["webhook"]["state"] == "retrying"
        await kit.client.post("/_sim/reset")
        assert await _log(kit) == []
    assert len(receiver.received) == 1
