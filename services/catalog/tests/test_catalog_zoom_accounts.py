"""R-DAY-9, R-ZOOM-2: a zoom day's account must be one the zoom bridge announced for the
company (``ZoomAccountChanged``), connected; its role is the account's, not the client's."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from te_shared import contracts as c
from te_testing import messages
from te_testing.clock import iso, january_2030
from te_testing.infra import RabbitNamespace

Cat = Any
REG_END = "2030-01-01T09:00:00+00:00"
FIELD = "body.zoom.account_id"


async def zoom_session(cat: Cat) -> tuple[str, dict[str, Any]]:
    company = await cat.company(zoom_enabled=True, training_module_enabled=True)
    event = await cat.event(company, title="Python")
    sess = await cat.session(company, event["id"], name="Daytime", registration_end=REG_END)
    return company, sess


def body(account_id: str, **kw: Any) -> dict[str, Any]:
    return {"account_id": account_id, "organizer_user_id": "org-1", **kw}


def refusal(r: Any) -> tuple[int, str, str]:
    error = r.json()["errors"][0]
    return r.status_code, error["field"], error["code"]


async def test_r_day_9_unknown_or_another_companys_account_is_refused_as_not_known_yet(
    cat: Cat,
) -> None:
    company, sess = await zoom_session(cat)
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=body(str(uuid.uuid4()))
    )
    assert refusal(r) == (422, FIELD, "zoom_account_unknown")
    assert r.json()["retryable"] is True
    assert "retry" in r.json()["errors"][0]["message"]
    # another company's account is unknown too (nothing tells it exists)
    other = await cat.company(zoom_enabled=True)
    theirs = await cat.zoom_account(other)
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=body(theirs)
    )
    assert refusal(r) == (422, FIELD, "zoom_account_unknown")
    # a day created right after the account connected races its message: once it arrives,
    # the same request succeeds
    account_id = str(uuid.uuid4())
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=body(account_id)
    )
    assert refusal(r) == (422, FIELD, "zoom_account_unknown")
    await cat.zoom_account(company, account_id=account_id)
    day = await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=body(account_id)
    )
    assert day["zoom"]["account_id"] == account_id
    # moving an existing day onto an unknown account is refused the same way
    r = await cat.client.patch(
        f"/v1/days/{day['id']}",
        json={"zoom": body(str(uuid.uuid4()))},
        headers=cat.admin(company),
    )
    assert refusal(r) == (422, FIELD, "zoom_account_unknown")


async def test_r_day_9_a_disconnected_account_is_refused(cat: Cat) -> None:
    company, sess = await zoom_session(cat)
    account_id = await cat.zoom_account(company)
    day = await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=body(account_id)
    )
    await cat.zoom_account(company, account_id=account_id, connected=False)  # deauthorized
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(january_2030(3)), zoom=body(account_id)
    )
    assert refusal(r) == (422, FIELD, "zoom_account_disconnected")
    assert "no longer connected" in r.json()["errors"][0]["message"]
    offline = await cat.day(company, sess["id"], start=iso(january_2030(4)))
    r = await cat.client.patch(
        f"/v1/days/{offline['id']}",
        json={"format": "zoom", "zoom": body(account_id)},
        headers=cat.admin(company),
    )
    assert refusal(r) == (422, FIELD, "zoom_account_disconnected")
    # the existing day is not rewritten; an edit of its times keeps its settings
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"start": iso(january_2030(5))}, headers=cat.admin(company)
    )
    assert r.status_code == 200, r.text
    assert r.json()["zoom"]["account_id"] == account_id
    # connected again (a newer version): accepted again
    await cat.zoom_account(company, account_id=account_id)
    await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(6)), zoom=body(account_id)
    )


async def test_r_day_9_an_account_that_needs_reconnecting_is_refused_until_reconnected(
    cat: Cat,
) -> None:
    """The bridge announces that Zoom no longer accepts the account's connection (its refresh
    token was refused): a new zoom day on it is a clear, non-retryable 422 until the same Zoom
    user is connected again."""
    company, sess = await zoom_session(cat)
    account_id = await cat.zoom_account(company)
    day = await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=body(account_id)
    )
    await cat.zoom_account(company, account_id=account_id, needs_reconnect=True)
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(january_2030(3)), zoom=body(account_id)
    )
    assert refusal(r) == (422, FIELD, "zoom_account_needs_reconnect")
    assert "reconnect the Zoom account" in r.json()["errors"][0]["message"]
    assert "retryable" not in r.json()  # waiting does not help: an admin must reconnect
    # the existing day is not rewritten; an edit of its times keeps its settings
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"start": iso(january_2030(5))}, headers=cat.admin(company)
    )
    assert r.status_code == 200, r.text
    # reconnected (a newer version): accepted again
    await cat.zoom_account(company, account_id=account_id)
    await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(6)), zoom=body(account_id)
    )


async def test_r_day_9_r_zoom_2_the_role_is_the_accounts_not_the_clients(cat: Cat) -> None:
    company, sess = await zoom_session(cat)
    participant = await cat.zoom_account(company, "participant")
    administrator = await cat.zoom_account(company, "administrator")
    # a client claiming the administrator role for a participant account is not believed:
    # no automatic recording (R-DAY-9), and the day gets R-ZOOM-2's warnings
    r = await cat.post_day(
        company,
        sess["id"],
        format="zoom",
        start=iso(january_2030(2)),
        zoom=body(participant, account_role="administrator", auto_recording=True),
    )
    assert refusal(r) == (422, "body.zoom.auto_recording", "auto_recording_unavailable")
    day = await cat.day(
        company,
        sess["id"],
        format="zoom",
        start=iso(january_2030(2)),
        zoom=body(participant, account_role="administrator"),
    )
    assert day["zoom"]["account_role"] == "participant"
    assert any("40 minutes" in w for w in day["warnings"])
    assert any("100 people" in w for w in day["warnings"])
    # and the other way round: an administrator account stays one
    day = await cat.day(
        company,
        sess["id"],
        format="zoom",
        start=iso(january_2030(3)),
        zoom=body(administrator, account_role="participant", auto_recording=True),
    )
    assert (day["zoom"]["account_role"], day["zoom"]["auto_recording"]) == ("administrator", True)
    assert day["warnings"] == []


async def test_r_day_9_a_role_change_applies_to_new_days_not_existing_ones(cat: Cat) -> None:
    """Ruling: days keep the role their Zoom settings were given with; new days (and new Zoom
    settings of a day) use the account's current role."""
    company, sess = await zoom_session(cat)
    account_id = await cat.zoom_account(company, "administrator")
    zoom = body(account_id, auto_recording=True)
    day = await cat.day(company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=zoom)
    await cat.zoom_account(company, "participant", account_id=account_id)  # PATCHed in the bridge
    admin = cat.admin(company)
    got = (await cat.client.get(f"/v1/days/{day['id']}", headers=admin)).json()
    assert (got["zoom"]["account_role"], got["zoom"]["auto_recording"]) == ("administrator", True)
    moved = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"start": iso(january_2030(3)), "zoom": zoom}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["zoom"]["account_role"] == "administrator"
    assert moved.json()["warnings"] == []
    # a new day on the account has the participant role
    new = await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(4)), zoom=body(account_id)
    )
    assert new["zoom"]["account_role"] == "participant"
    assert any("40 minutes" in w for w in new["warnings"])
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(january_2030(5)), zoom=zoom
    )
    assert refusal(r) == (422, "body.zoom.auto_recording", "auto_recording_unavailable")
    # new Zoom settings on the old day are checked against the current role
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"zoom": {**zoom, "organizer_user_id": "o2"}}, headers=admin
    )
    assert refusal(r) == (422, "body.zoom.auto_recording", "auto_recording_unavailable")
    r = await cat.client.patch(
        f"/v1/days/{day['id']}",
        json={"zoom": {**zoom, "organizer_user_id": "o2", "auto_recording": False}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["zoom"]["account_role"] == "participant"


async def test_r_day_9_account_messages_are_idempotent_and_stale_ones_ignored(cat: Cat) -> None:
    company, sess = await zoom_session(cat)
    account_id = uuid.uuid4()
    version = time.time_ns() // 1000

    def changed(connected: bool, v: int, role: str = "administrator") -> c.ZoomAccountChanged:
        return messages.zoom_account_changed(
            company=company, account_id=account_id, role=role, connected=connected, version=v
        )

    removed = changed(False, version + 2)
    await cat.apply(removed, removed)  # a duplicate is harmless
    await cat.apply(changed(True, version + 1, "participant"))  # older: arrives late
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=body(str(account_id))
    )
    assert refusal(r) == (422, FIELD, "zoom_account_disconnected")
    await cat.apply(changed(True, version + 3))
    day = await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=body(str(account_id))
    )
    assert day["zoom"]["account_role"] == "administrator"


async def test_r_day_9_account_messages_are_consumed_through_the_broker(
    cat: Cat, rabbit: RabbitNamespace
) -> None:
    """The real path: ZoomAccountChanged published to the broker, as the bridge's outbox relay
    publishes it, reaches catalog (queue, inbox, handler) and the account becomes usable."""
    company, sess = await zoom_session(cat)
    account = messages.zoom_account_changed(
        company=company, role=c.ZoomAccountRole.PARTICIPANT, version=time.time_ns() // 1000
    )
    zoom = body(str(account.account_id))
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=zoom
    )
    assert refusal(r) == (422, FIELD, "zoom_account_unknown")
    await messages.publish(rabbit, account)
    for _ in range(100):
        r = await cat.post_day(
            company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=zoom
        )
        if r.status_code != 422:
            break
        await asyncio.sleep(0.1)
    assert r.status_code == 201, r.text
    assert r.json()["zoom"]["account_role"] == "participant"
