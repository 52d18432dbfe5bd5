"""Outbound webhooks over the real processes (issue 13 §2): an admin registers an endpoint at
integrations pointing at a receiver in this test; catalog's and registration's messages reach
it as Standard Webhooks that the ``standardwebhooks`` library verifies, retried with the same
webhook-id, a 410 disables the endpoint, a rotated secret and the old one both verify during
the overlap, the deliveries log shows the attempts, and internal targets are refused."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from standardwebhooks import Webhook

from te_testing.api import ok
from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.system import System, active_event, offline_day
from te_testing.webhooks import ReceivedWebhook, WebhookReceiver

pytestmark = pytest.mark.e2e

ENDPOINTS = "/v1/webhooks/endpoints"


def of_type(receiver: WebhookReceiver, path: str, kind: str) -> list[ReceivedWebhook]:
    return [r for r in receiver.at(path) if json.loads(r.body)["type"] == kind]


async def test_a_sign_up_reaches_the_companys_receiver_as_a_signed_webhook(
    system: System, webhook_receiver: WebhookReceiver
) -> None:
    company = "hooks-one"
    admin = system.admin(company)
    assert system.integrations is not None
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.integrations, admin) as hooks,
        system.client(system.registration, system.user(company, "ann")) as ann,
    ):
        endpoint = await ok(
            await hooks.post(
                ENDPOINTS,
                json={
                    "url": webhook_receiver.url("/crm"),
                    "events": ["enrollment.changed", "day.changed"],
                    "description": "CRM",
                },
            ),
            201,
        )
        gone = await ok(
            await hooks.post(
                ENDPOINTS, json={"url": webhook_receiver.url("/gone"), "events": ["*"]}
            ),
            201,
        )
        webhook_receiver.answer("/gone", 410)
        # the receiver is down for the first delivery it gets
        webhook_receiver.answer("/crm", 500)

        event = await active_event(
            system,
            company,
            title="Webhooks 101",
            dated=True,
            requires_approval=False,
            sessions=[
                {
                    "name": "Morning",
                    "registration_end": iso(days_from_now(3)),
                    "days": [offline_day(days_from_now(5, 9), days_from_now(5, 11))],
                }
            ],
            access=["ann"],
        )
        [day] = event.days["Morning"]
        await eventually(
            lambda: ann.get(f"/v1/me/events/{event.id}"),
            lambda r: r.status_code == 200,
            what="the event visible to ann",
        )
        enrollment = await ok(await ann.post(f"/v1/sessions/{event.session_id}/enrollments"), 201)

        # the sign-up, as a signed enrollment.changed
        await eventually(
            lambda: _async(of_type(webhook_receiver, "/crm", "enrollment.changed")),
            lambda found: len(found) >= 1,
            what="enrollment.changed delivered",
        )
        [signed_up] = of_type(webhook_receiver, "/crm", "enrollment.changed")
        body = Webhook(endpoint["secret"]).verify(signed_up.body, signed_up.headers)
        assert body["data"]["enrollment_id"] == enrollment["id"]
        assert body["data"]["user_id"] == "ann"
        assert body["data"]["status"] == "approved"
        assert body["data"]["history_entry"]["to_status"] == "approved"

        # the day, scheduled then moved: day.changed with the new times; the first delivery
        # to /crm failed (500) and came again with the same webhook-id
        await ok(
            await cat.patch(
                f"/v1/days/{day['id']}",
                json={"start": iso(days_from_now(6, 9)), "end": iso(days_from_now(6, 12))},
            )
        )
        await eventually(
            lambda: _async(of_type(webhook_receiver, "/crm", "day.changed")),
            lambda found: (
                {json.loads(r.body)["data"]["action"] for r in found}
                >= {"scheduled", "rescheduled"}
            ),
            what="day.changed delivered twice",
        )
        days = of_type(webhook_receiver, "/crm", "day.changed")
        moved = next(r for r in days if json.loads(r.body)["data"]["action"] == "rescheduled")
        data = Webhook(endpoint["secret"]).verify(moved.body, moved.headers)["data"]
        assert data["day_id"] == day["id"]
        assert dt.datetime.fromisoformat(data["start"]) == days_from_now(6, 9)
        assert dt.datetime.fromisoformat(data["end"]) == days_from_now(6, 12)
        first = webhook_receiver.at("/crm")[0]
        retried = [r for r in webhook_receiver.at("/crm")[1:] if r.body == first.body]
        assert retried, "the failed delivery was not retried"
        assert retried[0].headers["webhook-id"] == first.headers["webhook-id"]
        Webhook(endpoint["secret"]).verify(retried[0].body, retried[0].headers)

        # the deliveries log
        log = await ok(await hooks.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries"))
        by_id = {d["webhook_id"]: d for d in log["items"]}
        failed_first = by_id[first.headers["webhook-id"]]
        assert [a["status_code"] for a in failed_first["attempts"]] == [500, 200]
        assert all(a["duration_ms"] >= 0 and a["attempted_at"] for a in failed_first["attempts"])
        assert {d["state"] for d in log["items"]} == {"delivered"}

        # the 410 disabled the other endpoint
        shown = await eventually(
            lambda: hooks.get(f"{ENDPOINTS}/{gone['id']}"),
            lambda r: r.json()["enabled"] is False,
            what="the 410 endpoint disabled",
        )
        assert "410" in shown.json()["disabled_reason"]
        # deliveries of other subjects may have been in flight beside the one answered 410;
        # after it, nothing more is sent there (checked at the end)
        gone_requests = len(webhook_receiver.at("/gone"))

        # rotation: during the overlap both secrets verify
        rotated = await ok(await hooks.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret"))
        await ok(await ann.post(f"/v1/enrollments/{enrollment['id']}/cancel"))
        await eventually(
            lambda: _async(of_type(webhook_receiver, "/crm", "enrollment.changed")),
            lambda found: len(found) >= 2,
            what="the cancellation delivered",
        )
        cancelled = of_type(webhook_receiver, "/crm", "enrollment.changed")[-1]
        for secret in (rotated["secret"], endpoint["secret"]):
            data = Webhook(secret).verify(cancelled.body, cancelled.headers)["data"]
            assert (data["previous_status"], data["status"]) == ("approved", "cancelled")
        assert len(webhook_receiver.at("/gone")) == gone_requests


async def _async(value: Any) -> Any:
    return value


async def test_internal_targets_are_refused(system: System) -> None:
    """The system allows loopback (the receivers of these tests) and nothing else internal."""
    assert system.integrations is not None
    async with system.client(system.integrations, system.admin("hooks-two")) as hooks:
        for url in (
            "http://10.0.0.5/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:192.168.0.1]/hook",
            "http://[fd00::1]/hook",
            "http://100.64.1.1/hook",
        ):
            r = await hooks.post(ENDPOINTS, json={"url": url, "events": ["*"]})
            assert r.status_code == 422, (url, r.text)
            assert r.json()["errors"][0]["field"] == "body.url"
        assert await ok(await hooks.get(ENDPOINTS)) == []


async def test_users_cannot_manage_endpoints(system: System) -> None:
    assert system.integrations is not None
    async with system.client(system.integrations, system.user("hooks-two", "bob")) as hooks:
        assert (await hooks.get(ENDPOINTS)).status_code == 403
        r = await hooks.post(ENDPOINTS, json={"url": "http://127.0.0.1:9/", "events": ["*"]})
        assert r.status_code == 403
