"""What an outside probe broke in the bridge (issue "Security"), each over real HTTP against the
bridge and the simulator:

- F1: a webhook acts only on the meetings of the Zoom account whose secret verified it; a
  company's own Server-to-Server secret never reaches another company's meetings, nor its
  connections (``app_deauthorized``); recording links are kept only on Zoom's own hosts.
- F3 (R-ZOOM-3): the join link and recordings go to seat holders only (an allow-list).
- F4: the OAuth state is bound to the browser that started the flow.
- F5: what Zoom would never send (deep nesting, a non-object payload) is a 400, never a 500;
  nothing is parsed before the signature is checked.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from te_shared import contracts as c
from te_shared.errors import BadRequest
from te_testing import messages
from te_testing.clock import iso, minutes_after
from zoom_bridge.accounts import service as accounts
from zoom_bridge.models import MeetingRegistrant, WebhookEvent, ZoomAccount
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.webhooks import rules

if TYPE_CHECKING:
    from conftest import Env

APP_SECRET = "test-webhook-secret"  # conftest.WEBHOOK_SECRET: the OAuth app's
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


async def post_signed(
    env: Env, body: Any, secret: str, *, raw: bytes | None = None
) -> httpx.Response:
    """POST a webhook signed with ``secret``, as anyone who knows that secret can."""
    content = raw if raw is not None else json.dumps(body).encode()
    timestamp = str(int(time.time()))
    async with env.client() as bridge:
        return await bridge.post(
            "/v1/zoom/webhooks",
            content=content,
            headers={
                "content-type": "application/json",
                "x-zm-request-timestamp": timestamp,
                "x-zm-signature": rules.expected_signature(secret, timestamp, content),
            },
        )


async def stored(env: Env, digest_of: dict[str, Any], signer: rules.Signer) -> WebhookEvent:
    """The stored webhook of ``digest_of`` once the worker processed it."""
    from zoom_bridge.webhooks.service import digest

    key = digest(digest_of, signer)

    async def processed() -> WebhookEvent | None:
        factory = env.app.state.runtime.session_factory()
        async with factory() as session:
            row = await session.get(WebhookEvent, key)
        return row if row is not None and row.processed else None

    row: WebhookEvent = await env.wait(processed)
    return row


async def attacker_s2s(env: Env, company: str, zoom_account: str, secret: str) -> str:
    """A company connects its own Server-to-Server app with a webhook secret it chose."""
    async with env.sim() as sim:
        await sim.post(
            "/_sim/s2s-apps",
            json={
                "client_id": f"{zoom_account}-id",
                "client_secret": f"{zoom_account}-client-secret",
                "account_id": zoom_account,
                "webhook_secret": secret,
            },
        )
    async with env.client() as bridge:
        r = await bridge.post(
            "/v1/zoom/accounts/server-to-server",
            json={
                "zoom_account_id": zoom_account,
                "client_id": f"{zoom_account}-id",
                "client_secret": f"{zoom_account}-client-secret",
                "role": "administrator",
                "webhook_secret_token": secret,
            },
            headers=env.admin(company),
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def attacker_sends(env: Env, zoom_account: str, event: str, obj: dict[str, Any]) -> None:
    """Company "attacker-co" connects a Server-to-Server app of its own (``zoom_account``, a
    secret it chose) and sends ``event`` about ``obj``, validly signed: accepted, then
    processed (and scoped) by the worker."""
    secret = "attacker-chosen-secret"
    account = await attacker_s2s(env, "attacker-co", zoom_account, secret)
    body: dict[str, Any] = {
        "event": event,
        "payload": {
            "account_id": zoom_account,
            "operator": "evil@attacker.test",
            "operator_id": "x",
            "object": obj,
        },
    }
    assert (await post_signed(env, body, secret)).json() == {"status": "accepted"}
    await stored(env, body, rules.Signer(account_ids=frozenset({uuid.UUID(account)})))


async def test_f1_a_companys_own_webhook_secret_never_reaches_another_companys_meeting(
    env: Env,
) -> None:
    # company B ("victim-co"): an OAuth connection, a zoom day with a learner
    victim_account = await env.connect(
        "administrator", company="victim-co", sim_user="victim@zoom.test"
    )
    day = env.day(victim_account, company="victim-co")
    await env.publish(env.approved(day, "vic", "vic@victim.test"))
    await env.publish(day)
    zoom_id = str((await env.created(day.day_id)).zoom_meeting_id)
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        victim = await session.get(ZoomAccount, uuid.UUID(victim_account))
    assert victim is not None

    async def registered() -> MeetingRegistrant | None:
        async with factory() as session:
            found: MeetingRegistrant | None = (
                await session.execute(
                    select(MeetingRegistrant).where(MeetingRegistrant.day_id == day.day_id)
                )
            ).scalar_one_or_none()
            return found

    vics = await env.wait(registered)  # the learner's personal registration

    # company A ("attacker-co") connects its own S2S app, with a secret it chose
    evil_secret = "attacker-chosen-secret"
    evil_account = await attacker_s2s(env, "attacker-co", "evilAcct", evil_secret)
    evil = rules.Signer(account_ids=frozenset({uuid.UUID(evil_account)}))

    joined: dict[str, Any] = {
        "event": "meeting.participant_joined",
        "payload": {
            "account_id": "evilAcct",
            "object": {
                "id": zoom_id,
                "uuid": "forged==",
                "participant": {
                    "user_id": "16778240",
                    "email": "vic@victim.test",
                    "join_time": iso(minutes_after(T0, 0)),
                },
            },
        },
    }
    recording: dict[str, Any] = {
        "event": "recording.completed",
        "payload": {
            "account_id": "evilAcct",
            "object": {
                "id": int(zoom_id),
                "uuid": "forged==",
                "recording_files": [
                    {
                        "id": "evil-file",
                        "file_type": "MP4",
                        "play_url": "javascript:alert(document.domain)//",
                    }
                ],
            },
        },
    }
    deleted: dict[str, Any] = {  # would leave the victim's day without a meeting for a moment
        "event": "meeting.deleted",
        "payload": {
            "account_id": "evilAcct",
            "operator": "evil@attacker.test",
            "object": {"id": int(zoom_id), "uuid": "forged==", "host_id": "x", "type": 2},
        },
    }
    updated: dict[str, Any] = {  # would make the bridge spend the victim's update quota
        "event": "meeting.updated",
        "payload": {
            "account_id": "evilAcct",
            "operator": "evil@attacker.test",
            "object": {"id": int(zoom_id), "start_time": "2031-01-01T08:00:00Z"},
        },
    }
    trashed: dict[str, Any] = {  # would take the victim's recordings off the day
        "event": "recording.trashed",
        "payload": {
            "account_id": "evilAcct",
            "operator": "evil@attacker.test",
            "object": {"id": int(zoom_id), "uuid": "forged==", "recording_files": []},
        },
    }
    cancelled: dict[str, Any] = {  # would register the learner again: a Zoom call, an e-mail
        "event": "meeting.registration_cancelled",
        "payload": {
            "account_id": "evilAcct",
            "operator": "evil@attacker.test",
            "object": {
                "id": int(zoom_id),
                "uuid": "forged==",
                "registrant": {"id": vics.zoom_registrant_id, "email": "vic@victim.test"},
            },
        },
    }
    deauthorized: dict[str, Any] = {
        # a decoy first, so the attacker's own secret is tried (and verifies)
        "decoy": {"account_id": "evilAcct"},
        "event": "app_deauthorized",
        "payload": {
            "account_id": victim.zoom_account_id,
            "user_id": victim.zoom_user_id,
            "client_id": "dev-client-id",
        },
    }
    for body in (joined, recording, deleted, updated, trashed, cancelled, deauthorized):
        r = await post_signed(env, body, evil_secret)
        assert r.status_code == 200, r.text  # a valid signature: accepted, then scoped
        assert r.json() == {"status": "accepted"}
        await stored(env, body, evil)
    # naming the victim's Zoom account does not make the attacker's secret the victim's
    for body in (joined, deauthorized):
        named = {
            "event": body["event"],
            "payload": {**body["payload"], "account_id": victim.zoom_account_id},
        }
        assert (await post_signed(env, named, evil_secret)).status_code == 401

    assert not await env.outbox(c.AttendanceRecorded.routing_key, day.day_id)
    assert not await env.outbox(c.RecordingsChanged.routing_key, day.day_id)
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert not row.recordings
    assert row.recordings_gone is None  # the forged trash never reached the meeting
    assert (row.zoom_meeting_id, row.status) == (zoom_id, "created")
    assert row.synced_version == row.version  # no patch armed
    kept = await registered()
    assert kept is not None
    assert kept.zoom_registrant_id == vics.zoom_registrant_id  # not forgotten, not made again
    async with env.client() as bridge:
        listed = await bridge.get("/v1/zoom/accounts", headers=env.admin("victim-co"))
        assert victim_account in {a["id"] for a in listed.json()}  # still connected
        meeting = await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin("victim-co"))
        assert meeting.json()["recordings"] == []

    # the same join, from Zoom (the OAuth app's secret): the victim's attendance is recorded
    async with env.sim() as sim:
        r = await sim.post(
            f"/_sim/meetings/{zoom_id}/join",
            json={"email": "vic@victim.test", "at": iso(minutes_after(T0, 0))},
        )
        assert r.json()["webhook_status"] == 200

    async def attended() -> list[dict[str, Any]]:
        return await env.outbox(c.AttendanceRecorded.routing_key, day.day_id)

    (record,) = await env.wait(attended)
    assert record["user_id"] == "vic"


async def test_f1_a_recovery_signed_by_another_company_takes_nothing_back(env: Env) -> None:
    """``meeting.recovered`` names a meeting by its Zoom id only: signed with another company's
    own secret, it does not give the victim's day back a meeting its host deleted at Zoom (the
    day would show a link to whatever that id is now)."""
    victim_account = await env.connect(
        "administrator", company="victim-co", sim_user="victim-rec@zoom.test"
    )
    day = env.day(victim_account, company="victim-co")
    await env.publish(day)
    zoom_id = str((await env.created(day.day_id)).zoom_meeting_id)
    limit = {"status": 429, "rate_limit_type": "Daily-limit", "method": "POST"}
    async with env.sim() as sim:
        await sim.post("/_sim/faults", json={**limit, "path_prefix": "/v2/users"})
        assert (await sim.post(f"/_sim/meetings/{zoom_id}/delete")).status_code == 200

    async def gone() -> Any:
        row = await env.meeting_row(day.day_id)
        return row if row is not None and row.gone_zoom_meeting_id == zoom_id else None

    await env.wait(gone)
    forged = {"id": int(zoom_id), "uuid": "forged==", "host_id": "x", "type": 2}
    await attacker_sends(env, "evilAcct2", "meeting.recovered", forged)
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.zoom_meeting_id, row.gone_zoom_meeting_id) == (None, zoom_id)
    assert len(await env.outbox(c.MeetingCreated.routing_key, day.day_id)) == 1


async def test_f1_a_permanent_deletion_signed_by_another_company_removes_nothing(
    env: Env,
) -> None:
    """``meeting.permanently_deleted`` names a meeting by its Zoom id only: signed with another
    company's own secret, it neither makes the victim's day drop its live meeting (and make a
    second one) nor forget one its host may still recover."""
    victim_account = await env.connect(
        "administrator", company="victim-co", sim_user="victim-purge@zoom.test"
    )
    live_day = env.day(victim_account, company="victim-co")
    await env.publish(live_day)
    live = await env.created(live_day.day_id)
    trashed_day = env.day(victim_account, company="victim-co")
    await env.publish(trashed_day)
    trashed_id = str((await env.created(trashed_day.day_id)).zoom_meeting_id)
    limit = {"status": 429, "rate_limit_type": "Daily-limit", "method": "POST"}
    async with env.sim() as sim:
        await sim.post("/_sim/faults", json={**limit, "path_prefix": "/v2/users"})
        assert (await sim.post(f"/_sim/meetings/{trashed_id}/delete")).status_code == 200

    async def gone() -> Any:
        row = await env.meeting_row(trashed_day.day_id)
        return row if row is not None and row.gone_zoom_meeting_id == trashed_id else None

    await env.wait(gone)
    for n, zoom_id in enumerate((str(live.zoom_meeting_id), trashed_id)):
        forged = {"id": int(zoom_id), "uuid": "forged==", "host_id": "x", "type": 2}
        await attacker_sends(env, f"evilPurge{n}", "meeting.permanently_deleted", forged)
    row = await env.meeting_row(live_day.day_id)
    assert row is not None
    assert (row.zoom_meeting_id, row.status) == (live.zoom_meeting_id, "created")
    assert not await env.outbox(c.MeetingDeleted.routing_key, live_day.day_id)
    row = await env.meeting_row(trashed_day.day_id)
    assert row is not None
    assert row.gone_zoom_meeting_id == trashed_id


async def test_f1_a_bulk_trash_signed_by_another_company_leaves_recordings_be(
    env: Env,
) -> None:
    """Zoom's bulk recording notifications name meeting instances only: signed with another
    company's own secret, one naming the victim's instance trashes nothing of the victim's."""
    await env.publish(messages.company_settings_changed(company="victim-co", zoom_enabled=True))
    victim_account = await env.connect(
        "administrator", company="victim-co", sim_user="victim-bulk@zoom.test"
    )
    day = env.day(victim_account, company="victim-co")
    await env.publish(day)
    zoom_id = str((await env.created(day.day_id)).zoom_meeting_id)
    async with env.sim() as sim:
        await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})

    async def attached() -> Any:
        row = await env.meeting_row(day.day_id)
        return row if row is not None and row.recordings else None

    instance = (await env.wait(attached)).recordings[0]["instance"]
    forged = {"meeting_uuids": [instance]}
    await attacker_sends(env, "evilAcct3", "recording.batch_trashed", forged)
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert len(row.recordings or []) == 3
    assert not row.recordings_trashed
    assert len(await env.outbox(c.RecordingsChanged.routing_key, day.day_id)) == 1


async def test_f1_a_connections_own_secret_still_covers_its_own_meetings_only(env: Env) -> None:
    """The attacker's S2S secret works for the attacker's own meetings (the legitimate use),
    and the OAuth app's secret does not reach a Server-to-Server connection's meetings."""
    own_secret = "own-s2s-secret"
    account = await attacker_s2s(env, "s2s-co", "ownAcct", own_secret)
    day = env.day(account, company="s2s-co")
    await env.publish(env.approved(day, "sam", "sam@s2s.test"))
    await env.publish(day)
    zoom_id = str((await env.created(day.day_id)).zoom_meeting_id)
    body = {
        "event": "meeting.participant_joined",
        "payload": {
            "account_id": "ownAcct",
            "object": {
                "id": zoom_id,
                "participant": {
                    "user_id": "1",
                    "email": "sam@s2s.test",
                    "join_time": iso(minutes_after(T0, 0)),
                },
            },
        },
    }
    r = await post_signed(env, body, APP_SECRET)  # the OAuth app's secret
    assert r.status_code == 200
    await stored(env, body, rules.Signer(app=True))
    assert not await env.outbox(c.AttendanceRecorded.routing_key, day.day_id)
    r = await post_signed(env, body, own_secret)
    assert r.status_code == 200
    await stored(env, body, rules.Signer(account_ids=frozenset({uuid.UUID(account)})))
    (record,) = await env.outbox(c.AttendanceRecorded.routing_key, day.day_id)
    assert record["user_id"] == "sam"


async def test_f1_recording_links_are_kept_only_on_zooms_own_hosts(env: Env) -> None:
    await env.publish(messages.company_settings_changed(company="rec-co", zoom_enabled=True))
    account = await env.connect("administrator", company="rec-co", sim_user="rec@zoom.test")
    day = env.day(account, company="rec-co")
    await env.publish(day)
    zoom_id = str((await env.created(day.day_id)).zoom_meeting_id)
    links = {
        "js": "javascript:alert(document.domain)//",
        "http-zoom": "http://zoom.us/rec/play/abc",
        "lookalike": "https://zoom.us.evil.example/rec/play/abc",
        "userinfo": "https://zoom.us@evil.example/rec/play/abc",
        "other-site": "https://evil.example/rec/play/abc",
        "regional": "https://us06web.zoom.us/rec/play/abc?pwd=x",
        "apex": "https://zoom.us/rec/play/def",
    }
    body = {
        "event": "recording.completed",
        "payload": {
            "account_id": "sim",
            "object": {
                "id": int(zoom_id),
                "uuid": "rec==",
                "recording_files": [
                    {"id": name, "file_type": "MP4", "play_url": url} for name, url in links.items()
                ],
            },
        },
    }
    assert (await post_signed(env, body, APP_SECRET)).status_code == 200
    await stored(env, body, rules.Signer(app=True))
    (available,) = await env.outbox(c.RecordingsChanged.routing_key, day.day_id)
    assert {r["play_url"] for r in available["recordings"]} == {
        links["regional"],
        links["apex"],
    }
    async with env.client() as bridge:
        meeting = (
            await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin("rec-co"))
        ).json()
    assert {r["id"] for r in meeting["recordings"]} == {"regional", "apex"}


def test_f1_recording_link_rule() -> None:
    hosts = ["zoom.us", "zoom.com", "zoomgov.com"]
    sim = ["http://127.0.0.1:8099"]
    good = [
        "https://zoom.us/rec/play/x",
        "https://us02web.zoom.us/rec/play/x",
        "https://zoomgov.com/rec/play/x",
        "https://ZOOM.US/rec/play/x",
        "http://127.0.0.1:8099/rec/play/x",
    ]
    bad = [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://zoom.us/rec/play/x",
        "https://zoom.us:8443/rec/play/x",
        "https://evilzoom.us/rec/play/x",
        "https://zoom.us.evil.test/x",
        "https://a@zoom.us/x",
        "https://zoom.us/rec/play/x y",
        "https://zoom.us/\r\nx",
        'https://zoom.us/x"onmouseover=1',
        "http://127.0.0.1:8098/rec/play/x",
        "//zoom.us/x",
        "",
        None,
        42,
    ]
    assert all(rules.is_zoom_link(u, hosts=hosts, origins=sim) for u in good)
    assert not any(rules.is_zoom_link(u, hosts=hosts, origins=sim) for u in bad)


async def test_f3_r_zoom_3_join_link_only_for_seat_holders(env: Env) -> None:
    account = await env.connect("administrator", company="seats-co", sim_user="seats@zoom.test")
    day = env.day(account, company="seats-co", organizer="org-9")
    await env.publish(day)
    await env.created(day.day_id)
    enrollment_of: dict[str, uuid.UUID] = {}
    versions: dict[str, int] = {}

    async def set_status(user: str, status: c.EnrollmentStatus) -> None:
        enrollment_of.setdefault(user, uuid.uuid4())
        versions[user] = versions.get(user, 0) + 1
        await env.publish(
            messages.enrollment_in(
                day,
                user,
                f"{user}@seats.test",
                status,
                enrollment_id=enrollment_of[user],
                version=versions[user],
            )
        )

    async def answer(user: str, company: str = "seats-co") -> int:
        async with env.client() as bridge:
            r = await bridge.get(
                f"/v1/days/{day.day_id}/meeting", headers=env.user(user, company=company)
            )
        return r.status_code

    async def becomes(user: str, status: int) -> None:
        async def check() -> bool:
            return await answer(user) == status

        await env.wait(check)

    S = c.EnrollmentStatus
    for user, status in (
        ("pam", S.PENDING),
        ("wes", S.WAITLISTED),
        ("den", S.DENIED),
        ("cal", S.CANCELLED),
        ("amy", S.APPROVED),
        ("ace", S.AWAITING_CONFIRMATION),
        ("pat", S.PARTICIPATED),
        ("mia", S.MISSED),
    ):
        await set_status(user, status)
    for user in ("amy", "ace", "pat", "mia"):
        await becomes(user, 200)
    for user in ("pam", "wes", "den", "cal", "nobody"):
        assert await answer(user) == 404, user
    assert await answer("amy", company="other-co") == 404
    assert await answer("org-9") == 200  # the organizer, without an enrollment
    # promoted from the waitlist: gets it; cancelled: loses it
    await set_status("wes", S.APPROVED)
    await becomes("wes", 200)
    await set_status("amy", S.CANCELLED)
    await becomes("amy", 404)


async def test_f4_oauth_state_is_bound_to_the_browser_that_started_it(env: Env) -> None:
    async with env.client() as admin_browser, env.sim() as sim:
        listed = (await admin_browser.get("/v1/zoom/accounts", headers=env.admin())).json()
        start = await admin_browser.get(
            "/v1/zoom/oauth/authorize",
            params={"role": "administrator", "return_to": "/admin/zoom"},
            headers=env.admin(),
        )
        assert start.status_code == 302
        cookie = start.headers["set-cookie"]
        assert cookie.startswith(accounts.BROWSER_COOKIE_PREFIX)
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert "path=/v1/zoom/oauth/callback" in attributes
        assert "secure" not in attributes  # the callback here is http (a local run)
        # the admin sends the link to someone else, whose browser approves at Zoom
        at_zoom = await sim.get(start.headers["location"] + "&sim_user=victim-f4@zoom.test")
        callback = at_zoom.headers["location"]
        async with httpx.AsyncClient() as victim_browser:
            back = await victim_browser.get(callback)
        assert back.status_code == 302
        assert back.headers["location"] == "/admin/zoom?zoom_error=state_mismatch"
        after = (await admin_browser.get("/v1/zoom/accounts", headers=env.admin())).json()
        assert len(after) == len(listed)  # nothing connected
        assert "victim-f4@zoom.test" not in {a["zoom_user_email"] for a in after}
        # the state was used up: not even the admin's own browser can use it now
        replay = await admin_browser.get(callback)
        assert replay.status_code == 400
        assert replay.json()["code"] == "bad_state"

        # the browser that started the flow completes it, and its cookie is cleared
        start = await admin_browser.get(
            "/v1/zoom/oauth/authorize",
            params={"role": "administrator", "return_to": "/admin/zoom"},
            headers=env.admin(),
        )
        at_zoom = await sim.get(start.headers["location"] + "&sim_user=own-f4@zoom.test")
        done = await admin_browser.get(at_zoom.headers["location"])
        assert done.status_code == 302
        assert done.headers["location"] == "/admin/zoom"
        assert "max-age=0" in done.headers["set-cookie"].lower()
        after = (await admin_browser.get("/v1/zoom/accounts", headers=env.admin())).json()
        assert "own-f4@zoom.test" in {a["zoom_user_email"] for a in after}


def test_f4_the_binding_cookie_is_secure_when_the_callback_is_https() -> None:
    settings = ZoomBridgeSettings(zoom_redirect_url="https://api.example.com/zoom/callback")
    assert accounts.browser_binding(settings).secure is True
    assert accounts.browser_binding(settings).path == "/zoom/callback"
    local = ZoomBridgeSettings(zoom_redirect_url="http://127.0.0.1:8003/v1/zoom/oauth/callback")
    assert accounts.browser_binding(local).secure is False


async def test_f5_bodies_zoom_never_sends_are_400_never_500(env: Env) -> None:
    nested = b"[" * 2000 + b"]" * 2000
    async with env.client() as bridge:
        unsigned = await bridge.post("/v1/zoom/webhooks", content=nested)
        assert unsigned.status_code == 401  # checked before anything is parsed
    for raw in (
        nested,
        b'{"event": "meeting.ended", "payload": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
        b'"just a string"',
        b"[1, 2]",
        b"not json",
        b'{"event": "endpoint.url_validation", "payload": "plainToken"}',
        b'{"event": "endpoint.url_validation", "payload": ["plainToken"]}',
        b'{"event": "endpoint.url_validation", "payload": {"plainToken": 12}}',
        b'{"event": "endpoint.url_validation", "payload": {}}',
        b'{"event": "meeting.ended", "payload": "x"}',
        b'{"event": ["meeting.ended"], "payload": {}}',
    ):
        r = await post_signed(env, None, APP_SECRET, raw=raw)
        assert r.status_code == 400, (raw[:60], r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/problem+json")
    # a well-formed signed URL validation is still answered
    r = await post_signed(
        env,
        {"event": "endpoint.url_validation", "payload": {"plainToken": "abc"}},
        APP_SECRET,
    )
    assert r.status_code == 200
    assert r.json()["plainToken"] == "abc"


def test_f5_json_depth_ignores_brackets_inside_strings() -> None:
    assert rules.json_depth(b'{"a": "[[[[[[", "b": [1, {"c": "\\"]]]"}]}') == 3
    assert rules.json_depth(b"[" * 50) == 50


def test_f5_many_brackets_but_shallow_is_parsed_and_deep_is_refused() -> None:
    """The bracket count only spares the scan: a body with more brackets than the depth limit
    (a recording with many files) is scanned and parsed, one nested past it refused."""
    files = [{"id": f"f{n}", "tags": []} for n in range(40)]
    wide = json.dumps(
        {"event": "recording.completed", "payload": {"object": {"recording_files": files}}}
    ).encode()
    assert wide.count(b"{") + wide.count(b"[") > rules.MAX_JSON_DEPTH
    assert len(rules.parse_body(wide)["payload"]["object"]["recording_files"]) == 40
    deep = b'{"payload": ' + b"[" * rules.MAX_JSON_DEPTH + b"]" * rules.MAX_JSON_DEPTH + b"}"
    with pytest.raises(BadRequest):
        rules.parse_body(deep)
