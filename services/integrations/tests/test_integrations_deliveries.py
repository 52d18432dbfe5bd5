"""Deliveries (issue 13 §2): Standard Webhooks signatures, retries on the (shrunk) schedule with
the same webhook-id, order per endpoint and subject, 410 disables, a slow receiver holds up no
one, rotation overlap, redirects, excerpts and company scoping. The receivers are HTTP servers
in this process; the schedule runs 500 times faster (WEBHOOK_RETRY_SCALE=0.002)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from integrations.delivery import schedule
from te_shared import contracts as c
from te_testing import messages
from te_testing.webhooks import ReceivedWebhook, WebhookReceiver

SCALE = 0.002


def company() -> str:
    return f"co-{uuid.uuid4().hex[:8]}"


def payload(received: ReceivedWebhook) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(received.body)
    return data


@contextlib.contextmanager
def short_retry_window(integ: Any) -> Iterator[None]:
    """A retry window of 5.4 s (nominal): the attempts fall at 0, 5 and 305 s (nominal, here
    500 times faster), so the third is the last."""
    window = integ.settings.webhook_retry_window_hours
    integ.settings.webhook_retry_window_hours = 0.0015
    try:
        yield
    finally:
        integ.settings.webhook_retry_window_hours = window


async def in_states(integ: Any, endpoint_id: str, co: str, *states: str) -> list[dict[str, Any]]:
    """The endpoint's deliveries (newest first) once they are in ``states``."""

    async def found() -> list[dict[str, Any]]:
        items = await integ.deliveries(endpoint_id, co)
        return items if [d["state"] for d in items] == list(states) else []

    items: list[dict[str, Any]] = await integ.wait(found)
    return items


def verify(secret: str, received: ReceivedWebhook) -> dict[str, Any]:
    """What the receiver does: ``standardwebhooks`` checks the headers and the signature."""
    verified: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return verified


async def test_an_enrollment_change_is_delivered_signed_per_standard_webhooks(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/signed"), ["enrollment.changed"], co)
    message = integ.enrollment(
        company=co,
        status=c.EnrollmentStatus.APPROVED,
        previous=c.EnrollmentStatus.PENDING,
        by="boss",
        reason="looks good",
    )
    await integ.apply(message, integ.day(company=co))  # the day: not subscribed
    [got] = await webhook_receiver.wait("/signed", 1)
    body = verify(endpoint["secret"], got)
    assert body["type"] == "enrollment.changed"
    assert body["timestamp"] == message.occurred_at.isoformat().replace("+00:00", "Z")
    data = body["data"]
    assert data["enrollment_id"] == str(message.enrollment_id)
    assert data["status"] == "approved"
    assert data["previous_status"] == "pending"
    assert data["history_entry"] == {
        "from_status": "pending",
        "to_status": "approved",
        "at": body["timestamp"],
        "by": "boss",
        "reason": "looks good",
    }
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):  # another secret does not verify
        Webhook("whsec_" + "A" * 44).verify(got.body, got.headers)

    async def logged() -> list[dict[str, Any]]:
        items = await integ.deliveries(endpoint["id"], co)
        return items if items and items[0]["state"] == "delivered" else []

    [delivery] = await integ.wait(logged)
    assert delivery["webhook_id"] == got.headers["webhook-id"]
    assert delivery["event_type"] == "enrollment.changed"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["duration_ms"] >= 0
    assert attempt["response_excerpt"] == "ok"
    await asyncio.sleep(0.3)
    assert len(webhook_receiver.received) == 1  # the day was not delivered


async def test_a_failing_receiver_gets_retries_on_the_schedule_with_the_same_webhook_id(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/flaky"), ["*"], co)
    webhook_receiver.answer("/flaky", 500, 503, 500)
    await integ.apply(integ.enrollment(company=co))
    attempts = await webhook_receiver.wait("/flaky", 4)
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    bodies = {a.body for a in attempts}
    assert len(bodies) == 1  # the same body every time, signed afresh with its timestamp
    for attempt in attempts:
        verify(endpoint["secret"], attempt)
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    for number, gap in enumerate(gaps, start=1):
        nominal = schedule.nominal_delay(number) * SCALE
        assert nominal * (1 - schedule.JITTER) - 0.01 <= gap <= nominal * 1.2 + 1.0, (number, gaps)

    async def delivered() -> list[dict[str, Any]]:
        items = await integ.deliveries(endpoint["id"], co)
        return items if items and items[0]["state"] == "delivered" else []

    [delivery] = await integ.wait(delivered)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 500, 200]
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3, 4]
    await asyncio.sleep(0.3)
    assert len(webhook_receiver.at("/flaky")) == 4


async def test_a_delivery_is_given_up_after_the_retry_window(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    """With a window of 5.4 s (nominal), the attempts fall at 0, 5 and 305 s (nominal): the
    third is past the window, so it is the last."""
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/down"), ["*"], co)
    webhook_receiver.answer("/down", *([500] * 10))
    with short_retry_window(integ):
        await integ.apply(integ.enrollment(company=co))
        [delivery] = await in_states(integ, endpoint["id"], co, "failed")
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500]
    assert delivery["next_attempt_at"] is None
    metrics = await integ.metrics()
    assert metrics[("webhook_deliveries_total", frozenset({("outcome", "given_up")}))] >= 1


async def test_a_410_disables_the_endpoint_and_discards_what_was_queued(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/gone"), ["*"], co)
    webhook_receiver.answer("/gone", 410)
    webhook_receiver.delay("/gone", 0.3)
    same = uuid.uuid4()
    await integ.apply(
        integ.enrollment(company=co, enrollment_id=same),
        integ.enrollment(company=co, enrollment_id=same),  # waits behind the first
    )

    async def disabled() -> dict[str, Any] | None:
        r = await integ.client.get(
            f"/v1/webhooks/endpoints/{endpoint['id']}", headers=integ.admin(co)
        )
        return r.json() if r.json()["enabled"] is False else None

    shown = await integ.wait(disabled)
    assert "410" in shown["disabled_reason"]
    assert shown["disabled_at"] is not None
    await integ.apply(integ.enrollment(company=co))  # nothing is queued for it any more
    await asyncio.sleep(0.5)
    assert len(webhook_receiver.at("/gone")) == 1
    states = sorted(d["state"] for d in await integ.deliveries(endpoint["id"], co))
    assert states == ["discarded", "discarded"]


async def test_deliveries_of_one_subject_go_out_in_order_others_do_not_wait(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    co = company()
    await integ.register(webhook_receiver.url("/ordered"), ["enrollment.changed"], co)
    first = uuid.uuid4()
    other = uuid.uuid4()

    def of(enrollment: uuid.UUID, version: int) -> Any:
        return lambda r: (
            payload(r)["data"]["enrollment_id"] == str(enrollment)
            and payload(r)["data"]["version"] == version
        )

    webhook_receiver.answer_matching(of(first, 1), 500, 500, 500)  # delivered on the 4th try
    # v1 and v2 arrive together, and v4 before v3: the versions order them, not arrival
    await integ.apply_together(
        integ.enrollment(company=co, enrollment_id=first, version=2),
        integ.enrollment(company=co, enrollment_id=first, version=1),
    )
    await webhook_receiver.wait("/ordered", 1)
    await integ.apply(integ.enrollment(company=co, enrollment_id=other, version=1))
    await integ.apply_together(
        integ.enrollment(company=co, enrollment_id=first, version=4),
        integ.enrollment(company=co, enrollment_id=first, version=3),
    )
    got = await webhook_receiver.wait("/ordered", 8)
    order = [(payload(r)["data"]["enrollment_id"], payload(r)["data"]["version"]) for r in got]
    mine = [version for enrollment, version in order if enrollment == str(first)]
    assert mine == [1, 1, 1, 1, 2, 3, 4], order
    # the other subject was delivered while the first waited for its retries
    assert order.index((str(other), 1)) < order.index((str(first), 2)), order


async def test_a_slow_receiver_does_not_hold_up_another(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    """WEBHOOK_TIMEOUT_SECONDS is 1 here: the slow receiver's attempts time out; the quick
    receiver's deliveries arrive while they are in flight."""
    co = company()
    slow = await integ.register(webhook_receiver.url("/slow"), ["*"], co)
    await integ.register(webhook_receiver.url("/quick"), ["*"], co)
    webhook_receiver.delay("/slow", 5)
    messages = [integ.enrollment(company=co) for _ in range(6)]
    await integ.apply(*messages)
    quick = await webhook_receiver.wait("/quick", 6, timeout=10)
    await webhook_receiver.wait("/slow", 4)  # several in flight, to their own endpoint
    slow_started = min(r.at for r in webhook_receiver.at("/slow"))
    # every quick delivery arrived before the first slow attempt could even time out
    assert max(r.at for r in quick) < slow_started + integ.settings.webhook_timeout_seconds

    async def timed_out() -> list[dict[str, Any]]:
        items = await integ.deliveries(slow["id"], co)
        return [a for d in items for a in d["attempts"] if a["error"] == "timeout"]

    attempts = await integ.wait(timed_out)
    assert all(a["status_code"] is None for a in attempts)
    assert all(900 <= a["duration_ms"] < 3000 for a in attempts), attempts
    webhook_receiver.delay("/slow", 0)

    async def delivered() -> bool:
        items = await integ.deliveries(slow["id"], co)
        return len(items) == 6 and all(d["state"] == "delivered" for d in items)

    await integ.wait(delivered, timeout=20)


async def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/rotating"), ["*"], co)
    path = f"/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret"
    rotated = (await integ.client.post(path, headers=integ.admin(co))).json()
    await integ.apply(integ.enrollment(company=co))
    [during] = await webhook_receiver.wait("/rotating", 1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verify(rotated["secret"], during)
    verify(endpoint["secret"], during)

    overlap = integ.settings.webhook_rotation_overlap_hours
    integ.settings.webhook_rotation_overlap_hours = 1 / 3600  # one second
    try:
        again = (await integ.client.post(path, headers=integ.admin(co))).json()
    finally:
        integ.settings.webhook_rotation_overlap_hours = overlap
    await asyncio.sleep(1.2)
    await integ.apply(integ.enrollment(company=co))
    _, after = await webhook_receiver.wait("/rotating", 2)
    verify(again["secret"], after)
    with pytest.raises(WebhookVerificationError):  # its overlap (one second) is over
        verify(rotated["secret"], after)
    verify(endpoint["secret"], after)  # rotated out first, for 24 hours: still signing
    assert len(after.headers["webhook-signature"].split(" ")) == 2


async def test_redirects_are_not_followed_and_answers_are_cut_short(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/moving"), ["*"], co)
    webhook_receiver.answer("/moving", 302, 500, body=b"x" * 5000)
    await integ.apply(integ.enrollment(company=co))

    async def delivered() -> list[dict[str, Any]]:
        items = await integ.deliveries(endpoint["id"], co)
        return items if items and items[0]["state"] == "delivered" else []

    [delivery] = await integ.wait(delivered)
    redirect, failure, success = delivery["attempts"]
    assert (redirect["status_code"], redirect["error"]) == (302, "redirect not followed")
    assert failure["status_code"] == 500
    assert len(failure["response_excerpt"].encode()) == 512
    assert success["status_code"] == 200
    assert not webhook_receiver.at("/moving/moved")


async def test_a_message_reaches_only_its_own_companys_endpoints(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    mine, theirs = company(), company()
    await integ.register(webhook_receiver.url("/mine"), ["*"], mine)
    await integ.apply(integ.enrollment(company=theirs), integ.day(company=theirs))
    await integ.apply(integ.day(company=mine))
    [got] = await webhook_receiver.wait("/mine", 1)
    assert payload(got)["type"] == "day.changed"
    await asyncio.sleep(0.3)
    assert len(webhook_receiver.received) == 1


async def test_messages_from_the_broker_are_delivered_once(
    integ: Any, webhook_receiver: WebhookReceiver, integ_rabbit: Any
) -> None:
    """Through RabbitMQ and the inbox: a redelivered message makes no second delivery."""
    co = company()
    await integ.register(webhook_receiver.url("/broker"), ["day.changed"], co)
    day = integ.day(company=co)
    await messages.publish(integ_rabbit, day, day)
    [got] = await webhook_receiver.wait("/broker", 1)
    data = payload(got)["data"]
    assert data["action"] == "scheduled"
    assert data["start"] == day.start.isoformat().replace("+00:00", "Z")
    await asyncio.sleep(0.5)
    assert len(webhook_receiver.at("/broker")) == 1


async def test_a_days_meeting_and_recordings_reach_an_lms_in_the_bridges_order(
    integ: Any, webhook_receiver: WebhookReceiver, integ_rabbit: Any
) -> None:
    """R-ZOOM-2 and R-ZOOM-7 for integrators: the join link, and the recordings for those who
    missed the day. A meeting deleted at Zoom and made again in one day version, consumed from
    two queues in the wrong order, is delivered in the bridge's order (its ``seq``)."""
    co = company()
    await integ.register(
        webhook_receiver.url("/lms"), ["meeting.changed", "recordings.changed"], co
    )
    day_id = uuid.uuid4()
    again = c.MeetingCreated(
        company_id=co,
        day_id=day_id,
        version=1,
        seq=3,
        zoom_meeting_id="2",
        join_url="https://z/j/2",
    )
    # the deletion's message made last: only its seq puts it first
    gone = c.MeetingDeleted(company_id=co, day_id=day_id, version=1, seq=2, zoom_meeting_id="1")
    await integ.apply_together(again, gone)
    files = [c.RecordingFile(file_type="MP4", kind="video", play_url="https://z/rec/2")]
    recordings = c.RecordingsChanged(
        company_id=co, day_id=day_id, zoom_meeting_id="2", version=1, recordings=files
    )
    await messages.publish(integ_rabbit, recordings, recordings)  # redelivered: once
    got = await webhook_receiver.wait("/lms", 3)
    meetings = [payload(r)["data"] for r in got if payload(r)["type"] == "meeting.changed"]
    assert [(m["status"], m["join_url"]) for m in meetings] == [
        ("deleted", None),
        ("created", "https://z/j/2"),
    ]
    (recorded,) = [payload(r)["data"] for r in got if payload(r)["type"] == "recordings.changed"]
    assert recorded["recordings"][0]["play_url"] == "https://z/rec/2"
    await asyncio.sleep(0.5)
    assert len(webhook_receiver.at("/lms")) == 3


async def test_metrics_show_outcomes_and_the_queue(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    co = company()
    await integ.register(webhook_receiver.url("/metrics"), ["*"], co)
    webhook_receiver.answer("/metrics", 500)
    await integ.apply(integ.enrollment(company=co))
    await webhook_receiver.wait("/metrics", 2)
    metrics = await integ.metrics()
    assert metrics[("webhook_deliveries_total", frozenset({("outcome", "delivered")}))] >= 1
    assert metrics[("webhook_deliveries_total", frozenset({("outcome", "retrying")}))] >= 1
    assert ("webhook_delivery_backlog", frozenset()) in metrics
    assert ("webhook_delivery_oldest_due_age_seconds", frozenset()) in metrics
    assert ("webhook_delivery_duration_seconds_count", frozenset()) in metrics


async def test_the_deliveries_log_pages_newest_first_and_filters_by_state(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/paged"), ["*"], co)
    messages = [integ.enrollment(company=co) for _ in range(5)]
    await integ.apply(*messages)
    await webhook_receiver.wait("/paged", 5)
    path = f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries"

    async def all_delivered() -> bool:
        items = await integ.deliveries(endpoint["id"], co)
        return len(items) == 5 and {i["state"] for i in items} == {"delivered"}

    await integ.wait(all_delivered)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await integ.client.get(path, params=params, headers=integ.admin(co))).json()
        seen += [i["message_id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert cursor is None
    assert seen == [str(m.message_id) for m in reversed(messages)]
    pending = await integ.client.get(path, params={"state": "pending"}, headers=integ.admin(co))
    assert pending.json() == {"items": [], "next_cursor": None}
    bad = await integ.client.get(path, params={"state": "lost"}, headers=integ.admin(co))
    assert bad.status_code == 422


async def test_a_secret_the_key_cannot_open_is_a_failed_attempt_not_a_send(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    """WEBHOOK_SECRET_KEY lost the key a secret was sealed with: nothing unsigned goes out,
    and the log says why."""
    from cryptography.fernet import Fernet
    from sqlalchemy import update

    from integrations.models import WebhookEndpoint

    co = company()
    endpoint = await integ.register(webhook_receiver.url("/sealed"), ["*"], co)
    factory = integ.app.state.runtime.session_factory()
    async with factory() as session, session.begin():
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(endpoint["id"]))
            .values(secret_enc=Fernet(Fernet.generate_key()).encrypt(b"whsec_x").decode())
        )
    await integ.apply(integ.enrollment(company=co))

    async def refused() -> list[dict[str, Any]]:
        items = await integ.deliveries(endpoint["id"], co)
        return [a for d in items for a in d["attempts"]]

    first, *_ = await integ.wait(refused)
    assert "cannot be decrypted" in first["error"]
    assert first["status_code"] is None
    assert not webhook_receiver.at("/sealed")


async def test_a_receiver_down_past_the_retry_window_recovers_what_it_missed(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    """An integrator's receiver was down longer than the schedule: its deliveries were given
    up. Recovering since a time queues them again with a schedule of their own, the same
    ``webhook-id`` and body; the log keeps numbering the attempts; what was delivered, or
    happened before ``since``, is not sent again."""
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/back"), ["*"], co)
    webhook_receiver.answer("/back", *([500] * 6))
    with short_retry_window(integ):
        await integ.apply(integ.enrollment(company=co), integ.enrollment(company=co))
        failed = await in_states(integ, endpoint["id"], co, "failed", "failed")
    first_ids = sorted(d["webhook_id"] for d in failed)
    assert sorted({r.headers["webhook-id"] for r in webhook_receiver.at("/back")}) == first_ids
    since = min(d["occurred_at"] for d in failed)
    url = f"/v1/webhooks/endpoints/{endpoint['id']}/recover"
    later = {"since": "2999-01-01T00:00:00Z"}
    assert (await integ.client.post(url, json=later, headers=integ.admin(co))).json() == {
        "recovered": 0
    }
    r = await integ.client.post(url, json={"since": since}, headers=integ.admin(co))
    assert r.status_code == 200, r.text
    assert r.json() == {"recovered": 2}

    items = await in_states(integ, endpoint["id"], co, "delivered", "delivered")
    assert sorted(d["webhook_id"] for d in items) == first_ids
    for item in items:
        assert [a["attempt"] for a in item["attempts"]] == [1, 2, 3, 4]
        assert [a["status_code"] for a in item["attempts"]] == [500, 500, 500, 200]
    assert len(webhook_receiver.at("/back")) == 8
    again = await integ.client.post(url, json={"since": since}, headers=integ.admin(co))
    assert again.json() == {"recovered": 0}  # nothing given up any more
    # another company's admin, and a user, reach nothing
    assert (
        await integ.client.post(url, json={"since": since}, headers=integ.admin())
    ).status_code == 404
    assert (
        await integ.client.post(url, json={"since": since}, headers=integ.user(co))
    ).status_code == 403
    bad = await integ.client.post(
        url, json={"since": since, "until": since}, headers=integ.admin(co)
    )
    assert bad.status_code == 422


async def test_an_endpoint_disabled_by_a_410_is_moved_enabled_and_recovered(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    """The integrator's receiver answered 410 (it moved): the admin points the endpoint at the
    new URL, enables it and recovers what was discarded; later disables it, which discards
    what is pending as a 410 does."""
    co = company()
    endpoint = await integ.register(webhook_receiver.url("/old"), ["*"], co)
    webhook_receiver.answer("/old", 410)
    enrollment = integ.enrollment(company=co)
    await integ.apply(enrollment)
    path = f"/v1/webhooks/endpoints/{endpoint['id']}"

    async def disabled() -> dict[str, Any] | None:
        r = await integ.client.get(path, headers=integ.admin(co))
        return r.json() if r.json()["enabled"] is False else None

    await integ.wait(disabled)
    recover = await integ.client.post(
        f"{path}/recover", json={"since": "2000-01-01T00:00:00Z"}, headers=integ.admin(co)
    )
    assert recover.status_code == 409
    assert recover.json()["code"] == "endpoint_disabled"
    refused: list[dict[str, Any]] = [
        {},
        {"url": None},
        {"enabled": None, "events": None},
        {"events": []},
        {"x": 1},
    ]
    for bad in refused:
        r = await integ.client.patch(path, json=bad, headers=integ.admin(co))
        assert r.status_code == 422, (bad, r.text)
    assert (
        await integ.client.patch(path, json={"enabled": True}, headers=integ.admin())
    ).status_code == 404
    assert (
        await integ.client.patch(path, json={"enabled": True}, headers=integ.user(co))
    ).status_code == 403

    change = {
        "url": webhook_receiver.url("/new"),
        "enabled": True,
        "events": ["enrollment.changed", "enrollment.changed"],
        "description": "HR system, new host",
    }
    r = await integ.client.patch(path, json=change, headers=integ.admin(co))
    assert r.status_code == 200, r.text
    shown = r.json()
    assert (shown["url"], shown["enabled"], shown["events"]) == (
        change["url"],
        True,
        ["enrollment.changed"],
    )
    assert (shown["disabled_reason"], shown["disabled_at"]) == (None, None)
    assert shown["description"] == "HR system, new host"
    assert "secret" not in shown
    r = await integ.client.post(
        f"{path}/recover", json={"since": "2000-01-01T00:00:00Z"}, headers=integ.admin(co)
    )
    assert r.json() == {"recovered": 1}
    [received] = await webhook_receiver.wait("/new")
    assert verify(endpoint["secret"], received)["data"]["enrollment_id"] == str(
        enrollment.enrollment_id
    )

    webhook_receiver.answer("/new", *([500] * 20))  # the next one stays pending, retried
    await integ.apply(integ.enrollment(company=co))
    await webhook_receiver.wait("/new", 2)
    r = await integ.client.patch(
        path, json={"enabled": False, "description": None}, headers=integ.admin(co)
    )
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["description"]) == (False, None)
    assert r.json()["disabled_reason"] == "disabled by an admin"
    states = [d["state"] for d in await integ.deliveries(endpoint["id"], co)]
    assert states == ["discarded", "delivered"]  # newest first
    await integ.apply(integ.enrollment(company=co))  # nothing is queued for it any more
    assert len(await integ.deliveries(endpoint["id"], co)) == 2


async def test_a_receiver_that_says_when_to_come_back_is_not_tried_sooner(
    integ: Any, webhook_receiver: WebhookReceiver
) -> None:
    """A receiver answering 429 or 503 with ``Retry-After: 1`` gets its next attempt a second
    later, not on the (shrunk) schedule's 10 ms; the attempt still counts."""
    co = company()
    await integ.register(webhook_receiver.url("/busy"), ["*"], co)
    webhook_receiver.answer("/busy", 429, 503)
    webhook_receiver.answer_headers("/busy", {"retry-after": "1"})
    await integ.apply(integ.enrollment(company=co))
    attempts = await webhook_receiver.wait("/busy", 3)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
