"""Another company's ids, against the real processes (R-ERR-1: 404 for another company's resource;
SPEC 1: nothing crosses companies).

Company A owns real resources: an event with a session, an offline day and a zoom day (its
meeting created through the simulator on A's Zoom account, connected through OAuth), and a user's
enrollment. Company B's admin and B's user, whose user ids are the very ids A's admin and A's
user have, call every endpoint that takes an id, with A's ids: each answers exactly what it
answers for an id that exists nowhere (404; 403 for the user role on admin endpoints), carries none
of A's data, and A's resources read the same afterwards. The endpoints with ids are discovered
from each process's OpenAPI, so a new one fails this test until it is listed here.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from te_testing.api import ok
from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.processes import ServiceProcess
from te_testing.system import (
    System,
    active_event,
    create_event,
    offline_day,
    zoom_company,
    zoom_day,
)

pytestmark = pytest.mark.e2e

A, B = "xco-owner", "xco-intruder"
SECRET = "Owner-only secret title"
SESSION_NAME = "Owner run"
USER = "alice"  # enrolled in A; B's user has the same id
ADMIN = "admin-1"  # A's admin and B's admin share it too


def integrations(system: System) -> ServiceProcess:
    assert system.integrations is not None, "the system tests start integrations"
    return system.integrations


@dataclass(frozen=True)
class Ids:
    event_id: str
    session_id: str
    offline_day_id: str
    zoom_day_id: str
    enrollment_id: str
    account_id: str
    endpoint_id: str

    @classmethod
    def nowhere(cls) -> Ids:
        return cls(*(str(uuid.uuid4()) for _ in range(7)))


@dataclass(frozen=True)
class Call:
    service: str  # an attribute of System: catalog, registration, bridge, integrations
    method: str
    template: str
    admin_only: bool
    body: Callable[[Ids], Any] | None = None
    files: dict[str, Any] | None = None
    #: which of the two days fills ``{day_id}``
    day: str = "offline"

    def path(self, ids: Ids) -> str:
        day = ids.zoom_day_id if self.day == "zoom" else ids.offline_day_id
        return (
            self.template.replace("{event_id}", ids.event_id)
            .replace("{session_id}", ids.session_id)
            .replace("{day_id}", day)
            .replace("{enrollment_id}", ids.enrollment_id)
            .replace("{account_id}", ids.account_id)
            .replace("{endpoint_id}", ids.endpoint_id)
            .replace("{participant_id}", "p-0000000000000000")
        )


def _offline_day(_: Ids) -> dict[str, Any]:
    return offline_day(days_from_now(20, 9), days_from_now(20, 11), "Intruder hall")


IMPORT = {"file": ("intruders.csv", f"user_id,session\nintruder,{SESSION_NAME}\n", "text/csv")}

#: Every endpoint with an id in its path; bodies are valid, so only the id can refuse them.
#: The state-changing ones come last, so that a wrongly accepted DELETE cannot hide the others.
CALLS: list[Call] = [
    Call("catalog", "GET", "/v1/events/{event_id}", True),
    Call("catalog", "GET", "/v1/sessions/{session_id}", True),
    Call("catalog", "GET", "/v1/days/{day_id}", True),
    Call("catalog", "GET", "/v1/days/{day_id}", True, day="zoom"),
    Call("registration", "GET", "/v1/events/{event_id}/enrollments", True),
    Call("registration", "GET", "/v1/sessions/{session_id}/seats", False),
    Call("registration", "GET", "/v1/me/events/{event_id}", False),
    Call("bridge", "GET", "/v1/days/{day_id}/meeting", False, day="zoom"),
    Call("bridge", "GET", "/v1/days/{day_id}/participants", True, day="zoom"),
    Call("integrations", "GET", "/v1/webhooks/endpoints/{endpoint_id}", True),
    Call("integrations", "GET", "/v1/webhooks/endpoints/{endpoint_id}/deliveries", True),
    Call("catalog", "PATCH", "/v1/events/{event_id}", True, lambda _: {"title": "Hijacked"}),
    Call(
        "catalog",
        "POST",
        "/v1/events/{event_id}/sessions",
        True,
        lambda _: {"name": "Intruder run", "registration_end": iso(days_from_now(3))},
    ),
    Call("catalog", "PATCH", "/v1/sessions/{session_id}", True, lambda _: {"name": "Hijacked"}),
    Call("catalog", "POST", "/v1/sessions/{session_id}/days", True, _offline_day),
    Call("catalog", "PATCH", "/v1/days/{day_id}", True, lambda _: {"address": "Hijacked"}),
    Call(
        "catalog",
        "PATCH",
        "/v1/days/{day_id}",
        True,
        lambda _: {"start": iso(days_from_now(30, 9)), "end": iso(days_from_now(30, 10))},
        day="zoom",
    ),
    Call(
        "registration",
        "PUT",
        "/v1/events/{event_id}/access",
        True,
        lambda _: {"user_ids": ["intruder"]},
    ),
    Call(
        "registration",
        "POST",
        "/v1/events/{event_id}/enrollments",
        True,
        lambda ids: {
            "user_id": "intruder",
            "email": "intruder@x.io",
            "session_id": ids.session_id,
        },
    ),
    Call("registration", "POST", "/v1/events/{event_id}/enrollments/import", True, files=IMPORT),
    Call("registration", "POST", "/v1/sessions/{session_id}/enrollments", False),
    Call("registration", "POST", "/v1/enrollments/{enrollment_id}/confirm-participation", False),
    Call(
        "registration",
        "PATCH",
        "/v1/enrollments/{enrollment_id}",
        True,
        lambda _: {"status": "denied", "reason": "intruder"},
    ),
    Call("registration", "POST", "/v1/enrollments/{enrollment_id}/cancel", False),
    Call("bridge", "POST", "/v1/days/{day_id}/meeting/retry", True, day="zoom"),
    Call(
        "bridge",
        "POST",
        "/v1/days/{day_id}/participants/{participant_id}/match",
        True,
        lambda _: {"user_id": USER},
        day="zoom",
    ),
    Call(
        "bridge",
        "PATCH",
        "/v1/zoom/accounts/{account_id}",
        True,
        lambda _: {"role": "participant"},
    ),
    Call(
        "integrations",
        "PATCH",
        "/v1/webhooks/endpoints/{endpoint_id}",
        True,
        lambda _: {"enabled": False, "description": "taken over"},
    ),
    Call(
        "integrations",
        "POST",
        "/v1/webhooks/endpoints/{endpoint_id}/recover",
        True,
        lambda _: {"since": "2000-01-01T00:00:00Z"},
    ),
    Call("integrations", "POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", True),
    Call("integrations", "DELETE", "/v1/webhooks/endpoints/{endpoint_id}", True),
    Call("catalog", "DELETE", "/v1/days/{day_id}", True),
    Call("catalog", "DELETE", "/v1/days/{day_id}", True, day="zoom"),
    Call("catalog", "DELETE", "/v1/sessions/{session_id}", True),
]


@pytest.fixture(scope="module")
async def owned(system: System) -> Ids:
    """Company A's resources, all settled (the zoom day's meeting exists, the sign-up is in)."""
    admin = system.admin(A, ADMIN)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
        system.client(system.bridge, admin) as bridge,
        system.client(system.registration, system.user(A, USER)) as alice,
        system.client(integrations(system), admin) as hooks,
    ):
        # A's webhook endpoint (nobody listens on port 9: its deliveries keep failing, which
        # changes nothing of what A reads)
        endpoint = await ok(
            await hooks.post(
                "/v1/webhooks/endpoints",
                json={"url": "http://127.0.0.1:9/owner-hook", "events": ["event.changed"]},
            ),
            201,
        )
        account_id = await zoom_company(system, A)
        event = await active_event(
            system,
            A,
            title=SECRET,
            dated=True,
            requires_approval=False,
            sessions=[
                {
                    "name": SESSION_NAME,
                    "registration_end": iso(days_from_now(3)),
                    "limit_enabled": True,
                    "participant_limit": 5,
                    "days": [
                        offline_day(days_from_now(5, 9), days_from_now(5, 12)),
                        zoom_day(days_from_now(6, 9), days_from_now(6, 10), account_id, ADMIN),
                    ],
                }
            ],
            access=[USER],
        )
        offline, zoom = event.days[SESSION_NAME]
        await eventually(
            lambda: bridge.get(f"/v1/days/{zoom['id']}/meeting"),
            lambda r: r.status_code == 200 and r.json()["status"] == "created",
            what="A's meeting at the bridge",
        )
        await eventually(
            lambda: cat.get(f"/v1/days/{zoom['id']}"),
            lambda r: ((r.json()["zoom"] or {}).get("meeting") or {}).get("status") == "created",
            what="A's join link in catalog",
        )
        await eventually(
            lambda: alice.get(f"/v1/me/events/{event.id}"),
            lambda r: r.status_code == 200,
            what="A's event visible to A's user",
        )
        enrollment = await ok(await alice.post(f"/v1/sessions/{event.session_id}/enrollments"), 201)
        await eventually(
            lambda: reg.get(f"/v1/events/{event.id}/enrollments"),
            lambda r: len(r.json()["items"]) == 1,
            what="A's enrollment listed",
        )
    return Ids(
        event.id,
        event.session_id,
        offline["id"],
        zoom["id"],
        enrollment["id"],
        account_id,
        endpoint["id"],
    )


async def observe(system: System, ids: Ids) -> dict[str, Any]:
    """Everything company A can read about its resources (and what its own intruder-named user
    sees), to compare before and after B's attempts."""
    admin = system.admin(A, ADMIN)
    seen: dict[str, Any] = {}
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
        system.client(system.bridge, admin) as bridge,
        system.client(system.registration, system.user(A, USER)) as alice,
        system.client(system.registration, system.user(A, "intruder")) as intruder,
        system.client(system.sim) as sim,
        system.client(integrations(system), admin) as hooks,
    ):
        seen["endpoint"] = await ok(await hooks.get(f"/v1/webhooks/endpoints/{ids.endpoint_id}"))
        seen["endpoints"] = await ok(await hooks.get("/v1/webhooks/endpoints"))
        seen["event"] = await ok(await cat.get(f"/v1/events/{ids.event_id}"))
        seen["events"] = await ok(await cat.get("/v1/events"))
        seen["session"] = await ok(await cat.get(f"/v1/sessions/{ids.session_id}"))
        for day in (ids.offline_day_id, ids.zoom_day_id):
            seen[f"day {day}"] = await ok(await cat.get(f"/v1/days/{day}"))
        seen["enrollments"] = await ok(await reg.get(f"/v1/events/{ids.event_id}/enrollments"))
        seen["seats"] = await ok(await reg.get(f"/v1/sessions/{ids.session_id}/seats"))
        seen["alice's view"] = await ok(await alice.get(f"/v1/me/events/{ids.event_id}"))
        seen["A's intruder-named user"] = (
            await intruder.get(f"/v1/me/events/{ids.event_id}")
        ).status_code
        seen["accounts"] = await ok(await bridge.get("/v1/zoom/accounts"))
        meeting = await ok(await bridge.get(f"/v1/days/{ids.zoom_day_id}/meeting"))
        # the host link is fetched fresh from Zoom on every read (its zak expires)
        seen["meeting"] = {k: v for k, v in meeting.items() if not k.startswith("start_url")}
        seen["sim meetings"] = [
            {k: m[k] for k in ("id", "start_time", "duration", "deleted")}
            for m in await ok(await sim.get("/_sim/meetings"))
            if m["agenda"] == f"day:{ids.zoom_day_id}"
        ]
    assert seen["A's intruder-named user"] == 404
    assert len(seen["sim meetings"]) == 1
    assert seen["enrollments"]["items"][0]["status"] == "approved"
    return seen


#: paths whose parameter is a credential, not a company's id (tested in tests/e2e/test_calendar.py:
#: an unknown or revoked token is a 404 like any other)
CREDENTIAL_PATHS = {"/v1/calendar/{token}.ics"}


async def openapi_id_endpoints(system: System) -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for name in ("catalog", "registration", "bridge", "integrations"):
        async with system.client(getattr(system, name)) as client:
            spec = await ok(await client.get("/openapi.json"))
        for path, operations in spec["paths"].items():
            if "{" in path and path not in CREDENTIAL_PATHS:
                found |= {(name, method.upper(), path) for method in operations}
    return found


async def send(system: System, call: Call, token: str, ids: Ids) -> httpx.Response:
    async with system.client(getattr(system, call.service), token) as client:
        return await client.request(
            call.method,
            call.path(ids),
            json=call.body(ids) if call.body else None,
            files=call.files,
        )


async def test_another_companys_ids_answer_404_and_change_nothing(
    system: System, owned: Ids
) -> None:
    listed = {(c.service, c.method, c.template) for c in CALLS}
    assert listed == await openapi_id_endpoints(system), "an endpoint with an id is not listed"
    before = await observe(system, owned)
    secrets = {SECRET, SESSION_NAME, owned.event_id, owned.enrollment_id, owned.account_id}
    secrets |= {owned.endpoint_id, "owner-hook"}
    secrets.add(before["meeting"]["join_url"])
    intruders = {"admin": system.admin(B, ADMIN), "user": system.user(B, USER)}
    for role, token in intruders.items():
        for call in CALLS:
            what = f"B's {role}: {call.method} {call.template} ({call.day} day)"
            response = await send(system, call, token, owned)
            expected = 403 if call.admin_only and role == "user" else 404
            assert response.status_code == expected, f"{what}: {response.text[:300]}"
            assert response.headers["content-type"].startswith("application/problem+json"), what
            body = response.json()
            sent = call.path(owned) + str(call.body(owned) if call.body else "")
            leaked = {s for s in secrets if s in response.text and s not in sent}
            assert not leaked, f"{what} carries A's data: {leaked}"
            # the same answer as for an id that exists nowhere: no oracle of A's ids
            nowhere = await send(system, call, token, Ids.nowhere())
            assert (nowhere.status_code, nowhere.json().get("code")) == (
                response.status_code,
                body.get("code"),
            ), what
    assert await observe(system, owned) == before


async def test_another_companys_lists_show_nothing_of_it(system: System, owned: Ids) -> None:
    async with (
        system.client(system.catalog, system.admin(B, ADMIN)) as cat,
        system.client(system.bridge, system.admin(B, ADMIN)) as bridge,
        system.client(system.registration, system.user(B, USER)) as alice_b,
        system.client(integrations(system), system.admin(B, ADMIN)) as hooks,
    ):
        assert (await ok(await cat.get("/v1/events")))["items"] == []
        assert await ok(await bridge.get("/v1/zoom/accounts")) == []
        assert await ok(await hooks.get("/v1/webhooks/endpoints")) == []
        for tab in ("available", "participating", "completed"):
            page = await ok(await alice_b.get("/v1/me/events", params={"tab": tab}))
            assert page["items"] == [], tab


async def test_another_companys_ids_inside_bodies_are_refused(system: System, owned: Ids) -> None:
    """B names A's session when enrolling into its own event, and A's Zoom account for its own
    zoom day: neither takes effect (no seat in A's session, no meeting on A's account)."""
    before = await observe(system, owned)
    admin = system.admin(B, ADMIN)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
        system.client(system.sim) as sim,
    ):
        await ok(await cat.put("/v1/company/settings", json={"zoom_enabled": True}))
        event = await create_event(
            system,
            B,
            title="B's own",
            dated=True,
            requires_approval=False,
            sessions=[{"name": "B run", "registration_end": iso(days_from_now(3))}],
        )
        await eventually(
            lambda: reg.get(f"/v1/sessions/{event.session_id}/seats"),
            lambda r: r.status_code == 200,
            what="B's session in registration",
        )
        enroll = f"/v1/events/{event.id}/enrollments"
        refused = await reg.post(
            enroll, json={"user_id": "bob", "email": "bob@b.io", "session_id": owned.session_id}
        )
        assert refused.status_code in (404, 422), refused.text
        # the endpoint works for B's own session: the refusal was about A's id
        await ok(
            await reg.post(
                enroll, json={"user_id": "bob", "email": "bob@b.io", "session_id": event.session_id}
            ),
            201,
        )

        day = await cat.post(
            f"/v1/sessions/{event.session_id}/days",
            json={
                "format": "zoom",
                "start": iso(days_from_now(8, 9)),
                "end": iso(days_from_now(8, 10)),
                "zoom": {"account_id": owned.account_id, "organizer_user_id": ADMIN},
            },
        )
        assert day.status_code in (201, 404, 422), day.text
        if day.status_code == 201:  # catalog does not know accounts: the bridge must refuse it
            day_id = day.json()["id"]
            failed = await eventually(
                lambda: cat.get(f"/v1/days/{day_id}"),
                lambda r: ((r.json()["zoom"] or {}).get("meeting") or {}).get("status") == "failed",
                what="B's day on A's account fails",
            )
            assert failed.json()["zoom"]["meeting"]["join_url"] is None
            meetings = await ok(await sim.get("/_sim/meetings"))
            assert not [m for m in meetings if m["agenda"] == f"day:{day_id}"]
    assert await observe(system, owned) == before


async def processed_webhooks(system: System) -> float:
    """How many stored webhooks the bridge has processed (its metrics, summed over events)."""
    async with system.client(system.bridge) as bridge:
        text = (await bridge.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "zoom_webhooks_processing_total"
        and sample.labels.get("outcome") == "processed"
    )


async def test_another_companys_webhook_secret_reaches_none_of_its_meetings(
    system: System, owned: Ids
) -> None:
    """F1: B connects a Server-to-Server app of its own with a webhook secret B chose, then
    signs webhooks naming A's meeting: a join of A's enrolled user, a recording with a
    ``javascript:`` link, A's deauthorization. The bridge accepts the signature (it is B's) and
    acts on none of A's things: no attendance, no recording, A stays connected."""
    before = await observe(system, owned)
    zoom_meeting_id = before["meeting"]["zoom_meeting_id"]
    b_secret, b_zoom_account = "b-chose-this-secret", "bZoomAcct"
    async with (
        system.client(system.bridge, system.admin(B, ADMIN)) as bridge,
        system.client(system.sim) as sim,
    ):
        await ok(
            await sim.post(
                "/_sim/s2s-apps",
                json={
                    "client_id": "b-app",
                    "client_secret": "b-app-secret",
                    "account_id": b_zoom_account,
                    "webhook_secret": b_secret,
                },
            )
        )
        await ok(
            await bridge.post(
                "/v1/zoom/accounts/server-to-server",
                json={
                    "zoom_account_id": b_zoom_account,
                    "client_id": "b-app",
                    "client_secret": "b-app-secret",
                    "role": "administrator",
                    "webhook_secret_token": b_secret,
                },
            ),
            201,
        )
        users = await ok(await sim.get("/_sim/users"))
        a_user = next(u for u in users if u["email"] == "host@zoom-sim.local")  # A connected it
    meeting = {"id": zoom_meeting_id, "uuid": "forged=="}
    forged = [
        {
            "event": "meeting.participant_joined",
            "payload": {
                "account_id": b_zoom_account,
                "object": {
                    **meeting,
                    "participant": {
                        "user_id": "16778240",
                        "email": f"{USER}@{A}.io",
                        "join_time": iso(days_from_now(-1)),
                    },
                },
            },
        },
        {
            "event": "meeting.participant_left",
            "payload": {
                "account_id": b_zoom_account,
                "object": {
                    **meeting,
                    "participant": {
                        "user_id": "16778240",
                        "email": f"{USER}@{A}.io",
                        "leave_time": iso(days_from_now(-0.9)),
                    },
                },
            },
        },
        {
            "event": "recording.completed",
            "payload": {
                "account_id": b_zoom_account,
                "object": {
                    "id": int(zoom_meeting_id),
                    "uuid": "forged==",
                    "recording_files": [
                        {"id": "x", "file_type": "MP4", "play_url": "javascript:alert(1)//"}
                    ],
                },
            },
        },
        {
            "decoy": {"account_id": b_zoom_account},  # so that B's secret is the one tried
            "event": "app_deauthorized",
            "payload": {"account_id": a_user["account_id"], "user_id": a_user["id"]},
        },
    ]
    processed = await processed_webhooks(system)
    async with system.client(system.bridge) as hook:
        for body in forged:
            raw = json.dumps(body).encode()
            timestamp = str(int(time.time()))
            digest = hmac.new(b_secret.encode(), f"v0:{timestamp}:".encode() + raw, "sha256")
            r = await hook.post(
                "/v1/zoom/webhooks",
                content=raw,
                headers={
                    "content-type": "application/json",
                    "x-zm-request-timestamp": timestamp,
                    "x-zm-signature": f"v0={digest.hexdigest()}",
                },
            )
            assert r.status_code == 200, r.text  # B's own secret: a valid signature
    await eventually(
        lambda: processed_webhooks(system),
        lambda n: n >= processed + len(forged),
        what="B's webhooks processed",
    )
    after = await observe(system, owned)
    assert after == before  # no attendance, no status change, no recording, still connected
    assert after["enrollments"]["items"][0]["status"] == "approved"
    assert not after[f"day {owned.zoom_day_id}"].get("recordings")
    assert owned.account_id in {a["id"] for a in after["accounts"]}
