"""Idempotency-Key over the real processes (issue "Calendars and integrations" §3): a create
retried with its key is done once and answered the same; another body with the key is 422."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from te_testing.polling import eventually
from te_testing.system import System

pytestmark = pytest.mark.e2e

COMPANY = "idem-co"


async def test_writes_retried_with_their_key_happen_once(system: System) -> None:
    admin = system.admin(COMPANY)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
    ):
        key = {"Idempotency-Key": str(uuid.uuid4())}
        body = {"title": "Retried", "dated": True}
        first = await cat.post("/v1/events", json=body, headers=key)
        again = await cat.post("/v1/events", json=body, headers=key)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        events = (await cat.get("/v1/events")).json()["items"]
        assert [e["id"] for e in events if e["title"]["en"] == "Retried"] == [first.json()["id"]]
        other = await cat.post("/v1/events", json={**body, "title": "Else"}, headers=key)
        assert other.status_code == 422
        assert other.json()["code"] == "idempotency_key_reused"

        # an edit retried with its key is answered as the first time, ETag included: the
        # client's next If-Match needs the version the edit made (its own If-Match, now stale,
        # is not checked again)
        url = f"/v1/events/{first.json()['id']}"
        before = (await cat.get(url)).headers["etag"]
        key = {"Idempotency-Key": str(uuid.uuid4()), "If-Match": before}
        edited = await cat.patch(url, json={"requires_approval": True}, headers=key)
        replayed_edit = await cat.patch(url, json={"requires_approval": True}, headers=key)
        assert (edited.status_code, replayed_edit.status_code) == (200, 200), edited.text
        assert replayed_edit.headers["idempotent-replayed"] == "true"
        assert replayed_edit.headers["etag"] == edited.headers["etag"] != before
        assert edited.headers["etag"] == f'"{edited.json()["version"]}"'

        # registration too: an access grant and an admin enrollment retried
        event_id = first.json()["id"]
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
        session = (
            await cat.post(
                f"/v1/events/{event_id}/sessions",
                json={"name": "Run", "registration_end": start.isoformat()},
            )
        ).json()
        await eventually(
            lambda: reg.get(f"/v1/sessions/{session['id']}/seats"),
            lambda r: r.status_code == 200,
            what="the session in registration",
        )
        enroll = {"user_id": "idem-u", "session_id": session["id"]}
        key = {"Idempotency-Key": "enroll-idem-u"}
        made = await reg.post(f"/v1/events/{event_id}/enrollments", json=enroll, headers=key)
        assert made.status_code == 201, made.text
        replayed = await reg.post(f"/v1/events/{event_id}/enrollments", json=enroll, headers=key)
        assert (replayed.status_code, replayed.json()) == (201, made.json())  # not the 200
        assert replayed.headers["idempotent-replayed"] == "true"
        listed = (await reg.get(f"/v1/events/{event_id}/enrollments")).json()["items"]
        assert len(listed) == 1
        assert len(listed[0]["history"]) == 1

        # a file upload retried: the client draws a new multipart boundary, the file is the same
        key = {"Idempotency-Key": "import-idem"}
        sent = {"file": ("people.csv", b"user_id,session\nidem-v,Run\nidem-w,Run\n", "text/csv")}
        url = f"/v1/events/{event_id}/enrollments/import"
        imported = await reg.post(url, files=sent, headers=key)
        assert imported.status_code == 200, imported.text
        assert imported.json() == {"imported": 2, "unchanged": 0}
        retried = await reg.post(url, files=sent, headers=key)
        assert (retried.status_code, retried.json()) == (200, imported.json())  # not unchanged: 2
        assert retried.headers["idempotent-replayed"] == "true"
