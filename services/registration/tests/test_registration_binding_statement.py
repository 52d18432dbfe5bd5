"""registration.binding.waiting_for_remembering: a first sign-in's binding in one statement
(R-ENR-5 ruling: an e-mail seen in a token is remembered so an import may name its user)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select

from registration.binding import Waiting, waiting_for_remembering
from registration.models import KnownUser, PendingAttendance

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
