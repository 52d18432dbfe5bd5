"""Company settings, events and sessions: R-CO-1, R-SES-1..8, R-SES-10, isolation, pagination."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from te_shared import contracts as c
from te_testing import messages

Cat = Any


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


UTC = dt.UTC


async def test_r_co_1_settings_defaults_replace_validate_and_announce(cat: Cat) -> None:
    """R-CO-1: defaults, replacement, validation, admin-only, CompanySettingsChanged versions."""
    company = await cat.company()
    r = await cat.client.get("/v1/company/settings", headers=cat.admin(company))
    assert r.json() == {
        "timezone": "Europe/Moscow",
        "locales": ["en"],
        "zoom_enabled": False,
        "training_module_enabled": True,
    }
    body = {"timezone": "Europe/Berlin", "locales": ["en", "de"], "zoom_enabled": True}
    for _ in range(2):
        r = await cat.client.put("/v1/company/settings", json=body, headers=cat.admin(company))
        assert r.status_code == 200
    assert (await cat.client.get("/v1/company/settings", headers=cat.admin(company))).json()[
        "locales"
    ] == ["en", "de"]
    bad = await cat.client.put(
        "/v1/company/settings", json={"timezone": "Mars/Base"}, headers=cat.admin(company)
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.timezone"
    r = await cat.client.get("/v1/company/settings", headers=cat.user(company))
    assert r.status_code == 403
    msgs = await cat.outbox("catalog.company.settings_changed", company_id=company)
    assert [m["version"] for m in msgs] == [1, 2]


async def test_events_create_hidden_patch_state_and_announce(cat: Cat) -> None:
    """Events start hidden; state changes are published with increasing versions."""
    company = await cat.company(locales=["en", "ru"])
    event = await cat.event(company, title={"en": "Python", "ru": "Питон"})
    assert event["state"] == "hidden"
    assert event["title"] == {"en": "Python", "ru": "Питон"}
    plain = await cat.event(company, title="Go")
    assert plain["title"] == {"en": "Go", "ru": "Go"}
    r = await cat.client.patch(
        f"/v1/events/{event['id']}", json={"state": "active"}, headers=cat.admin(company)
    )
    assert r.status_code == 200
    assert r.json()["state"] == "active"
    msgs = await cat.outbox("catalog.event.changed", event_id=event["id"])
    assert [(m["version"], m["state"]) for m in msgs] == [(1, "hidden"), (2, "active")]
    r = await cat.client.post("/v1/events", json={"title": "x"}, headers=cat.user(company))
    assert r.status_code == 403
    r = await cat.client.post("/v1/events", json={"title": {"fr": "x"}}, headers=cat.admin(company))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.title.fr"


async def test_events_list_is_paginated_with_cursor(cat: Cat) -> None:
    company = await cat.company()
    ids = [(await cat.event(company, title=f"E{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await cat.client.get("/v1/events", params=params, headers=cat.admin(company))
        assert r.status_code == 200
        page = r.json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    r = await cat.client.get("/v1/events", params={"cursor": "!!"}, headers=cat.admin(company))
    assert r.status_code == 422


async def test_tenant_isolation_other_company_ids_are_404(cat: Cat) -> None:
    """Every query is scoped by the token's company: another company's ids answer 404."""
    mine, theirs = await cat.company(), await cat.company()
    event = await cat.event(mine)
    sess = await cat.session(mine, event["id"])
    day = await cat.day(mine, sess["id"])
    other = cat.admin(theirs)
    assert (await cat.client.get(f"/v1/events/{event['id']}", headers=other)).status_code == 404
    r = await cat.client.patch(f"/v1/events/{event['id']}", json={"state": "active"}, headers=other)
    assert r.status_code == 404
    r = await cat.client.post(
        f"/v1/events/{event['id']}/sessions", json={"name": "x"}, headers=other
    )
    assert r.status_code == 404
    assert (
        await cat.client.patch(f"/v1/sessions/{sess['id']}", json={}, headers=other)
    ).status_code == 404
    assert (await cat.client.delete(f"/v1/sessions/{sess['id']}", headers=other)).status_code == 404
    assert (await cat.post_day(theirs, sess["id"])).status_code == 404
    assert (
        await cat.client.patch(f"/v1/days/{day['id']}", json={}, headers=other)
    ).status_code == 404
    assert (await cat.client.delete(f"/v1/days/{day['id']}", headers=other)).status_code == 404
    assert (await cat.client.get(f"/v1/sessions/{sess['id']}", headers=other)).status_code == 404
    assert (await cat.client.get(f"/v1/days/{day['id']}", headers=other)).status_code == 404
    # nothing was changed or deleted through the other company's requests
    mine_admin = cat.admin(mine)
    assert (await cat.client.get(f"/v1/sessions/{sess['id']}", headers=mine_admin)).json()[
        "version"
    ] == sess["version"]
    got_day = await cat.client.get(f"/v1/days/{day['id']}", headers=mine_admin)
    assert (got_day.status_code, got_day.json()["version"]) == (200, day["version"])
    r = await cat.client.get("/v1/events", headers=other)
    assert r.json()["items"] == []
    # admin-only endpoints answer 403 to users
    user = cat.user(mine)
    assert (
        await cat.client.patch(f"/v1/sessions/{sess['id']}", json={}, headers=user)
    ).status_code == 403
    assert (await cat.client.delete(f"/v1/days/{day['id']}", headers=user)).status_code == 403
    assert (await cat.client.get("/v1/events", headers=user)).status_code == 403


async def test_r_ses_1_name_required_and_at_most_180_after_trimming(cat: Cat) -> None:
    company = await cat.company()
    event = await cat.event(company)
    url = f"/v1/events/{event['id']}/sessions"
    for bad in ["", "   ", "x" * 181]:
        r = await cat.client.post(url, json={"name": bad}, headers=cat.admin(company))
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "body.name"
    ok = await cat.session(company, event["id"], name="  " + "y" * 180 + "  ")
    assert ok["name"] == {"en": "y" * 180}
    r = await cat.client.patch(
        f"/v1/sessions/{ok['id']}", json={"name": {"en": " "}}, headers=cat.admin(company)
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.name.en"


async def test_r_ses_2_create_sets_every_locale_edit_sets_one(cat: Cat) -> None:
    company = await cat.company(locales=["en", "ru", "de"])
    event = await cat.event(company)
    sess = await cat.session(company, event["id"], name="Daytime")
    assert sess["name"] == {"de": "Daytime", "en": "Daytime", "ru": "Daytime"}
    r = await cat.client.patch(
        f"/v1/sessions/{sess['id']}", json={"name": {"ru": "Днём"}}, headers=cat.admin(company)
    )
    assert r.status_code == 200
    assert r.json()["name"] == {"de": "Daytime", "en": "Daytime", "ru": "Днём"}
    msgs = await cat.outbox("catalog.session.updated", session_id=sess["id"])
    assert msgs[-1]["name"]["ru"] == "Днём"
    assert msgs[-1]["version"] == 2


async def test_r_ses_3_name_unique_per_event_and_locale_case_insensitive(cat: Cat) -> None:
    company = await cat.company(locales=["en", "ru"])
    event, other_event = await cat.event(company), await cat.event(company)
    first = await cat.session(company, event["id"], name="Evening")
    url = f"/v1/events/{event['id']}/sessions"
    r = await cat.client.post(url, json={"name": "  eVENING "}, headers=cat.admin(company))
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"].startswith("body.name")
    # another event may use the same name
    await cat.session(company, other_event["id"], name="Evening")
    # per locale: a name taken in one locale is free in another
    second = await cat.session(company, event["id"], name={"en": "Morning", "ru": "Утро"})
    third = await cat.session(company, event["id"], name={"en": "Утро", "ru": "Вечер"})
    assert third["name"] == {"en": "Утро", "ru": "Вечер"}
    r = await cat.client.patch(
        f"/v1/sessions/{second['id']}", json={"name": {"ru": "evening"}}, headers=cat.admin(company)
    )
    assert r.status_code == 409  # first's ru name is "Evening" (create sets every locale)
    assert r.json()["errors"][0]["field"] == "body.name.ru"
    # the refused rename changed nothing (read back, not the values from before the request)
    got = await cat.client.get(f"/v1/sessions/{second['id']}", headers=cat.admin(company))
    assert got.json()["name"] == {"en": "Morning", "ru": "Утро"}
    got = await cat.client.get(f"/v1/sessions/{first['id']}", headers=cat.admin(company))
    assert got.json()["name"] == {"en": "Evening", "ru": "Evening"}


async def test_r_ses_3_one_name_key_shared_with_the_import(cat: Cat) -> None:
    """R-SES-3 uses te_shared.rules.name_key, the key registration finds an import row's
    session by: inner white space and Unicode width fold too, so two names an import could
    not tell apart cannot both exist."""
    company = await cat.company()
    event = await cat.event(company)
    await cat.session(company, event["id"], name="Evening run")
    url = f"/v1/events/{event['id']}/sessions"
    for same in ("Evening  run", "EVENING\u00a0run", "\uff25vening run"):
        r = await cat.client.post(url, json={"name": same}, headers=cat.admin(company))
        assert r.status_code == 409, same
    ok = await cat.client.post(url, json={"name": "Evening run 2"}, headers=cat.admin(company))
    assert ok.status_code == 201


async def test_r_ses_3_concurrent_creates_of_one_name_one_wins(cat: Cat) -> None:
    """R-SES-3 is enforced by the database too: two concurrent creates, exactly one wins."""
    company = await cat.company()
    event = await cat.event(company)
    url = f"/v1/events/{event['id']}/sessions"
    results = await asyncio.gather(
        *(
            cat.client.post(url, json={"name": name}, headers=cat.admin(company))
            for name in ["Same", "same ", " SAME", "Same"]
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409, 409, 409]


async def test_r_ses_4_timezone_defaults_to_company_and_unknown_refused(cat: Cat) -> None:
    company = await cat.company(timezone="Asia/Tokyo")
    event = await cat.event(company)
    assert (await cat.session(company, event["id"]))["timezone"] == "Asia/Tokyo"
    assert (await cat.session(company, event["id"], timezone="America/New_York"))[
        "timezone"
    ] == "America/New_York"
    r = await cat.client.post(
        f"/v1/events/{event['id']}/sessions",
        json={"name": "x", "timezone": "Nowhere/City"},
        headers=cat.admin(company),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.timezone"
    # an edit is checked the same way
    sess = await cat.session(company, event["id"])
    url = f"/v1/sessions/{sess['id']}"
    for bad in ["Nowhere/City", "", "../../etc/passwd"]:
        r = await cat.client.patch(url, json={"timezone": bad}, headers=cat.admin(company))
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "body.timezone"
    got = await cat.client.get(url, headers=cat.admin(company))
    assert got.json()["timezone"] == "Asia/Tokyo"
    r = await cat.client.patch(url, json={"timezone": "Europe/Paris"}, headers=cat.admin(company))
    assert (r.status_code, r.json()["timezone"]) == (200, "Europe/Paris")


async def test_r_ses_5_registration_end_only_for_dated_events(cat: Cat) -> None:
    company = await cat.company()
    undated = await cat.event(company, dated=False)
    sess = await cat.session(company, undated["id"])
    assert sess["registration_end"] is None
    r = await cat.client.post(
        f"/v1/events/{undated['id']}/sessions",
        json={"name": "x", "registration_end": "2030-01-01T10:00:00+00:00"},
        headers=cat.admin(company),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.registration_end"
    msgs = await cat.outbox("catalog.session.created", session_id=sess["id"])
    assert msgs[0]["registration_end"] is None
    dated = await cat.session(company, (await cat.event(company))["id"])
    assert dated["registration_end"] is not None


async def test_r_ses_6_default_registration_end_next_day_1159_local(cat: Cat, pin_now: Any) -> None:
    """R-SES-6: the spec's example, across midnight (UTC vs Moscow) and across a DST change."""
    company = await cat.company()
    event = await cat.event(company)
    cases = [
        # spec example: created 2024-01-01 08:59 Moscow -> 2024-01-02 11:59 Moscow
        ("Europe/Moscow", dt.datetime(2024, 1, 1, 5, 59, tzinfo=UTC), "2024-01-02T08:59:00+00:00"),
        # 22:30 UTC is already 01:30 on Jan 2 in Moscow: the next day is Jan 3
        ("Europe/Moscow", dt.datetime(2024, 1, 1, 22, 30, tzinfo=UTC), "2024-01-03T08:59:00+00:00"),
        # New York springs forward on 2024-03-10: 11:59 EDT is 15:59 UTC (not 16:59)
        (
            "America/New_York",
            dt.datetime(2024, 3, 9, 15, 0, tzinfo=UTC),
            "2024-03-10T15:59:00+00:00",
        ),
        # Berlin falls back on 2024-10-27: 11:59 CET is 10:59 UTC
        (
            "Europe/Berlin",
            dt.datetime(2024, 10, 26, 20, 0, tzinfo=UTC),
            "2024-10-27T10:59:00+00:00",
        ),
    ]
    for tz, now, expected in cases:
        pin_now(now)
        sess = await cat.session(company, event["id"], timezone=tz)
        assert parse(sess["registration_end"]) == parse(expected), (tz, now)


async def test_r_ses_7_moving_registration_end_past_first_day_is_refused(cat: Cat) -> None:
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"], registration_end="2030-01-01T09:00:00+00:00")
    await cat.day(
        company, sess["id"], start="2030-01-05T09:00:00+00:00", end="2030-01-05T10:00:00+00:00"
    )
    await cat.day(
        company, sess["id"], start="2030-01-03T09:00:00+00:00", end="2030-01-03T10:00:00+00:00"
    )
    url = f"/v1/sessions/{sess['id']}"
    for value in ["2030-01-03T09:00:00+00:00", "2030-01-04T00:00:00+03:00"]:
        r = await cat.client.patch(
            url, json={"registration_end": value}, headers=cat.admin(company)
        )
        assert r.status_code == 422
        err = r.json()
        assert err["errors"][0] == {
            "field": "body.registration_end",
            "message": 'The value of "Registration end" should be less than the value of '
            '"Start of the first day"',
            "code": "registration_end_after_first_day",
        }
    r = await cat.client.patch(
        url, json={"registration_end": "2030-01-03T08:59:00+00:00"}, headers=cat.admin(company)
    )
    assert r.status_code == 200


async def test_r_ses_8_limit_carried_only_when_enabled_whatever_the_state(cat: Cat) -> None:
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"], limit_enabled=True, participant_limit=12)
    assert (sess["limit_enabled"], sess["participant_limit"]) == (True, 12)
    for state in ["hidden", "active"]:
        await cat.client.patch(
            f"/v1/events/{event['id']}", json={"state": state}, headers=cat.admin(company)
        )
        got = (await cat.client.get(f"/v1/events/{event['id']}", headers=cat.admin(company))).json()
        assert got["sessions"][0]["participant_limit"] == 12
    r = await cat.client.patch(
        f"/v1/sessions/{sess['id']}", json={"limit_enabled": False}, headers=cat.admin(company)
    )
    assert r.json()["participant_limit"] is None
    msgs = await cat.outbox("catalog.session.updated", session_id=sess["id"])
    assert msgs[-1]["limit_enabled"] is False
    assert msgs[-1]["participant_limit"] is None
    bodies: list[dict[str, object]] = [
        {"limit_enabled": True, "participant_limit": 0},
        {"limit_enabled": True},
    ]
    for body in bodies:
        r = await cat.client.post(
            f"/v1/events/{event['id']}/sessions",
            json={"name": uuid.uuid4().hex, **body},
            headers=cat.admin(company),
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"].endswith("participant_limit")


async def test_r_ses_10_users_see_open_sessions_first_then_closed_newest_first(
    cat: Cat, pin_now: Any
) -> None:
    company = await cat.company()
    event = await cat.event(company)
    pin_now(dt.datetime(2030, 1, 10, tzinfo=UTC))
    ids = {}
    for name, reg_end, day in [
        ("closed-old", "2030-01-01T00:00:00+00:00", "2030-01-20T10:00:00+00:00"),
        ("open-late", "2030-01-15T00:00:00+00:00", "2030-01-25T10:00:00+00:00"),
        ("closed-new", "2030-01-05T00:00:00+00:00", "2030-01-06T10:00:00+00:00"),
        ("open-early", "2030-01-12T00:00:00+00:00", "2030-01-13T10:00:00+00:00"),
    ]:
        s = await cat.session(company, event["id"], name=name, registration_end=reg_end)
        await cat.day(company, s["id"], start=day, confirm=True)
        ids[s["id"]] = name
    r = await cat.client.get(f"/v1/events/{event['id']}", headers=cat.user(company))
    assert r.status_code == 403  # users read events through registration (access rules)
    r = await cat.client.get(
        f"/v1/events/{event['id']}", params={"view": "user"}, headers=cat.admin(company)
    )
    assert [ids[s["id"]] for s in r.json()["sessions"]] == [
        "open-early",
        "open-late",
        "closed-new",
        "closed-old",
    ]
    # admins: stable order, sessions by first day's start
    r = await cat.client.get(f"/v1/events/{event['id']}", headers=cat.admin(company))
    assert [ids[s["id"]] for s in r.json()["sessions"]] == [
        "closed-new",
        "open-early",
        "closed-old",
        "open-late",
    ]


async def test_session_delete_cancels_days_and_announces(cat: Cat) -> None:
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"], waitlist_enabled=True)
    name = sess["name"]["en"]
    day = await cat.day(company, sess["id"])
    created = await cat.outbox("catalog.session.created", session_id=sess["id"])
    assert created[0]["waitlist_enabled"] is True
    assert created[0]["timezone"] == "Europe/Moscow"
    r = await cat.client.delete(f"/v1/sessions/{sess['id']}", headers=cat.admin(company))
    assert r.status_code == 204
    assert (
        await cat.client.get(f"/v1/days/{day['id']}", headers=cat.admin(company))
    ).status_code == 404
    cancelled = (await cat.outbox("catalog.day.cancelled", day_id=day["id"]))[0]
    assert cancelled["version"] == 2
    # the day as it last was: times, time zone and topic (an offline day has no zoom settings)
    assert parse(cancelled["start"]) == parse(day["start"])
    assert parse(cancelled["end"]) == parse(day["end"])
    assert (cancelled["timezone"], cancelled["topic"]) == ("Europe/Moscow", f"Python — {name}")
    assert (cancelled["format"], cancelled["zoom"]) == ("offline", None)
    assert (await cat.outbox("catalog.session.deleted", session_id=sess["id"]))[0]["version"] == 2
    # the name is free again
    await cat.session(company, event["id"], name=sess["name"]["en"])


async def test_bad_input_is_refused_with_problem_details_never_500(cat: Cat) -> None:
    """R-ERR-1 for catalog's bodies: NUL characters, huge numbers, far dates, unknown fields."""
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"])
    admin = cat.admin(company)
    cases = [
        ("post", "/v1/events", {"title": "a\x00b"}),
        ("post", "/v1/events", {"title": "x", "colour": "red"}),
        ("post", f"/v1/events/{event['id']}/sessions", {"name": {"en": "a\x00"}}),
        (
            "post",
            f"/v1/events/{event['id']}/sessions",
            {"name": "big", "limit_enabled": True, "participant_limit": 10**12},
        ),
        (
            "post",
            f"/v1/events/{event['id']}/sessions",
            {"name": "far", "registration_end": "9999-12-31T23:00:00+00:00"},
        ),
        ("post", f"/v1/sessions/{sess['id']}/days", {"format": "offline", "address": "\x00"}),
        ("post", f"/v1/sessions/{sess['id']}/days", {"format": "online", "url": 5}),
        ("patch", f"/v1/sessions/{sess['id']}", {"registration_end": None}),
        ("put", "/v1/company/settings", {"locales": ["en-" + "-".join(["abcdefgh"] * 6)]}),
    ]
    for method, url, body in cases:
        r = await cat.client.request(method, url, json=body, headers=admin)
        assert r.status_code == 422, (url, body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"], r.text
    r = await cat.client.get("/v1/events/not-a-uuid", headers=admin)
    assert r.status_code == 422


def enrollment(
    company: str, event: dict[str, Any], sess: dict[str, Any], eid: uuid.UUID, status: str, v: int
) -> Any:
    from te_shared import contracts as c

    return messages.enrollment_changed(
        company=company,
        enrollment_id=eid,
        event_id=uuid.UUID(event["id"]),
        session_id=uuid.UUID(sess["id"]),
        user_id=f"u-{eid.hex[:4]}",
        email=None,
        status=c.EnrollmentStatus(status),
        version=v,
    )


async def test_r_ses_8_seats_taken_and_left_from_registration_messages(cat: Cat) -> None:
    """R-SES-8: with the limit on, reads carry seats taken/left (registration's enrollments)."""
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"], limit_enabled=True, participant_limit=3)
    assert (sess["seats_taken"], sess["seats_left"]) == (0, 3)
    a, b, w = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await cat.apply(
        enrollment(company, event, sess, a, "approved", 1),
        enrollment(company, event, sess, b, "cancelled", 2),  # newer than the one below
        enrollment(company, event, sess, b, "pending", 1),  # stale: ignored
        enrollment(company, event, sess, w, "waitlisted", 1),  # holds no seat
    )
    got = (await cat.client.get(f"/v1/sessions/{sess['id']}", headers=cat.admin(company))).json()
    assert (got["seats_taken"], got["seats_left"]) == (1, 2)
    r = await cat.client.patch(
        f"/v1/sessions/{sess['id']}", json={"limit_enabled": False}, headers=cat.admin(company)
    )
    assert (r.json()["seats_taken"], r.json()["seats_left"]) == (None, None)


async def test_r_ses_9_lowering_the_limit_below_seats_taken_is_refused(cat: Cat) -> None:
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"], limit_enabled=True, participant_limit=5)
    await cat.apply(
        *(enrollment(company, event, sess, uuid.uuid4(), "approved", 1) for _ in range(3))
    )
    url = f"/v1/sessions/{sess['id']}"
    r = await cat.client.patch(url, json={"participant_limit": 2}, headers=cat.admin(company))
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert err["field"] == "body.participant_limit"
    assert err["message"] == "The limit cannot be lower than the 3 seats already taken."
    r = await cat.client.patch(url, json={"participant_limit": 3}, headers=cat.admin(company))
    assert r.status_code == 200
    assert r.json()["seats_left"] == 0
    # enabling a limit below the seats already taken is refused too
    await cat.client.patch(url, json={"limit_enabled": False}, headers=cat.admin(company))
    r = await cat.client.patch(
        url, json={"limit_enabled": True, "participant_limit": 1}, headers=cat.admin(company)
    )
    assert r.status_code == 422


def _cursor(value: Any) -> str:
    import base64
    import json

    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode()


async def test_events_list_malformed_cursors_are_422_naming_the_cursor(cat: Cat) -> None:
    """R-ERR-1: whatever a client passes as `cursor`, the answer is a 422 naming `query.cursor`."""
    company = await cat.company()
    await cat.event(company)
    some_id = str(uuid.uuid4())
    bad = [
        "!!",  # not base64
        "YQ",  # bad padding
        _cursor(b"\xff\xfe\x00"),  # not UTF-8
        _cursor(b"not json"),
        _cursor({"created": "2024-01-01T00:00:00+00:00"}),  # not a pair
        _cursor(["2024-01-01T00:00:00+00:00"]),
        _cursor(["2024-01-01T00:00:00+00:00", some_id, "x"]),
        _cursor(["2024-01-01T00:00:00+00:00", 5]),  # the id is a number
        _cursor([20240101, some_id]),  # the time is a number
        _cursor(["2024-01-01T00:00:00", some_id]),  # a time with no offset
        _cursor(["0001-01-01T00:00:00+01:00", some_id]),  # before year 1 in UTC
        _cursor(["9999-12-31T23:00:00-05:00", some_id]),  # after year 9999 in UTC
        _cursor(["yesterday", some_id]),
        _cursor(["2024-01-01T00:00:00+00:00", "not-a-uuid"]),
        _cursor(None),
    ]
    for cursor in bad:
        r = await cat.client.get(
            "/v1/events", params={"cursor": cursor}, headers=cat.admin(company)
        )
        assert r.status_code == 422, (cursor, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == "query.cursor", cursor
    # a well-formed cursor with another offset is read as the same instant
    r = await cat.client.get(
        "/v1/events",
        params={"cursor": _cursor(["2000-01-01T03:00:00+03:00", some_id])},
        headers=cat.admin(company),
    )
    assert r.status_code == 200
    assert len(r.json()["items"]) == 1


async def test_r_co_1_locales_may_not_be_empty(cat: Cat) -> None:
    """R-CO-1: `locales` is a non-empty list."""
    company = await cat.company()
    r = await cat.client.put(
        "/v1/company/settings", json={"locales": []}, headers=cat.admin(company)
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.locales"
    got = await cat.client.get("/v1/company/settings", headers=cat.admin(company))
    assert got.json()["locales"] == ["en"]


async def test_r_co_1_first_concurrent_settings_puts_all_succeed(cat: Cat) -> None:
    """R-CO-1: a company's first settings written by several admins at once (no row yet to
    lock): every PUT answers 200 and the announcements get distinct versions 1..n."""
    company = f"co-{uuid.uuid4().hex[:10]}"  # never configured
    zones = ["Europe/Berlin", "Asia/Tokyo", "America/New_York", "Europe/Paris", "Asia/Dubai"]
    results = await asyncio.gather(
        *(
            cat.client.put(
                "/v1/company/settings", json={"timezone": tz}, headers=cat.admin(company)
            )
            for tz in zones
        )
    )
    assert [r.status_code for r in results] == [200] * len(zones), [r.text for r in results]
    msgs = await cat.outbox("catalog.company.settings_changed", company_id=company)
    assert sorted(m["version"] for m in msgs) == list(range(1, len(zones) + 1))
    last = max(msgs, key=lambda m: m["version"])
    got = await cat.client.get("/v1/company/settings", headers=cat.admin(company))
    assert got.json()["timezone"] == last["timezone"]  # the newest version is what is stored


async def test_r_ses_1_a_name_whose_case_fold_is_longer_than_180_fits(cat: Cat) -> None:
    """R-SES-1/R-SES-3: 180 x "ß" is a valid name; its key (case fold "ss" x 180) is stored whole,
    so 180 x "ẞ" (capital sharp s, the same fold) is the same name."""
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"], name="ß" * 180)
    assert sess["name"] == {"en": "ß" * 180}
    r = await cat.client.post(
        f"/v1/events/{event['id']}/sessions",
        json={"name": "ẞ" * 180},
        headers=cat.admin(company),
    )
    assert r.status_code == 409
    assert r.json()["code"] == "session_name_taken"
    renamed = await cat.client.patch(
        f"/v1/sessions/{sess['id']}", json={"name": "ﬃ" * 180}, headers=cat.admin(company)
    )  # "ﬃ" folds to three letters: the longest key a valid name can have
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == {"en": "ﬃ" * 180}


async def test_r_ses_3_the_database_refuses_a_duplicate_name_key(cat: Cat) -> None:
    """R-SES-3 is enforced by the database itself, not only by the service's check and the
    event lock: a second row with the same (event, locale, key) written directly is refused."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from catalog.models import SessionName, TrainingSession
    from te_shared.db import unit_of_work

    company = await cat.company()
    event = await cat.event(company)
    await cat.session(company, event["id"], name="Evening")
    factory = cat.app.state.runtime.session_factory()
    event_id = uuid.UUID(event["id"])

    async def add_named(key: str) -> None:
        async with unit_of_work(factory) as session:
            row = TrainingSession(company_id=company, event_id=event_id, timezone="UTC", version=1)
            session.add(row)
            await session.flush()
            session.add(
                SessionName(
                    session_id=row.id, locale="en", event_id=event_id, name=key, name_key=key
                )
            )

    await add_named("morning")  # the same insert with a free key is accepted
    with pytest.raises(IntegrityError) as caught:
        await add_named("evening")
    assert "name_key" in str(caught.value)  # the unique index, not some other constraint


async def test_r_ses_3_concurrent_renames_to_one_name_one_wins(cat: Cat) -> None:
    """R-SES-3 when the event lock is not taken (renames lock only their own session): two
    sessions renamed to the same name at once, one wins."""
    company = await cat.company()
    event = await cat.event(company)
    a = await cat.session(company, event["id"], name="A")
    b = await cat.session(company, event["id"], name="B")
    for round_ in range(3):
        name = f"Same {round_}"
        results = await asyncio.gather(
            *(
                cat.client.patch(
                    f"/v1/sessions/{s['id']}", json={"name": name}, headers=cat.admin(company)
                )
                for s in (a, b)
            )
        )
        assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
        got = [
            (await cat.client.get(f"/v1/sessions/{s['id']}", headers=cat.admin(company))).json()
            for s in (a, b)
        ]
        assert sum(g["name"]["en"] == name for g in got) == 1


async def test_r_ses_3_a_name_taken_after_the_check_is_a_409_from_the_database(cat: Cat) -> None:
    """R-SES-3: a rename whose check passed while another transaction was taking the name
    (not yet committed) is stopped by the unique index: 409, not 500 (PostgreSQL; SQLite
    serialises the writers, so the check itself sees the name)."""
    import pytest
    from sqlalchemy import text, update

    from catalog.models import SessionName
    from te_testing.infra import use_sqlite

    if use_sqlite():
        pytest.skip("needs concurrent writers (PostgreSQL)")
    company = await cat.company()
    event = await cat.event(company)
    a = await cat.session(company, event["id"], name="Alpha")
    b = await cat.session(company, event["id"], name="Beta")
    factory = cat.app.state.runtime.session_factory()
    async with factory() as held, factory() as probe:
        async with held.begin():  # b takes "Gamma" and holds the transaction open
            await held.execute(
                update(SessionName)
                .where(SessionName.session_id == uuid.UUID(b["id"]))
                .values(name="Gamma", name_key="gamma")
            )
            rename = asyncio.create_task(
                cat.client.patch(
                    f"/v1/sessions/{a['id']}", json={"name": " GAMMA"}, headers=cat.admin(company)
                )
            )
            for _ in range(600):  # until the rename waits on the index entry b holds
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
                await probe.rollback()
                if waiting:
                    break
                await asyncio.sleep(0.05)
    r = await rename
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "session_name_taken"
    assert r.json()["errors"][0]["field"] == "body.name"  # from the IntegrityError, not the check


async def test_admin_only_endpoints_answer_403_to_users_and_change_nothing(cat: Cat) -> None:
    """Admin-only endpoints answer 403 to the user role (settings, events, sessions, days)."""
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"])
    day = await cat.day(company, sess["id"])
    user = cat.user(company)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("put", "/v1/company/settings", {"timezone": "Asia/Tokyo"}),
        ("post", f"/v1/events/{event['id']}/sessions", {"name": "by a user"}),
        ("post", f"/v1/sessions/{sess['id']}/days", {"format": "offline", "address": "x"}),
        ("patch", f"/v1/events/{event['id']}", {"state": "active"}),
        ("patch", f"/v1/days/{day['id']}", {"address": "by a user"}),
    ]
    for method, url, body in requests:
        r = await cat.client.request(method, url, json=body, headers=user)
        assert r.status_code == 403, (method, url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    admin = cat.admin(company)
    assert (await cat.client.get("/v1/company/settings", headers=admin)).json()[
        "timezone"
    ] == "Europe/Moscow"
    got = (await cat.client.get(f"/v1/events/{event['id']}", headers=admin)).json()
    assert got["state"] == "hidden"
    assert [s["id"] for s in got["sessions"]] == [sess["id"]]
    assert [d["address"] for d in got["sessions"][0]["days"]] == ["Main st. 1"]


async def test_two_admins_editing_at_once_the_second_learns_of_the_first(cat: Cat) -> None:
    """Conditional edits (RFC 9110): what an admin reads carries an ETag (the version); a
    PATCH or DELETE with If-Match goes ahead only while the resource is still at that version,
    else 412 `version_mismatch` naming the version now, and nothing changes or is announced.
    Without If-Match, an edit goes ahead as before."""
    co = await cat.company()
    ev = await cat.event(co)
    path = f"/v1/events/{ev['id']}"
    read = await cat.client.get(path, headers=cat.admin(co))
    assert read.headers["etag"] == f'"{ev["version"]}"'
    first = await cat.client.patch(
        path,
        json={"title": "Python I"},
        headers={**cat.admin(co), "If-Match": read.headers["etag"]},
    )
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == f'"{ev["version"] + 1}"'
    announced = len(await cat.outbox(c.EventChanged.routing_key, event_id=ev["id"]))
    second = await cat.client.patch(
        path,
        json={"title": "Python 2"},
        headers={**cat.admin(co), "If-Match": read.headers["etag"]},
    )
    assert second.status_code == 412, second.text
    assert (second.json()["code"], second.json()["version"]) == (
        "version_mismatch",
        ev["version"] + 1,
    )
    after = (await cat.client.get(path, headers=cat.admin(co))).json()
    assert (after["title"], after["version"]) == ({"en": "Python I"}, ev["version"] + 1)
    assert len(await cat.outbox(c.EventChanged.routing_key, event_id=ev["id"])) == announced
    current = first.headers["etag"]
    for tag in ("{}", "W/{}", '"99", *'):  # the tag as read, weak, or any version
        r = await cat.client.patch(
            path,
            json={"state": "hidden"},
            headers={**cat.admin(co), "If-Match": tag.format(current)},
        )
        assert r.status_code == 200, (tag, r.text)
        current = r.headers["etag"]

    sess = await cat.session(co, ev["id"])
    spath = f"/v1/sessions/{sess['id']}"
    stale = f'"{sess["version"]}"'
    assert (await cat.client.get(spath, headers=cat.admin(co))).headers["etag"] == stale
    moved = await cat.client.patch(spath, json={"name": "Evening"}, headers=cat.admin(co))
    assert moved.status_code == 200, moved.text
    gone = await cat.client.delete(spath, headers={**cat.admin(co), "If-Match": stale})
    assert gone.status_code == 412
    assert (await cat.client.get(spath, headers=cat.admin(co))).status_code == 200
    day = await cat.day(co, sess["id"])
    dpath = f"/v1/days/{day['id']}"
    dtag = (await cat.client.get(dpath, headers=cat.admin(co))).headers["etag"]
    assert dtag == f'"{day["version"]}"'
    r = await cat.client.patch(
        dpath, json={"address": "Hall 2"}, headers={**cat.admin(co), "If-Match": '"0"'}
    )
    assert r.status_code == 412
    r = await cat.client.delete(dpath, headers={**cat.admin(co), "If-Match": dtag})
    assert r.status_code == 204


async def test_a_new_resource_says_where_it_is_read_and_its_version(cat: Cat) -> None:
    """RFC 9110: a 201 carries `Location` (where the new event, session or day is read) and,
    as every read does, its `ETag`, so the admin panel edits what it has just made with
    `If-Match` without reading it again."""
    co = await cat.company()
    made = [await cat.client.post("/v1/events", json={"title": "Rust"}, headers=cat.admin(co))]
    made.append(
        await cat.client.post(
            f"/v1/events/{made[0].json()['id']}/sessions",
            json={"name": "Daytime"},
            headers=cat.admin(co),
        )
    )
    made.append(await cat.post_day(co, made[1].json()["id"]))
    for answer, kind in zip(made, ("events", "sessions", "days"), strict=True):
        assert answer.status_code == 201, answer.text
        location = answer.headers["location"]
        assert location == f"/v1/{kind}/{answer.json()['id']}"
        read = await cat.client.get(location, headers=cat.admin(co))
        assert read.status_code == 200, read.text
        assert answer.headers["etag"] == read.headers["etag"] == f'"{answer.json()["version"]}"'
    edited = await cat.client.patch(
        made[0].headers["location"],
        json={"requires_approval": True},
        headers={**cat.admin(co), "If-Match": made[0].headers["etag"]},
    )
    assert edited.status_code == 200, edited.text
