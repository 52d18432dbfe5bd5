"""registration.binding.waiting_for_remembering: a first sign-in's binding in one statement
(R-ENR-5 ruling: an e-mail seen in a token is remembered so an import may name its user)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from registration.binding import Waiting, waiting_for_remembering
from registration.models import KnownUser, PendingAttendance
from te_testing.infra import use_sqlite

if TYPE_CHECKING:
    from conftest import Reg


async def _known(reg: Reg, company: str, email: str) -> str | None:
    async with reg.app.state.runtime.session_factory()() as session:
        stmt = select(KnownUser.user_id).where(
            KnownUser.company_id == company, KnownUser.email == email
        )
        found: str | None = (await session.execute(stmt)).scalar_one_or_none()
        return found


async def _call(reg: Reg, company: str, email: str, user_id: str) -> Waiting:
    async with reg.app.state.runtime.session_factory()() as session, session.begin():
        return await waiting_for_remembering(session, company, email, user_id)


async def test_r_enr_5_a_first_sign_in_is_remembered_in_the_same_statement(reg: Reg) -> None:
    company, email = f"bind-{uuid.uuid4().hex[:6]}", "first@x.io"
    found = await _call(reg, company, email, "u-first")
    assert found == Waiting(None, enrollments=False, attendance=False)  # as it was before
    assert await _known(reg, company, email) == "u-first"
    # the same user again: found as theirs, nothing to write
    assert await _call(reg, company, email, "u-first") == Waiting("u-first", False, False)
    assert await _known(reg, company, email) == "u-first"


async def test_r_enr_5_an_email_that_changed_hands_points_at_the_newer_user(reg: Reg) -> None:
    company, email = f"bind-{uuid.uuid4().hex[:6]}", "moved@x.io"
    await _call(reg, company, email, "u-old")
    assert await _call(reg, company, email, "u-new") == Waiting("u-old", False, False)
    assert await _known(reg, company, email) == "u-new"


async def test_r_enr_5_what_waits_for_the_email_is_left_to_the_binding(reg: Reg) -> None:
    """Attendance waiting for the e-mail: the statement only reports it; bind() remembers the
    e-mail itself, in its lock order, with what it binds."""
    company, email = f"bind-{uuid.uuid4().hex[:6]}", "waits@x.io"
    async with reg.app.state.runtime.session_factory()() as session, session.begin():
        session.add(
            PendingAttendance(
                company_id=company,
                day_id=uuid.uuid4(),
                email=email,
                joined=True,
                final=False,
                recorded_at=dt.datetime.now(dt.UTC),
            )
        )
    assert await _call(reg, company, email, "u-waits") == Waiting(None, False, True)
    assert await _known(reg, company, email) is None


async def _enroll_by_email(reg: Reg, event_id: uuid.UUID, session_id: uuid.UUID, email: str) -> str:
    r = await reg.client.post(
        f"/v1/events/{event_id}/enrollments",
        json={"email": email, "session_id": str(session_id)},
        headers=reg.admin(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] is None
    return str(r.json()["id"])


async def test_r_enr_5_a_first_request_that_is_a_sign_up_binds_what_waits_first(
    reg: Reg,
) -> None:
    """Self sign-up binds what waits for the caller's e-mail itself, not in a dependency: an
    admin's e-mail enrollment is bound before the sign-up decides, so a sign-up for that
    session answers it (200), and one for the other session of the event is
    `already_enrolled` naming it."""
    built = await reg.build(sessions=2, limit=5)
    first, other = built.session_ids
    waiting = await _enroll_by_email(reg, built.event_id, first, "ann@corp.io")
    same = await reg.sign_up(first, "ann-1", email="Ann@Corp.IO")
    assert same.status_code == 200, same.text
    assert same.json()["id"] == waiting
    assert same.json()["user_id"] == "ann-1"
    assert same.json()["status"] == "approved"

    held = await _enroll_by_email(reg, built.event_id, first, "bob@corp.io")
    elsewhere = await reg.sign_up(other, "bob-1", email="bob@corp.io")
    assert elsewhere.status_code == 409, elsewhere.text
    assert elsewhere.json()["code"] == "already_enrolled"
    assert elsewhere.json()["enrollment_id"] == held
    seats = (await reg.client.get(f"/v1/sessions/{first}/seats", headers=reg.admin())).json()
    assert seats["taken"] == 2  # the bound enrollments hold their seats, none taken twice
    assert await _known(reg, "acme", "ann@corp.io") == "ann-1"
    if not use_sqlite():  # there the binding shares the refused request's transaction, undone
        assert await _known(reg, "acme", "bob@corp.io") == "bob-1"


async def test_r_enr_5_a_first_sign_up_remembers_the_email_refused_or_not(reg: Reg) -> None:
    """Nothing waits: the e-mail is remembered by the sign-up's first read, whatever the answer
    (a seat, a full session, a session that is not there), so an import may name the user.
    (On SQLite the remembering shares the request's transaction: a refusal undoes it, and the
    next request remembers it.)"""
    built = await reg.build(limit=1, access=["seat-1", "full-1"])
    sid = built.session_ids[0]
    assert (await reg.sign_up(sid, "seat-1", email="seat@corp.io")).status_code == 201
    full = await reg.sign_up(sid, "full-1", email="full@corp.io")
    assert full.status_code == 409
    assert full.json()["code"] == "session_full"
    missing = await reg.sign_up(uuid.uuid4(), "gone-1", email="gone@corp.io")
    assert missing.status_code == 404
    remembered = [("seat", "seat-1"), ("full", "full-1"), ("gone", "gone-1")]
    for email, user in remembered[:1] if use_sqlite() else remembered:
        assert await _known(reg, "acme", f"{email}@corp.io") == user


@pytest.mark.skipif(
    use_sqlite(),
    reason="on SQLite the binding shares the request's transaction, which a 404 undoes",
)
async def test_r_enr_5_a_sign_up_for_a_missing_session_still_binds_what_waits(reg: Reg) -> None:
    """What waits is bound (and committed, as a sign-up's statements run each alone) before the
    sign-up finds no session."""
    built = await reg.build()
    waiting = await _enroll_by_email(reg, built.event_id, built.session_ids[0], "cy@corp.io")
    missing = await reg.sign_up(uuid.uuid4(), "cy-1", email="cy@corp.io")
    assert missing.status_code == 404
    assert missing.json()["code"] == "session_not_found"
    listing = await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    assert {e["id"]: e["user_id"] for e in listing.json()["items"]} == {waiting: "cy-1"}
