"""R-ENR-5: enrollment import from CSV and XLSX."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook

from te_shared import contracts as c

if TYPE_CHECKING:
    from conftest import Reg


@dataclass
class Built:
    event_id: uuid.UUID
    session_ids: list[uuid.UUID]


async def _event(reg: Reg, limit: int | None = None) -> Built:
    eid = await reg.event()
    built_sessions = []
    for names in ({"en": "Daytime", "ru": "Дневная"}, {"en": "Evening", "ru": "Вечерняя"}):
        msg = reg.session_msg(eid, name=names, limit=limit)
        await reg.apply(msg, reg.day_msg(eid, msg.session_id))
        built_sessions.append(msg.session_id)
    return Built(eid, built_sessions)


async def _import(reg: Reg, eid: Any, content: bytes, filename: str = "users.csv") -> Any:
    return await reg.client.post(
        f"/v1/events/{eid}/enrollments/import",
        files={"file": (filename, content, "application/octet-stream")},
        headers=reg.admin(),
    )


async def _statuses(reg: Reg, eid: Any) -> dict[str, tuple[str, str]]:
    r = await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())
    return {e["user_id"]: (e["session_id"], e["status"]) for e in r.json()["items"]}


async def test_r_enr_5_csv_with_bom_semicolons_any_locale_and_idempotent(reg: Reg) -> None:
    """R-ENR-5: UTF-8 BOM, `;` separator, session by name in any locale (case-insensitive);
    users become approved with access; re-importing the same rows changes nothing."""
    built = await _event(reg)
    day, evening = built.session_ids
    csv = "user_id;session\r\nimp-1;Daytime\r\nimp-2; вечерняя \r\n".encode("utf-8-sig")
    r = await _import(reg, built.event_id, csv)
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 2, "unchanged": 0}
    assert await _statuses(reg, built.event_id) == {
        "imp-1": (str(day), "approved"),
        "imp-2": (str(evening), "approved"),
    }
    view = await reg.client.get(f"/v1/me/events/{built.event_id}", headers=reg.user("imp-2"))
    assert view.status_code == 200  # R-ENR-4: access granted
    changes = len(await reg.outbox(c.EnrollmentChanged.routing_key))
    r = await _import(reg, built.event_id, csv)
    assert r.json() == {"imported": 0, "unchanged": 2}
    assert len(await reg.outbox(c.EnrollmentChanged.routing_key)) == changes


async def test_r_enr_5_xlsx_with_emails(reg: Reg) -> None:
    """R-ENR-5: XLSX with an `email` column naming known users and `,`-free cells."""
    built = await _event(reg)
    # the service learns emails from tokens (a sign-up elsewhere) and admin input
    other = await reg.build(access=["known-1"])
    assert (
        await reg.sign_up(other.session_ids[0], "known-1", email="Known1@x.io")
    ).status_code == 201
    book = Workbook()
    sheet = book.active
    sheet.append(["email", "session"])
    sheet.append(["known1@x.io", "EVENING"])
    buffer = io.BytesIO()
    book.save(buffer)
    r = await _import(reg, built.event_id, buffer.getvalue(), "users.xlsx")
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 1, "unchanged": 0}
    assert await _statuses(reg, built.event_id) == {
        "known-1": (str(built.session_ids[1]), "approved")
    }
    changes = [
        m
        for m in await reg.outbox(c.EnrollmentChanged.routing_key)
        if m["event_id"] == str(built.event_id)
    ]
    assert changes[-1]["email"] == "known1@x.io"


async def test_r_enr_5_every_bad_row_reported_and_nothing_written(reg: Reg) -> None:
    """R-ENR-5: the whole file is validated first; every wrong row is reported with its row
    number, column and reason; nothing is imported."""
    built = await _event(reg)
    csv = (
        b"user_id,email,session\n"
        b"ok-1,,Daytime\n"
        b",,Daytime\n"
        b"bad-2,,Nightly\n"
        b",nobody@x.io,Evening\n"
        b"bad-4,not-an-email,\n"
        b"ok-1,,Evening\n"
    )
    r = await _import(reg, built.event_id, csv)
    assert r.status_code == 422, r.text
    errors = {(e["row"], e["column"]) for e in r.json()["errors"]}
    assert errors == {
        (3, "user_id"),
        (4, "session"),
        (5, "email"),
        (6, "email"),
        (6, "session"),
        (7, "user_id"),
    }
    assert all(e["reason"] for e in r.json()["errors"])
    assert await _statuses(reg, built.event_id) == {}
    # a missing column
    r = await _import(reg, built.event_id, b"name,session\nx,Daytime\n")
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "user_id"
    # not a spreadsheet at all
    r = await _import(reg, built.event_id, b"PK\x03\x04garbage", "x.xlsx")
    assert r.status_code == 422
    r = await _import(reg, built.event_id, "user_id,session\n".encode("utf-16"))
    assert r.status_code == 422


async def test_r_enr_5_size_and_row_caps(reg: Reg) -> None:
    """R-ENR-5: a size cap and a row cap with a clear error."""
    from registration.enrollments import importing

    built = await _event(reg)
    rows = "user_id,session\n" + "".join(
        f"cap-{i},Daytime\n" for i in range(importing.MAX_ROWS + 1)
    )
    r = await _import(reg, built.event_id, rows.encode())
    assert r.status_code == 422
    assert "too many rows" in r.json()["detail"]
    big = b"user_id,session\n" + b"x" * (importing.MAX_BYTES + 10)
    r = await _import(reg, built.event_id, big)
    assert r.status_code == 413
    assert r.json()["code"] in {"import_too_large", "payload_too_large"}


async def test_r_enr_5_import_is_all_or_nothing_under_the_limit(reg: Reg) -> None:
    """R-ENR-5/R-ENR-6: an import that would overbook fails whole; nothing is written."""
    built = await _event(reg, limit=2)
    csv = b"user_id,session\nall-1,Daytime\nall-2,Daytime\nall-3,Daytime\n"
    r = await _import(reg, built.event_id, csv)
    assert r.status_code == 409
    assert r.json()["code"] == "session_full"
    assert r.json()["errors"][0]["row"] == 4
    assert await _statuses(reg, built.event_id) == {}
    seats = await reg.client.get(f"/v1/sessions/{built.session_ids[0]}/seats", headers=reg.admin())
    assert seats.json()["taken"] == 0
