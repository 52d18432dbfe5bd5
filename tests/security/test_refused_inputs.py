"""Inputs that must be refused, against the real processes: a clear problem, never a 500, and
nothing changed (R-ERR-1, R-DAY-2, R-SES-4, R-ENR-5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from te_shared.testing import System, eventually

pytestmark = pytest.mark.e2e

COMPANY = "refusals-co"
FORMULAS = ['=HYPERLINK("http://evil.test","x")', "+1+1", "-2+3", "@SUM(A1:A9)"]


def at(days: float, hour: int = 10) -> str:
    base = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (base + dt.timedelta(days=days)).isoformat()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.fixture(scope="module")
async def event(system: System) -> dict[str, Any]:
    admin = system.admin(COMPANY)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
    ):
        event = (
            await cat.post(
                "/v1/events",
                json={
                    "title": "Refusals",
                    "dated": True,
                    "requires_approval": False,
                },
            )
        ).json()
        session = (
            await cat.post(
                f"/v1/events/{event['id']}/sessions",
                json={
                    "name": "Main",
                    "registration_end": at(2),
                },
            )
        ).json()
        await eventually(
            lambda: reg.get(f"/v1/sessions/{session['id']}/seats"),
            lambda r: r.status_code == 200,
            what="read model",
        )
    return {"event": event, "session": session}


async def test_oversized_json_body_is_413(system: System) -> None:
    async with system.client(system.catalog, system.admin(COMPANY)) as cat:
        body = '{"title": "' + "x" * (6 * 1024 * 1024) + '", "dated": true}'
        response = await cat.post(
            "/v1/events", content=body, headers={"content-type": "application/json"}
        )
        problem(response, 413)
        events = (await cat.get("/v1/events")).json()
    assert all(len(str(e["title"])) < 1000 for e in events["items"])


async def test_oversized_and_overlong_import_files_are_refused(
    system: System, event: dict[str, Any]
) -> None:
    url = f"/v1/events/{event['event']['id']}/enrollments/import"
    async with system.client(system.registration, system.admin(COMPANY)) as reg:
        big = b"user_id,session\n" + b"u,Main\n" * (3 * 1024 * 1024 // 7)
        problem(await reg.post(url, files={"file": ("big.csv", big, "text/csv")}), 413)
        long = "user_id,session\n" + "".join(f"user-{i},Main\n" for i in range(5001))
        body = problem(await reg.post(url, files={"file": ("long.csv", long, "text/csv")}), 422)
        assert "rows" in body["detail"]
        seats = (await reg.get(f"/v1/sessions/{event['session']['id']}/seats")).json()
    assert seats["taken"] == 0  # nothing was written


async def test_formula_cells_are_refused_and_never_echoed_raw(
    system: System, event: dict[str, Any]
) -> None:
    rows = [
        "user_id,session",
        *(f'"{f.replace(chr(34), chr(34) * 2)}",Main' for f in FORMULAS),
        "someone,\"=cmd|' /C calc'!A0\"",
    ]
    csv_file = ("\n".join(rows) + "\n").encode()
    async with system.client(system.registration, system.admin(COMPANY)) as reg:
        response = await reg.post(
            f"/v1/events/{event['event']['id']}/enrollments/import",
            files={"file": ("evil.csv", csv_file, "text/csv")},
        )
        body = problem(response, 422)
        seats = (await reg.get(f"/v1/sessions/{event['session']['id']}/seats")).json()
    assert sorted(e["row"] for e in body["errors"]) == [2, 3, 4, 5, 6]
    for error in body["errors"]:
        for value in [*FORMULAS, "=cmd|' /C calc'!A0"]:
            if value in error["reason"]:
                assert "'" + value in error["reason"], error  # defused with a leading '
        assert not error["reason"].startswith(("=", "+", "-", "@"))
    assert seats["taken"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<b>x</b>",
        "ftp://files.test/a",
        "//no-scheme.test",
        "not a url",
    ],
)
async def test_online_day_links_must_be_http_or_https(
    system: System, event: dict[str, Any], url: str
) -> None:
    """R-DAY-2."""
    async with system.client(system.catalog, system.admin(COMPANY)) as cat:
        response = await cat.post(
            f"/v1/sessions/{event['session']['id']}/days",
            json={
                "format": "online",
                "start": at(5),
                "end": at(5, 12),
                "url": url,
            },
        )
        body = problem(response, 422)
        assert any("url" in e["field"] for e in body["errors"])
        full = (await cat.get(f"/v1/events/{event['event']['id']}")).json()
    assert all(not s["days"] for s in full["sessions"])


async def test_unknown_time_zones_are_refused(system: System, event: dict[str, Any]) -> None:
    """R-CO-1, R-SES-4."""
    async with system.client(system.catalog, system.admin(COMPANY)) as cat:
        body = problem(
            await cat.put("/v1/company/settings", json={"timezone": "Mars/Olympus"}), 422
        )
        assert any("timezone" in e["field"] for e in body["errors"])
        body = problem(
            await cat.post(
                f"/v1/events/{event['event']['id']}/sessions",
                json={
                    "name": "Elsewhere",
                    "timezone": "Europe/Atlantis",
                },
            ),
            422,
        )
        assert any("timezone" in e["field"] for e in body["errors"])


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("catalog", "/v1/events"),
        ("registration", "/v1/me/events?tab=available"),
        ("registration", "/v1/events/{event}/enrollments"),
    ],
)
async def test_huge_page_sizes_are_refused(
    system: System, event: dict[str, Any], service: str, path: str
) -> None:
    proc = getattr(system, service)
    token = system.user(COMPANY, "pager") if "/me/" in path else system.admin(COMPANY)
    url = path.replace("{event}", event["event"]["id"])
    joiner = "&" if "?" in url else "?"
    async with system.client(proc, token) as client:
        body = problem(await client.get(f"{url}{joiner}limit=1000000"), 422)
        assert any("limit" in e["field"] for e in body["errors"])
        problem(await client.get(f"{url}{joiner}limit=-1"), 422)
        problem(await client.get(f"{url}{joiner}cursor=%%%not-a-cursor"), 422)


async def test_zip_bomb_workbook_and_unparsable_csv_are_refused(
    system: System, event: dict[str, Any]
) -> None:
    """A tiny XLSX that unpacks to 60 MiB is 413; a CSV field over the parser's limit is 422."""
    import zipfile
    from io import BytesIO

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["user_id", "session"])
    buffer = BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/padding.bin", b"\0" * (60 * 1024 * 1024))
    bomb = buffer.getvalue()
    assert len(bomb) < 1024 * 1024
    url = f"/v1/events/{event['event']['id']}/enrollments/import"
    async with system.client(system.registration, system.admin(COMPANY)) as reg:
        problem(await reg.post(url, files={"file": ("bomb.xlsx", bomb, "application/zip")}), 413)
        huge_field = b'user_id,session\n"' + b"x" * 300_000 + b'",Main\n'
        problem(await reg.post(url, files={"file": ("big.csv", huge_field, "text/csv")}), 422)
