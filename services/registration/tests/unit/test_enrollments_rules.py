"""registration.enrollments.rules, tested directly (no database, no HTTP)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from registration.enrollments import rules
from registration.enrollments.rules import Refusal, SignUpFacts
from te_shared.contracts import EnrollmentStatus as S

NOW = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)
HERE, THERE = uuid.uuid4(), uuid.uuid4()


def facts(**changes: object) -> SignUpFacts:
    base: dict[str, object] = {
        "is_admin": False,
        "event_active": True,
        "has_access": True,
        "enrolled_in": None,
        "session": HERE,
        "registration_open": True,
        "full": False,
        "waitlist_enabled": False,
    }
    return SignUpFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_r_enr_12_the_machine() -> None:
    assert rules.may_change(None, S.APPROVED)
    assert rules.may_change(None, S.WAITLISTED)
    assert not rules.may_change(None, S.PARTICIPATED)
    assert not rules.may_change(S.CANCELLED, S.APPROVED)  # withdrawn is final
    assert rules.may_change(S.DENIED, S.APPROVED)
    assert rules.may_change(S.MISSED, S.PARTICIPATED)
    assert set(rules.TRANSITIONS) == {None, *S}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"has_access": False}, Refusal(404, "session_not_found", "No such session.")),
        ({"event_active": False}, Refusal(404, "session_not_found", "No such session.")),
        ({"is_admin": True, "event_active": False}, "event_not_active"),
        ({"is_admin": True, "has_access": False}, "no_access"),
        ({"enrolled_in": HERE}, rules.REPLAY),
        ({"enrolled_in": THERE}, "already_enrolled"),
        ({"registration_open": False}, "registration_ended"),
        ({"full": True}, "session_full"),
        ({"full": True, "waitlist_enabled": True}, None),
        # the order: a closed registration is named before a full session
        ({"registration_open": False, "full": True}, "registration_ended"),
    ],
)
def test_r_enr_3_sign_up_decision(changes: dict[str, object], expected: object) -> None:
    decision = rules.sign_up_decision(facts(**changes))
    if isinstance(expected, str) and expected != rules.REPLAY:
        assert isinstance(decision, Refusal)
        assert decision.code == expected
    else:
        assert decision == expected


def test_r_enr_3_first_status() -> None:
    assert rules.first_status(requires_approval=False) == S.APPROVED
    assert rules.first_status(requires_approval=True) == S.PENDING


def test_r_ses_5_registration_open() -> None:
    end = NOW + dt.timedelta(minutes=1)
    assert rules.registration_open(True, end, False, NOW)
    assert not rules.registration_open(True, NOW, False, NOW)  # ends at the instant
    assert rules.registration_open(False, None, False, NOW)  # undated: never ends
    assert not rules.registration_open(True, end, True, NOW)  # a deleted session


def test_r_enr_1_visible_to_users() -> None:
    assert rules.visible_to_users("active", False)
    assert not rules.visible_to_users("hidden", False)
    assert not rules.visible_to_users("active", True)


def test_r_enr_6_full() -> None:
    assert rules.full(True, 2, 2)
    assert rules.full(True, 2, 3)  # an overshoot (a limit lowered under taken seats)
    assert not rules.full(True, 2, 1)
    assert not rules.full(False, 2, 5)


def test_r_enr_9_reopens_session() -> None:
    later = NOW + dt.timedelta(days=1)
    assert rules.reopens_session(True, later, NOW)
    assert not rules.reopens_session(False, later, NOW)
    assert not rules.reopens_session(True, NOW - dt.timedelta(days=1), NOW)


def test_ruling_admin_enrollment_and_attendance_sets() -> None:
    assert {S.PENDING, S.WAITLISTED} == rules.MOVED_BY_ADMIN_ENROLLMENT
    assert {S.APPROVED, S.AWAITING_CONFIRMATION} == rules.MOVED_BY_ATTENDANCE
    assert {S.AWAITING_CONFIRMATION, S.PARTICIPATED, S.MISSED} == rules.REOPENED_BY_NEW_DAY
    assert S.WAITLISTED not in rules.ADMIN_TARGETS


class TestImportColumns:
    """R-ENR-5: an import's columns by the names HR exports give them."""

    def test_names_as_exports_spell_them(self) -> None:
        for cell, column in (
            ("user_id", "user_id"),
            ("User ID", "user_id"),
            ("USERID", "user_id"),
            ("email", "email"),
            ("E-mail", "email"),
            ("E-Mail", "email"),
            (" Email address ", "email"),
            ("e_mail_address", "email"),
            ("Session", "session"),
            ("Session name", "session"),
        ):
            assert rules.import_column(cell) == column, cell
        for other in ("Name", "Department", "mail", "sessions", "", "e-mail 2"):
            assert rules.import_column(other) is None, other

    def test_where_each_column_is_and_what_is_named_twice(self) -> None:
        where, twice = rules.import_columns(["Name", "E-mail", "Session", "Email", "User ID"])
        assert where == {"email": 1, "session": 2, "user_id": 4}
        assert twice == {"email": [1, 3]}
        assert rules.import_columns(["name"]) == ({}, {})


class TestCellAddress:
    """R-ENR-5: an import cell's e-mail address, as admins paste them from mail programs."""

    @pytest.mark.parametrize(
        ("cell", "address"),
        [
            ("ann@x.io", "ann@x.io"),
            ("  Ann@X.io ", "Ann@X.io"),
            ("Ann Smith <ann@x.io>", "ann@x.io"),
            ('"Smith, Ann" <ann@x.io>', "ann@x.io"),
            ("<ann@x.io>", "ann@x.io"),
            ("ann@x.io;", "ann@x.io"),
            ("Ann Smith <ann@x.io>, ", "ann@x.io"),
            ("Иван <ivan@пример.рф>", "ivan@пример.рф"),
        ],
    )
    def test_one_address_as_written_or_as_mail_programs_copy_it(
        self, cell: str, address: str
    ) -> None:
        assert rules.cell_address(cell) == address

    @pytest.mark.parametrize(
        "cell",
        [
            "",
            "not an email",
            "Ann Smith",
            "ann@x",
            "ann@@x.io",
            "a b@x.io",
            "ann@x.io; bob@y.io",
            "Ann <ann@x.io>, Bob <bob@y.io>",
            "Ann Smith <ann@x.io",
            "mailto:ann@x.io",
            "=HYPERLINK(x)",
            "<>",
            '"',
        ],
    )
    def test_no_address_several_or_a_defect_is_none(self, cell: str) -> None:
        """Two addresses are never one picked; an unclosed bracket is not guessed at."""
        assert rules.cell_address(cell) is None
