"""The rules several services share (te_shared.rules), tested directly."""

from __future__ import annotations

import pytest

from te_shared import rules
from te_shared.contracts import EnrollmentStatus as S
from te_shared.contracts import MeetingStatus, ZoomAccountRole


def test_r_enr_6_seat_taking_statuses() -> None:
    assert {
        S.PENDING,
        S.APPROVED,
        S.AWAITING_CONFIRMATION,
        S.PARTICIPATED,
        S.MISSED,
    } == rules.SEAT_TAKING
    assert S.WAITLISTED not in rules.SEAT_TAKING
    assert S.CANCELLED not in rules.SEAT_TAKING
    assert S.DENIED not in rules.SEAT_TAKING


def test_r_enr_10_tabs() -> None:
    assert set(S) - {S.CANCELLED} == rules.LIVE
    assert rules.LIVE - {S.DENIED} == rules.PARTICIPATING_TAB
    assert {S.APPROVED, S.AWAITING_CONFIRMATION, S.PARTICIPATED, S.MISSED} == rules.COMPLETED_TAB
    assert rules.COMPLETED_TAB <= rules.SEAT_TAKING


def test_r_zoom_3_join_link_is_an_allow_list_of_admitted_seat_holders() -> None:
    assert {S.APPROVED, S.AWAITING_CONFIRMATION, S.PARTICIPATED, S.MISSED} == rules.JOIN_LINK
    assert rules.JOIN_LINK <= rules.SEAT_TAKING
    for status in (S.PENDING, S.WAITLISTED, S.DENIED, S.CANCELLED):
        assert status not in rules.JOIN_LINK


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Daytime", "daytime"),
        ("  Daytime ", "DAYTIME"),
        ("Evening  run", "evening run"),
        ("Straße", "STRASSE"),
        ("\uff21 run", "a run"),  # a full-width A (NFKC)
        ("Tab\trun", "tab run"),
    ],
)
def test_r_ses_3_name_key_matches(a: str, b: str) -> None:
    assert rules.name_key(a) == rules.name_key(b)


@pytest.mark.parametrize(("a", "b"), [("Daytime", "Daytime 2"), ("Evening", "Eve ning")])
def test_r_ses_3_name_key_keeps_different_names_apart(a: str, b: str) -> None:
    assert rules.name_key(a) != rules.name_key(b)


def test_r_day_9_r_zoom_7_cloud_recording() -> None:
    assert rules.cloud_recording(ZoomAccountRole.ADMINISTRATOR, True)
    assert rules.cloud_recording("administrator", True)
    assert not rules.cloud_recording(ZoomAccountRole.ADMINISTRATOR, False)
    assert not rules.cloud_recording(ZoomAccountRole.PARTICIPANT, True)
    assert not rules.cloud_recording(None, True)


def test_r_ses_10_sessions_in_user_order() -> None:
    import datetime as dt

    now = dt.datetime(2030, 1, 10, tzinfo=dt.UTC)
    day = dt.timedelta(days=1)
    # (name, open, first start, registration end)
    rows = [
        ("closed-older", False, now + 9 * day, now - 3 * day),
        ("open-late", True, now + 8 * day, now + day),
        ("open-no-days", True, None, now + day),
        ("closed-recent", False, now + 9 * day, now - day),
        ("open-early", True, now + 2 * day, now + day),
    ]
    got = rules.sessions_in_user_order(
        rows,
        is_open=lambda r: r[1],
        first_start=lambda r: r[2],
        registration_end=lambda r: r[3],
        key=lambda r: r[0],
    )
    assert [r[0] for r in got] == [
        "open-early",
        "open-late",
        "open-no-days",
        "closed-recent",
        "closed-older",
    ]


@pytest.mark.parametrize(
    ("status", "join_url", "shown"),
    [
        (MeetingStatus.CREATED, "https://zoom.us/j/1", "https://zoom.us/j/1"),
        # R-ZOOM-8: a change Zoom refused leaves the meeting standing, and its link with it
        (MeetingStatus.FAILED, "https://zoom.us/j/1", "https://zoom.us/j/1"),
        (MeetingStatus.FAILED, None, None),  # never made: no link
        (MeetingStatus.DELETED, "https://zoom.us/j/1", None),
        (MeetingStatus.PENDING, "https://zoom.us/j/1", None),
        ("deleted", "https://zoom.us/j/1", None),  # as a row or a payload holds it
        ("created", "https://zoom.us/j/1", "https://zoom.us/j/1"),
    ],
)
def test_meeting_join_link_while_a_meeting_stands(
    status: MeetingStatus | str, join_url: str | None, shown: str | None
) -> None:
    """R-ZOOM-3, R-ZOOM-8: the join link every service shows after a meeting announcement."""
    assert rules.meeting_join_link(status, join_url) == shown
