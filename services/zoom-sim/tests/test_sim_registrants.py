"""Meeting registrants: add (personal join links), list, approve/deny/cancel, delete, and
joining with a registrant's link (registrant_id in webhooks and reports)."""

from __future__ import annotations

import asyncio
import re
from typing import Any


async def _registration_meeting(kit: Any, auth: dict[str, str], approval_type: int) -> int:
    m = await kit.create_meeting(auth, settings={"approval_type": approval_type})
    mid: int = m["id"]
    return mid


async def _register(kit: Any, auth: dict[str, str], mid: int, **body: Any) -> Any:
    return await kit.client.post(f"/v2/meetings/{mid}/registrants", headers=auth, json=body)


async def _listed(kit: Any, auth: dict[str, str], mid: int, **params: Any) -> dict[str, Any]:
    r = await kit.client.get(f"/v2/meetings/{mid}/registrants", headers=auth, params=params)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_registration_must_be_enabled(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)  # approval_type 2: no registration, Zoom's default
    r = await _register(kit, auth, m["id"], email="a@acme.test", first_name="A")
    assert r.status_code == 404
    assert r.json() == {
        "code": 404,
        "message": f"Registration has not been enabled for this meeting: {m['id']}.",
    }


async def test_add_registrant_gives_a_personal_join_link(kit: Any) -> None:
    auth = await kit.auth()
    mid = await _registration_meeting(kit, auth, 1)
    r = await _register(
        kit, auth, mid, email="ann@acme.test", first_name="Ann", last_name="Lee", auto_approve=True
    )
    assert r.status_code == 201, r.text
    added = r.json()
    assert set(added) == {"id", "registrant_id", "join_url", "topic", "start_time"}
    assert added["id"] == mid
    assert added["topic"] == "Day 1"
    assert added["start_time"] == "2030-03-01T09:00:00Z"
    assert re.fullmatch(rf"http://zoom-sim\.test/j/{mid}\?tk=[\w-]+", added["join_url"])
    again = (await _register(kit, auth, mid, email="ANN@acme.test", first_name="Ann")).json()
    assert again["registrant_id"] == added["registrant_id"]  # the same registration
    bad = await _register(kit, auth, mid, email="no-at-sign", first_name="")
    assert bad.status_code == 400
    assert bad.json()["code"] == 300
    assert {e["field"] for e in bad.json()["errors"]} == {"email", "first_name"}


async def test_list_approve_deny_cancel_delete(kit: Any) -> None:
    auth = await kit.auth()
    mid = await _registration_meeting(kit, auth, 1)  # manual approval
    ids = {}
    for name in ("ann", "bob", "cid"):
        r = await _register(kit, auth, mid, email=f"{name}@acme.test", first_name=name.title())
        ids[name] = r.json()["registrant_id"]
    assert (await _listed(kit, auth, mid))["registrants"] == []  # default: approved ones
    pending = await _listed(kit, auth, mid, status="pending", page_size=2)
    assert (pending["total_records"], pending["page_count"]) == (3, 2)
    assert [x["email"] for x in pending["registrants"]] == ["ann@acme.test", "bob@acme.test"]
    rest = await _listed(
        kit, auth, mid, status="pending", page_size=2, next_page_token=pending["next_page_token"]
    )
    assert [x["email"] for x in rest["registrants"]] == ["cid@acme.test"]
    assert rest["next_page_token"] == ""

    url = f"/v2/meetings/{mid}/registrants/status"
    r = await kit.client.put(
        url,
        headers=auth,
        json={
            "action": "approve",
            "registrants": [{"id": ids["ann"]}, {"email": "bob@acme.test"}, {"id": ids["cid"]}],
        },
    )
    assert r.status_code == 204
    approved = await _listed(kit, auth, mid)
    assert [x["status"] for x in approved["registrants"]] == ["approved"] * 3
    assert approved["registrants"][0]["join_url"].startswith(f"http://zoom-sim.test/j/{mid}?tk=")
    await kit.client.put(
        url, headers=auth, json={"action": "deny", "registrants": [{"id": ids["bob"]}]}
    )
    await kit.client.put(
        url, headers=auth, json={"action": "cancel", "registrants": [{"id": ids["cid"]}]}
    )
    assert [x["email"] for x in (await _listed(kit, auth, mid))["registrants"]] == ["ann@acme.test"]
    assert [
        x["email"] for x in (await _listed(kit, auth, mid, status="denied"))["registrants"]
    ] == ["bob@acme.test"]
    bad = await kit.client.put(url, headers=auth, json={"action": "maybe", "registrants": []})
    assert bad.status_code == 400

    r = await kit.client.delete(f"/v2/meetings/{mid}/registrants/{ids['ann']}", headers=auth)
    assert r.status_code == 204
    assert (await _listed(kit, auth, mid))["registrants"] == []
    r = await kit.client.delete(f"/v2/meetings/{mid}/registrants/{ids['ann']}", headers=auth)
    assert r.status_code == 404


async def test_joining_with_a_registrants_link(kit: Any) -> None:
    auth = await kit.auth()
    mid = await _registration_meeting(kit, auth, 0)  # automatic approval
    ann = (await _register(kit, auth, mid, email="ann@corp.test", first_name="Ann")).json()
    joined = await kit.client.post(
        f"/_sim/meetings/{mid}/join",
        json={
            "join_url": ann["join_url"],
            "email": "ann.private@mail.test",  # whatever email she uses in Zoom
            "at": "2030-03-01T09:00:00Z",
        },
    )
    assert joined.status_code == 200, joined.text
    assert joined.json()["participant"]["registrant_id"] == ann["registrant_id"]
    assert joined.json()["participant"]["name"] == "Ann"
    p = kit.receiver.received[-1].body["payload"]["object"]["participant"]
    assert p["registrant_id"] == ann["registrant_id"]
    assert p["email"] == "ann.private@mail.test"
    # the link is hers: used again while she is in, it does not let a second person in
    twice = await kit.client.post(f"/_sim/meetings/{mid}/join", json={"join_url": ann["join_url"]})
    assert twice.status_code == 409
    await kit.client.post(
        f"/_sim/meetings/{mid}/leave",
        json={"user_id": joined.json()["user_id"], "at": "2030-03-01T09:40:00Z"},
    )
    left = kit.receiver.received[-1].body["payload"]["object"]["participant"]
    assert left["registrant_id"] == ann["registrant_id"]
    await kit.client.post(f"/_sim/meetings/{mid}/end", json={"at": "2030-03-01T10:00:00Z"})

    report = f"/v2/report/meetings/{mid}/participants"
    (plain,) = (await kit.client.get(report, headers=auth)).json()["participants"]
    assert "registrant_id" not in plain  # Zoom adds it only when asked
    asked = await kit.client.get(report, headers=auth, params={"include_fields": "registrant_id"})
    (row,) = asked.json()["participants"]
    assert row["registrant_id"] == ann["registrant_id"]
    assert row["user_email"] == "ann.private@mail.test"
    past = await kit.client.get(f"/v2/past_meetings/{mid}/participants", headers=auth)
    assert past.json()["participants"][0]["registrant_id"] == ann["registrant_id"]

    # a cancelled registration's link no longer works; a link to another meeting is refused
    await kit.client.put(
        f"/v2/meetings/{mid}/registrants/status",
        headers=auth,
        json={"action": "cancel", "registrants": [{"id": ann["registrant_id"]}]},
    )
    r = await kit.client.post(f"/_sim/meetings/{mid}/join", json={"join_url": ann["join_url"]})
    assert r.status_code == 409
    other = await kit.create_meeting(auth)
    r = await kit.client.post(
        f"/_sim/meetings/{other['id']}/join", json={"join_url": ann["join_url"]}
    )
    assert r.status_code == 422


async def _received(kit: Any, count: int) -> list[dict[str, Any]]:
    for _ in range(200):  # the API's notifications go out in the background
        if len(kit.receiver.received) >= count:
            break
        await asyncio.sleep(0.01)
    return sorted((r.body for r in kit.receiver.received), key=lambda b: b["event_ts"])


async def test_a_registration_ended_at_zoom_is_notified_as_zoom_does(kit: Any) -> None:
    """``MeetingRegistrationCancelledEvent`` / ``...DeniedEvent``: the meeting (``id`` a number)
    with the ``registrant``, and the ``operator``: the host in the web portal or the app's
    user through the API (with ``operator_id``), or the registrant, who cancels with the link
    of Zoom's confirmation e-mail (without one). Their personal link stops letting them in."""
    auth = await kit.auth()
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    mid = await _registration_meeting(kit, auth, 0)
    ids = {}
    for name in ("ann", "bob", "cid", "dan"):
        added = await _register(kit, auth, mid, email=f"{name}@acme.test", first_name=name.title())
        ids[name] = added.json()["registrant_id"]
    cancel = f"/_sim/meetings/{mid}/registrants/{{}}/cancel"
    by_host = await kit.client.post(cancel.format(ids["ann"]))
    assert by_host.status_code == 200, by_host.text
    assert by_host.json()["status"] == "cancelled"
    assert by_host.json()["webhook_status"] == 200
    by_self = await kit.client.post(cancel.format(ids["bob"]), json={"by": "registrant"})
    assert by_self.status_code == 200, by_self.text
    denied = await kit.client.post(cancel.format(ids["cid"]), json={"deny": True})
    assert denied.json()["status"] == "denied"
    by_api = await kit.client.put(
        f"/v2/meetings/{mid}/registrants/status",
        headers=auth,
        json={"action": "cancel", "registrants": [{"id": ids["dan"]}, {"id": ids["ann"]}]},
    )
    assert by_api.status_code == 204  # ann's was cancelled already: nothing more is notified

    bodies = await _received(kit, 4)
    assert [b["event"] for b in bodies] == [
        "meeting.registration_cancelled",
        "meeting.registration_cancelled",
        "meeting.registration_denied",
        "meeting.registration_cancelled",
    ]
    for body, name in zip(bodies, ("ann", "bob", "cid", "dan"), strict=True):
        payload = body["payload"]
        assert payload["account_id"] == me["account_id"]
        obj = payload["object"]
        assert obj["id"] == mid
        assert isinstance(obj["id"], int)
        assert obj["host_id"] == me["id"]
        assert obj["registrant"] == {
            "id": ids[name],
            "first_name": name.title(),
            "last_name": "",
            "email": f"{name}@acme.test",
        }
        if name == "bob":  # the registrant cancelled it
            assert payload["operator"] == "bob@acme.test"
            assert "operator_id" not in payload
        else:
            assert (payload["operator"], payload["operator_id"]) == (me["email"], me["id"])
    assert all(r.signature_ok for r in kit.receiver.received)
    assert (await _listed(kit, auth, mid))["registrants"] == []

    # what cannot be ended again, or by whom
    assert (await kit.client.post(cancel.format(ids["ann"]))).status_code == 409
    assert (await kit.client.post(cancel.format("nobody"))).status_code == 404
    refused = await kit.client.post(
        cancel.format(ids["ann"]), json={"by": "registrant", "deny": True}
    )
    assert refused.status_code == 422
    # registering the e-mail again makes a new registration, with a new link
    again = (await _register(kit, auth, mid, email="ann@acme.test", first_name="Ann")).json()
    assert again["registrant_id"] != ids["ann"]
