"""What a client sends to catalog is clean text or a 422 naming the field (R-ERR-1)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from .conftest import Cat


def at(days: float) -> str:
    base = dt.datetime.now(dt.UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    return (base + dt.timedelta(days=days)).isoformat()


async def _raw(cat: Cat, method: str, url: str, company: str, body: bytes) -> Any:
    """A JSON body as raw bytes: a lone surrogate can only travel as its JSON escape."""
    headers = {**cat.admin(company), "content-type": "application/json"}
    return await cat.client.request(method, url, content=body, headers=headers)


SURROGATE_TEXTS = [
    (b'"a\\ud800b"', "{field}"),
    (b'{"en": "a\\udfffb"}', "{field}.en"),
    (b'{"\\ud800": "x"}', "{field}."),  # a key: named by its place in the object
]


@pytest.mark.parametrize(("text", "where"), SURROGATE_TEXTS, ids=["string", "value", "key"])
async def test_lone_surrogates_in_titles_and_names_are_422(
    cat: Cat, text: bytes, where: str
) -> None:
    """F6: the union-typed title and name (a string or ``{locale: text}``) are clean text in
    either form, on create and on edit: a 422 naming the field, never a 500."""
    company = await cat.company(locales=["en", "ru"])
    event = await cat.event(company)
    sess = await cat.session(company, event["id"])
    attempts = [
        ("POST", "/v1/events", b'{"title": %s}', "body.title"),
        ("PATCH", f"/v1/events/{event['id']}", b'{"title": %s}', "body.title"),
        ("POST", f"/v1/events/{event['id']}/sessions", b'{"name": %s}', "body.name"),
        ("PATCH", f"/v1/sessions/{sess['id']}", b'{"name": %s}', "body.name"),
    ]
    for method, url, template, field in attempts:
        r = await _raw(cat, method, url, company, template % text)
        assert r.status_code == 422, (method, url, r.text)
        fields = [e["field"] for e in r.json()["errors"]]
        assert any(f.startswith(where.format(field=field)) for f in fields), fields
        assert all(not f.startswith(f"{field}.str") for f in fields), fields  # no union branch
    got = await cat.client.get(f"/v1/events/{event['id']}", headers=cat.admin(company))
    assert got.json()["title"] == {"en": "Python", "ru": "Python"}
    assert got.json()["sessions"][0]["name"] == sess["name"]


async def test_every_text_field_refuses_surrogates_and_controls(cat: Cat) -> None:
    """Siblings of F6: time zones, locales, the organizer, the address and the link."""
    company = await cat.company(zoom_enabled=True)
    event = await cat.event(company)
    sess = await cat.session(company, event["id"])
    day = await cat.day(company, sess["id"], start=at(3))
    account = await cat.zoom_account(company)
    attempts = [
        ("PUT", "/v1/company/settings", b'{"timezone": "Europe/Mos\\ud800cow"}', "body.timezone"),
        ("PUT", "/v1/company/settings", b'{"locales": ["en", "r\\ud800u"]}', "body.locales.1"),
        (
            "POST",
            f"/v1/events/{event['id']}/sessions",
            b'{"name": "S", "timezone": "\\udc00"}',
            "body.timezone",
        ),
        ("PATCH", f"/v1/sessions/{sess['id']}", b'{"timezone": "UTC\\u0007"}', "body.timezone"),
        ("PATCH", f"/v1/days/{day['id']}", b'{"address": "Hall \\ud800"}', "body.address"),
        ("PATCH", f"/v1/days/{day['id']}", b'{"address": "Hall \\u0007"}', "body.address"),
        (
            "PATCH",
            f"/v1/days/{day['id']}",
            b'{"format": "online", "url": "https://x.example/\\ud800"}',
            "body.url",
        ),
        (
            "PATCH",
            f"/v1/days/{day['id']}",
            b'{"format": "zoom", "zoom": {"account_id": "%s", "organizer_user_id": "o\\ud800"}}'
            % account.encode(),
            "body.zoom.organizer_user_id",
        ),
    ]
    for method, url, body, field in attempts:
        r = await _raw(cat, method, url, company, body)
        assert r.status_code == 422, (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.text)
    got = await cat.client.get(f"/v1/days/{day['id']}", headers=cat.admin(company))
    assert got.json()["address"] == day["address"]


async def test_organizer_ids_are_bounded_like_token_subjects(cat: Cat) -> None:
    """An organizer is a platform user: at most 100 characters, as a token's ``sub`` (and as the
    zoom bridge stores it), so a longer one is refused here rather than failing there."""
    company = await cat.company(zoom_enabled=True)
    event = await cat.event(company)
    sess = await cat.session(company, event["id"])
    zoom = await cat.zoom(company, organizer_user_id="o" * 101)
    r = await cat.post_day(company, sess["id"], format="zoom", start=at(3), zoom=zoom)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.zoom.organizer_user_id"
    day = await cat.day(
        company,
        sess["id"],
        format="zoom",
        start=at(3),
        zoom={**zoom, "organizer_user_id": "o" * 100},
    )
    assert day["zoom"]["organizer_user_id"] == "o" * 100


async def test_unknown_fields_are_named(cat: Cat) -> None:
    company = await cat.company()
    r = await cat.client.post(
        "/v1/events", json={"title": "x", "titel": "y"}, headers=cat.admin(company)
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "field": "body.titel",
            "message": "Extra inputs are not permitted",
            "code": "extra_forbidden",
        }
    ]
