"""R-ENR-5: enrollment import from CSV and XLSX."""

from __future__ import annotations

import datetime as dt
import io
import uuid
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from te_shared import contracts as c
from te_testing.xlsx import handmade_xlsx, written_xlsx, xlsx_row

if TYPE_CHECKING:
    from conftest import Reg


@dataclass
class Built:
    event_id: uuid.UUID
    session_ids: list[uuid.UUID]


async def _event(
    reg: Reg,
    limit: int | None = None,
    *,
    waitlist: bool = False,
    requires_approval: bool = False,
    day_start: dt.datetime | None = None,
) -> Built:
    eid = await reg.event(requires_approval=requires_approval)
    built_sessions = []
    for names in ({"en": "Daytime", "ru": "Дневная"}, {"en": "Evening", "ru": "Вечерняя"}):
        msg = reg.session_msg(eid, name=names, limit=limit, waitlist=waitlist)
        await reg.apply(msg, reg.day_msg(eid, msg.session_id, start=day_start))
        built_sessions.append(msg.session_id)
    return Built(eid, built_sessions)


async def _unchanged_everywhere(reg: Reg, eid: Any, before: tuple[int, int]) -> None:
    """Nothing of the event was written: no enrollment, no message."""
    assert await _statuses(reg, eid) == {}
    assert await _message_counts(reg) == before


async def _message_counts(reg: Reg) -> tuple[int, int]:
    return (
        len(await reg.outbox(c.EnrollmentChanged.routing_key)),
        len(await reg.outbox(c.AccessGranted.routing_key)),
    )


async def _import(
    reg: Reg, eid: Any, content: bytes, filename: str = "users.csv", encoding: str | None = None
) -> Any:
    return await reg.client.post(
        f"/v1/events/{eid}/enrollments/import",
        files={"file": (filename, content, "application/octet-stream")},
        data={"encoding": encoding} if encoding is not None else None,
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


async def test_r_enr_5_csv_as_excel_saves_it_in_its_code_page_or_as_unicode_text(
    reg: Reg,
) -> None:
    """R-ENR-5: a Russian Excel saves "CSV" in windows-1251, not UTF-8. Without its
    `encoding` the file is refused naming the row of the first byte that is not UTF-8 and
    how to fix it, and nothing is imported (a guess could enroll garbled e-mails); naming it
    imports the file. Excel's "Unicode Text" (UTF-16 with a byte order mark, tab-separated)
    needs no name."""
    built = await _event(reg)
    day, evening = built.session_ids
    before = await _message_counts(reg)
    ansi = "user_id;session\r\nimp-a;Daytime\r\nimp-b;Вечерняя\r\n".encode("windows-1251")
    r = await _import(reg, built.event_id, ansi)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert (error["row"], error["column"]) == (3, "file")
    assert "CSV UTF-8" in error["reason"]
    assert "`encoding`" in error["reason"]
    await _unchanged_everywhere(reg, built.event_id, before)
    # a value the endpoint does not know is a validation error naming the field
    r = await _import(reg, built.event_id, ansi, encoding="rot13")
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body.encoding"]
    await _unchanged_everywhere(reg, built.event_id, before)

    r = await _import(reg, built.event_id, ansi, encoding="windows-1251")
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 2, "unchanged": 0}
    rows = [["user_id", "session"], ["imp-c", "вечерняя"]]
    unicode_text = "".join("\t".join(row) + "\r\n" for row in rows).encode("utf-16")
    assert unicode_text[:2] == b"\xff\xfe"  # what Excel writes: little-endian, with a mark
    r = await _import(reg, built.event_id, unicode_text, "users.txt")
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 1, "unchanged": 0}
    assert await _statuses(reg, built.event_id) == {
        "imp-a": (str(day), "approved"),
        "imp-b": (str(evening), "approved"),
        "imp-c": (str(evening), "approved"),
    }


async def test_r_enr_5_an_hr_export_with_its_own_column_names(reg: Reg) -> None:
    """R-ENR-5: an HR export names its columns its own way ("E-mail", "Session name") and
    carries others (ignored); a column named twice is refused naming both, not picked."""
    built = await _event(reg)
    before = await _message_counts(reg)
    twice = b"Name,Email,E-mail,Session\r\nAnn,ann@hr.example,ann@hr.example,Daytime\r\n"
    r = await _import(reg, built.event_id, twice)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert (error["row"], error["column"]) == (1, "C")
    assert error["reason"] == "columns B and C both name `email`: keep one"
    await _unchanged_everywhere(reg, built.event_id, before)
    export = (
        b"Employee,E-mail,Department,Session name\r\n"
        b"Ann Smith,Ann@HR.example,Sales,Daytime\r\n"
        b"Bob Jones,bob@hr.example,Sales,evening\r\n"
    )
    r = await _import(reg, built.event_id, export)
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 2, "unchanged": 0}
    r = await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    assert sorted((e["email"], e["user_id"]) for e in r.json()["items"]) == [
        ("ann@hr.example", None),  # nobody signed in with them yet: bound when they do
        ("bob@hr.example", None),
    ]


async def test_r_enr_5_xlsx_with_emails(reg: Reg) -> None:
    """R-ENR-5: XLSX with an `email` column naming known users and `,`-free cells."""
    built = await _event(reg)
    # the service learns emails from tokens (a sign-up elsewhere) and admin input
    other = await reg.build(access=["known-1"])
    assert (
        await reg.sign_up(other.session_ids[0], "known-1", email="Known1@x.io")
    ).status_code == 201
    book = written_xlsx(["email", "session"], ["known1@x.io", "EVENING"])
    r = await _import(reg, built.event_id, book, "users.xlsx")
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


async def test_r_enr_5_a_formula_without_its_saved_result_is_a_row_error(reg: Reg) -> None:
    """R-ENR-5: a workbook a program wrote keeps formulas without their results. In a column
    the import reads that is a row error saying how to fix the file (it was an empty cell:
    "a user id or an email is required", though Excel showed an address); in a column it
    does not read it is ignored, as any other cell there. Nothing is imported."""
    built = await _event(reg)
    book = written_xlsx(
        ["email", "session", "full name"],
        ['=LOWER("Ann@X.io")', "Evening", "Ann"],
        ["bo@x.io", "Evening", '=UPPER("bo")'],
        ["cy@x.io", '=TRIM(" Evening ")', "Cy"],
    )
    r = await _import(reg, built.event_id, book, "hr-export.xlsx")
    assert r.status_code == 422, r.text
    errors = [(e["row"], e["column"], e["reason"]) for e in r.json()["errors"]]
    assert [(row, column) for row, column, _ in errors] == [(2, "email"), (4, "session")]
    assert all("formula whose result is not saved" in reason for _, _, reason in errors)
    assert all("\x00" not in reason for _, _, reason in errors)
    assert await _statuses(reg, built.event_id) == {}


async def test_r_enr_5_addresses_as_mail_programs_copy_them(reg: Reg) -> None:
    """R-ENR-5: admins paste addresses from Outlook into their sheets: `Ann Smith
    <ann@x.io>`, with a `;` after it. One address per cell is read as that address (a known
    user's is theirs); a cell naming two is a row error, never one picked."""
    built = await _event(reg)
    other = await reg.build(access=["known-7"])
    assert (
        await reg.sign_up(other.session_ids[0], "known-7", email="Seven@x.io")
    ).status_code == 201
    good = (
        b'email,session\n"Seven Known <Seven@X.io>;",Evening\n'
        b'"""Smith, Ann"" <ann.smith@x.io>",Daytime\n'
    )
    two = b'email,session\n"ann@x.io; bob@x.io",Daytime\n'
    refused = await _import(reg, built.event_id, two)
    assert refused.status_code == 422, refused.text
    assert [(e["row"], e["column"]) for e in refused.json()["errors"]] == [(2, "email")]
    assert "one address" in refused.json()["errors"][0]["reason"]
    r = await _import(reg, built.event_id, good)
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 2, "unchanged": 0}
    listed = (
        await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    ).json()["items"]
    assert sorted((e["email"], e["user_id"]) for e in listed) == [
        ("ann.smith@x.io", None),
        ("seven@x.io", "known-7"),
    ]


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
        # row 5 names a person by an e-mail nobody signed in with: no error (R-ENR-5 ruling)
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
    r = await _import(reg, built.event_id, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.png")
    assert r.status_code == 422
    assert r.json()["errors"][0]["reason"].startswith("the file is not UTF-8 text")


async def test_r_enr_5_size_and_row_caps(reg: Reg) -> None:
    """R-ENR-5: a size cap and a row cap with a clear error."""
    from registration.enrollments import importing, reading

    built = await _event(reg)
    rows = "user_id,session\n" + "".join(f"cap-{i},Daytime\n" for i in range(reading.MAX_ROWS + 1))
    r = await _import(reg, built.event_id, rows.encode())
    assert r.status_code == 422
    assert "too many rows" in r.json()["detail"]
    big = b"user_id,session\n" + b"x" * (importing.MAX_BYTES + 10)
    r = await _import(reg, built.event_id, big)
    assert r.status_code == 413
    assert r.json()["code"] in {"import_too_large", "payload_too_large"}


async def test_r_enr_5_import_over_the_limit_is_a_row_report(reg: Reg) -> None:
    """R-ENR-5/R-ENR-6: seats are checked while validating: the rows that do not fit in a
    session's free seats are reported (422, with the row numbers), nothing is written."""
    built = await _event(reg, limit=2)
    before = await _message_counts(reg)
    csv = b"user_id,session\nall-1,Daytime\nall-2,Evening\nall-3,Daytime\nall-4,Daytime\n"
    r = await _import(reg, built.event_id, csv)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "import_invalid"
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [(5, "session")]
    assert "2 free seat(s)" in r.json()["errors"][0]["reason"]
    await _unchanged_everywhere(reg, built.event_id, before)
    seats = await reg.client.get(f"/v1/sessions/{built.session_ids[0]}/seats", headers=reg.admin())
    assert seats.json()["taken"] == 0
    # the rows that fit do fit: without the fourth row the file imports whole
    r = await _import(reg, built.event_id, csv.rsplit(b"all-4", 1)[0])
    assert r.json() == {"imported": 3, "unchanged": 0}, r.text


async def test_r_enr_5_capacity_counts_waitlisted_rows_and_never_waitlists(reg: Reg) -> None:
    """R-ENR-5/R-ENR-7 ruling: a waitlisted user moving to approved needs a seat, a pending one
    holds one already; a full session with a waitlist refuses the rows over its limit (admin
    enrollment never waitlists)."""
    built = await _event(reg, limit=1, waitlist=True, requires_approval=True)
    day = built.session_ids[0]
    r = await reg.client.put(
        f"/v1/events/{built.event_id}/access",
        json={"user_ids": ["cap-p", "cap-w"]},
        headers=reg.admin(),
    )
    assert r.status_code == 200
    assert (await reg.sign_up(day, "cap-p")).json()["status"] == "pending"
    assert (await reg.sign_up(day, "cap-w")).json()["status"] == "waitlisted"
    before = await _message_counts(reg)
    r = await _import(reg, built.event_id, b"user_id,session\ncap-p,Daytime\ncap-w,Daytime\n")
    assert r.status_code == 422, r.text
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [(3, "session")]
    assert await _message_counts(reg) == before
    assert {u: st for u, (_, st) in (await _statuses(reg, built.event_id)).items()} == {
        "cap-p": "pending",
        "cap-w": "waitlisted",
    }
    # the pending user alone fits: their seat is already theirs
    r = await _import(reg, built.event_id, b"user_id,session\ncap-p,Daytime\n")
    assert r.json() == {"imported": 1, "unchanged": 0}, r.text
    statuses = await _statuses(reg, built.event_id)
    assert (statuses["cap-p"][1], statuses["cap-w"][1]) == ("approved", "waitlisted")


async def test_r_enr_5_reimport_after_statuses_moved_on_changes_nothing(reg: Reg) -> None:
    """R-ENR-5 ruling: import moves only pending and waitlisted users to approved; approved,
    awaiting_confirmation, participated, missed and denied are left as they are and counted
    unchanged, so re-importing the same rows changes nothing."""
    started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    built = await _event(reg, requires_approval=True, day_start=started)
    users = ["mv-appr", "mv-await", "mv-part", "mv-miss", "mv-deny", "mv-pend"]
    csv = ("user_id,session\n" + "".join(f"{u},Daytime\n" for u in users[:5])).encode()
    assert (await _import(reg, built.event_id, csv)).json() == {"imported": 5, "unchanged": 0}
    r = await reg.client.put(
        f"/v1/events/{built.event_id}/access", json={"user_ids": ["mv-pend"]}, headers=reg.admin()
    )
    assert (await reg.sign_up(built.session_ids[0], "mv-pend")).json()["status"] == "pending"
    listing = (
        await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    ).json()["items"]
    ids = {e["user_id"]: e["id"] for e in listing}
    r = await reg.client.post(
        f"/v1/enrollments/{ids['mv-await']}/confirm-participation", headers=reg.user("mv-await")
    )
    assert r.json()["status"] == "awaiting_confirmation", r.text
    for user, target in (("mv-part", "participated"), ("mv-miss", "missed"), ("mv-deny", "denied")):
        r = await reg.client.patch(
            f"/v1/enrollments/{ids[user]}", json={"status": target}, headers=reg.admin()
        )
        assert r.json()["status"] == target, r.text
    moved = {u: st for u, (_, st) in (await _statuses(reg, built.event_id)).items()}
    everyone = ("user_id,session\n" + "".join(f"{u},Daytime\n" for u in users)).encode()
    changes = len(await reg.outbox(c.EnrollmentChanged.routing_key))
    r = await _import(reg, built.event_id, everyone)
    assert r.json() == {"imported": 1, "unchanged": 5}, r.text
    assert {u: st for u, (_, st) in (await _statuses(reg, built.event_id)).items()} == {
        **moved,
        "mv-pend": "approved",
    }
    assert len(await reg.outbox(c.EnrollmentChanged.routing_key)) == changes + 1
    r = await _import(reg, built.event_id, everyone)
    assert r.json() == {"imported": 0, "unchanged": 6}
    assert len(await reg.outbox(c.EnrollmentChanged.routing_key)) == changes + 1
    # the single admin enrollment follows the same ruling: 200 with the enrollment as it is
    r = await reg.client.post(
        f"/v1/events/{built.event_id}/enrollments",
        json={"user_id": "mv-part", "session_id": str(built.session_ids[0])},
        headers=reg.admin(),
    )
    assert (r.status_code, r.json()["status"], r.json()["id"]) == (
        200,
        "participated",
        ids["mv-part"],
    )
    assert len(await reg.outbox(c.EnrollmentChanged.routing_key)) == changes + 1


async def test_r_enr_5_row_numbers_are_the_files_own_after_blank_rows(reg: Reg) -> None:
    """R-ENR-5: the error report names each bad row by its number in the file (header = row 1),
    blank rows included in the count, for CSV and XLSX."""
    built = await _event(reg)
    csv = b"user_id,session\n\nok-a,Daytime\n,\n\nbad-a,Nightly\n , \nbad-b,\n"
    r = await _import(reg, built.event_id, csv)
    assert r.status_code == 422, r.text
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [
        (6, "session"),
        (8, "session"),
    ]
    book = written_xlsx(
        ["user_id", "session"], [], ["ok-x", "Daytime"], [None, None], [], ["bad-x", "Nope"]
    )
    r = await _import(reg, built.event_id, book, "users.xlsx")
    assert r.status_code == 422, r.text
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [(6, "session")]
    # a header below blank rows keeps its own row number too
    r = await _import(reg, built.event_id, written_xlsx([], [], ["name", "session"]), "users.xlsx")
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [(3, "user_id")]
    assert await _statuses(reg, built.event_id) == {}


async def test_r_enr_5_xlsx_row_cap_counts_data_rows_not_blank_ones(
    reg: Reg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-ENR-5: the row cap counts data rows; a workbook over it is refused with a clear error
    (the first row over the cap named), never cut short; blank rows never count."""
    from registration.enrollments import importing

    monkeypatch.setattr(importing, "MAX_ROWS", 5)
    built = await _event(reg)
    before = await _message_counts(reg)
    over = written_xlsx(
        ["user_id", "session"], [], [], [], *([f"cap-x{i}", "Daytime"] for i in range(8))
    )
    r = await _import(reg, built.event_id, over, "users.xlsx")
    assert r.status_code == 422, r.text
    assert "too many rows" in r.json()["detail"]
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [(10, "file")]
    await _unchanged_everywhere(reg, built.event_id, before)
    # as many data rows as the cap, among blank ones, import whole
    fits = written_xlsx(
        ["user_id", "session"], [], [], [], *([f"cap-x{i}", "Daytime"] for i in range(5))
    )
    r = await _import(reg, built.event_id, fits, "users.xlsx")
    assert r.json() == {"imported": 5, "unchanged": 0}, r.text
    csv = "user_id,session\n" + "\n" * 20 + "".join(f"cap-c{i},Evening\n" for i in range(6))
    r = await _import(reg, built.event_id, csv.encode())
    assert (r.status_code, r.json()["errors"][0]["row"]) == (422, 27)


async def test_r_enr_5_workbook_that_unpacks_too_far_is_413(reg: Reg) -> None:
    """R-ENR-5: a small workbook that unpacks past the cap (a zip bomb) is refused with 413
    before it is parsed."""
    from registration.enrollments import importing, reading

    built = await _event(reg)
    buffer = io.BytesIO(written_xlsx(["user_id", "session"], ["zb-1", "Daytime"]))
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/padding.bin", b"\0" * (reading.MAX_UNPACKED_BYTES + 1))
    assert len(buffer.getvalue()) < importing.MAX_BYTES
    r = await _import(reg, built.event_id, buffer.getvalue(), "bomb.xlsx")
    assert (r.status_code, r.json()["code"]) == (413, "import_too_large")
    assert await _statuses(reg, built.event_id) == {}


@pytest.mark.parametrize(
    ("cells", "column"),
    [
        ("nul\x00user,,Daytime", "user_id"),
        ("ctl\x07user,,Daytime", "user_id"),
        (f"{'u' * 201},,Daytime", "user_id"),
        (f"long-mail,{'m' * 320}@x.io,Daytime", "email"),
        ("nul-mail,a\x00@x.io,Daytime", "email"),
        ("nul-session,,Day\x00time", "session"),
    ],
)
async def test_r_enr_5_cells_that_cannot_be_stored_are_row_errors(
    reg: Reg, cells: str, column: str
) -> None:
    """R-ENR-5 / R-ERR-1: NUL and other control characters, a user id over 200 characters and
    an email over 320 (even next to a user id) are row errors (422), never a 500; nothing is
    written."""
    built = await _event(reg)
    before = await _message_counts(reg)
    csv = f"user_id,email,session\nfine-1,,Daytime\n{cells}\n".encode()
    r = await _import(reg, built.event_id, csv)
    assert r.status_code == 422, r.text
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [(3, column)]
    await _unchanged_everywhere(reg, built.event_id, before)


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ('<row r="10000000"><c r="A10000000" t="inlineStr"><is><t>x</t></is></c></row>', "file"),
        ('<row r="3" spans="1:16384"><c r="XFD3"/></row>', "XFD"),
        ('<row r="3"><c r="A0" t="inlineStr"><is><t>x</t></is></c></row>', "file"),
        ('<row r="3"><c r="A3" t="n"><v>abc</v></c></row>', "A"),
        ('<row r="3"><c r="A3" t="s"><v>99</v></c></row>', "A"),
        ('<row r="3"><c r="XFE3"/></row>', "file"),
    ],
    ids=["row-10000000", "blank-xfd-row", "a0", "abc-number", "shared-string-99", "xfe"],
)
async def test_f2_f7_workbooks_openpyxl_chokes_on_are_422_and_nothing_is_imported(
    reg: Reg, row: str, column: str
) -> None:
    """F2/F7: a row number far past the rows read, a row as wide as the sheet and cells
    openpyxl cannot read are a 422 problem naming the row (these were a 500, or seconds of the
    event loop), and the good row before them is not imported either."""
    built = await _event(reg)
    before = await _message_counts(reg)
    sheet = xlsx_row(1, "user_id", "session") + xlsx_row(2, "ok-1", "Daytime") + row
    r = await _import(reg, built.event_id, handmade_xlsx(sheet, shared_strings=["a"]), "u.xlsx")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "import_invalid"
    number = 10_000_000 if "10000000" in row else 3
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [(number, column)]
    await _unchanged_everywhere(reg, built.event_id, before)
