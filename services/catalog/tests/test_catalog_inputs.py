"""What a client sends to catalog is clean text or a 422 naming the field (R-ERR-1), and R-DAY-2's
places hold however they are written: the address checks undo HTML character references,
percent-encoding and invisible characters and refuse markup; a link is a well-formed absolute
http(s) URL."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.validation import address_refusal, link_refusal
from te_testing.clock import days_from_now, iso

from .conftest import Cat

SAFE_ADDRESSES = [
    "Data: room 5",
    "Floor 3 — see https://maps.example/x",
    "Room <5>",
    "a < b, x <= y, Room 5 <- left",
    "AT&amp;T building",
    "50% of the hall, room 5",
    "Main hall, map https://maps.example.com/hq or mailto:desk@example.com",
    "Line 1\nLine 2\r\nLine 3\twing B",
    "Улица Ленина, 5",
]
SCRIPT_ADDRESSES = [
    "java&#115;cript:alert(1)",
    "javascript&colon;alert(1)",
    "&#x6A;avascript:alert(1)",
    "&#106&#97&#118&#97script:alert(1)",  # references without semicolons
    "&amp;#106;avascript:alert(1)",  # encoded twice
    "java&#9;script:alert(1)",
    "java&#1;script:alert(1)",
    "javascript%3Aalert(1)",
    "%6A%61vascript:alert(1)",
    "java%09script:alert(1)",
    "java\u200bscript:alert(1)",  # zero-width space
    "java\u00adscript:alert(1)",  # soft hyphen
    "Room 5\njavascript:alert(1)",
    "\uff4a\uff41\uff56\uff41\uff53\uff43\uff52\uff49\uff50\uff54\uff1aalert(1)",  # full-width
    "v&#98;script:msgbox(1)",
    "data&colon;text/html,x",
    "&" + "amp;" * 30 + "x",  # encoded over and over
]
MARKUP_ADDRESSES = [
    "<img src=x onerror=alert(1)>",
    "Hall B <b>upstairs</b>",
    "</div>",
    "<!-- hidden -->",
    "<?xml version='1.0'?>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;svg onload=alert(1)&#62;",
    "%3Cimg src=x onerror=alert(1)%3E",
    "\uff1cimg src=x\uff1e",  # full-width angle brackets
]


class TestAddressRefusal:
    @pytest.mark.parametrize("address", SAFE_ADDRESSES)
    def test_plain_text_and_web_links_are_kept(self, address: str) -> None:
        assert address_refusal(address) is None

    @pytest.mark.parametrize("address", SCRIPT_ADDRESSES)
    def test_script_links_are_refused_however_encoded(self, address: str) -> None:
        refusal = address_refusal(address)
        assert refusal is not None
        assert refusal.code == "unsafe_link"

    @pytest.mark.parametrize("address", MARKUP_ADDRESSES)
    def test_markup_is_refused(self, address: str) -> None:
        refusal = address_refusal(address)
        assert refusal is not None
        assert refusal.code == "markup"


GOOD_LINKS = [
    "https://ok.example",
    "https://us02web.zoom.us/j/123?pwd=abc#success",
    "HTTPS://Example.COM:443/",
    "http://localhost:8080/room",
    "https://1.2.3.4/x",
    "https://[::1]:8443/room",
    "https://пример.рф/путь",
    "https://example.com/a%20b",
    "https://example.com./",
]
BAD_LINKS = {
    "https://meet.example/a b": "spaces",
    "https://meet.example/\r\nSet-Cookie:x": "spaces",
    "https://meet.example/\tx": "spaces",
    'https://meet.example/"onmouseover="alert(1)': "spaces",
    "https://meet.example/'x": "spaces",
    "https://meet.example/<script>alert(1)</script>": "spaces",
    "https://meet.example\\@evil.example/": "spaces",
    "https://meet.example/\u200bx": "spaces",
    "https://meet.example/%zz": "'%'",
    "https://user:pw@meet.example/": "user name",
    "https://meet.example@evil.example/": "user name",
    "https://meet.example:0/": "port",
    "https://meet.example:65536/": "port",
    "https://meet.example:http/": "port",
    "https://-meet.example/": "host",
    "https://meet..example/": "host",
    "https://meet_room.example/": "host",
    "https://" + "a" * 64 + ".example/": "host",
    "https://" + ".".join(["abcdefgh"] * 30) + "/": "host",
    "https://999.1.1.1/": "host",
    "https://1.2.3/": "host",
    "https://[fe80::1%25eth0]/": "host",
    "http://[::1]x/": "host",
    "javascript:alert(1)": "absolute http or https",
    "//no-scheme.example": "absolute http or https",
    "http://[x": "absolute http or https",
    "https://" + "a" * 2000: "absolute http or https",
}


class TestLinkRefusal:
    @pytest.mark.parametrize("url", GOOD_LINKS)
    def test_well_formed_links_are_accepted(self, url: str) -> None:
        assert link_refusal(url) is None

    @pytest.mark.parametrize(("url", "reason"), list(BAD_LINKS.items()), ids=range(len(BAD_LINKS)))
    def test_malformed_links_are_refused(self, url: str, reason: str) -> None:
        refusal = link_refusal(url)
        assert refusal is not None
        assert refusal.code == "invalid_url"
        assert reason in refusal.message


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
    day = await cat.day(company, sess["id"], start=iso(days_from_now(3)))
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
    r = await cat.post_day(
        company, sess["id"], format="zoom", start=iso(days_from_now(3)), zoom=zoom
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.zoom.organizer_user_id"
    day = await cat.day(
        company,
        sess["id"],
        format="zoom",
        start=iso(days_from_now(3)),
        zoom={**zoom, "organizer_user_id": "o" * 100},
    )
    assert day["zoom"]["organizer_user_id"] == "o" * 100


@pytest.mark.parametrize(
    ("address", "code"),
    [(a, "unsafe_link") for a in SCRIPT_ADDRESSES[:4]]
    + [(a, "markup") for a in MARKUP_ADDRESSES[:2]],
)
async def test_r_day_2_encoded_script_links_and_markup_in_addresses_are_422(
    cat: Cat, address: str, code: str
) -> None:
    """F8a: on create and on edit (R-DAY-7); nothing is stored."""
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"])
    r = await cat.post_day(company, sess["id"], address=address, start=iso(days_from_now(3)))
    assert r.status_code == 422, r.text
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("body.address", code)]
    day = await cat.day(company, sess["id"], address="Room <5>", start=iso(days_from_now(4)))
    assert day["address"] == "Room <5>"
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"address": address}, headers=cat.admin(company)
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.address"
    got = await cat.client.get(f"/v1/days/{day['id']}", headers=cat.admin(company))
    assert got.json()["address"] == "Room <5>"


async def test_r_day_2_online_links_are_well_formed_urls_on_create_and_edit(cat: Cat) -> None:
    """F8b: whitespace, CRLF, quotes and markup, a bad host or port are a 422 on ``body.url``,
    whether the day is created or edited, and whatever format the day has."""
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(company, event["id"])
    good = "https://meet.example/j/1?pwd=x"
    day = await cat.day(company, sess["id"], format="online", url=good, start=iso(days_from_now(3)))
    offline = await cat.day(company, sess["id"], start=iso(days_from_now(5)))
    for bad in BAD_LINKS:
        r = await cat.post_day(
            company, sess["id"], format="online", url=bad, start=iso(days_from_now(7))
        )
        assert r.status_code == 422, (bad, r.text)
        # controls and overlong text are refused as text (value_error), the rest as links
        assert [e["field"] for e in r.json()["errors"]] == ["body.url"], bad
        for target, body in [(day, {"url": bad}), (offline, {"format": "online", "url": bad})]:
            r = await cat.client.patch(
                f"/v1/days/{target['id']}", json=body, headers=cat.admin(company)
            )
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["errors"][0]["field"] == "body.url"
    got = await cat.client.get(f"/v1/sessions/{sess['id']}", headers=cat.admin(company))
    assert [(d["format"], d["url"]) for d in got.json()["days"]] == [
        ("online", good),
        ("offline", None),
    ]


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
