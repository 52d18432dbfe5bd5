"""The pure planner of a day's meeting (R-ZOOM-3, R-ZOOM-8): no database, no simulator."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from zoom_bridge.meetings.plan import (
    NO_TIMES,
    NOT_CONNECTED,
    Abandon,
    Create,
    Fail,
    LookUp,
    Marker,
    Nothing,
    Remove,
    Snapshot,
    Update,
    Wait,
    meeting_body,
    plan,
)

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
ACCOUNT = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
OTHER = uuid.UUID("00000000-0000-0000-0000-0000000000b2")
DAY = uuid.UUID("00000000-0000-0000-0000-00000000d001")


def snap(**changes: Any) -> Snapshot:
    base = Snapshot(
        day_id=DAY,
        company_id="acme",
        version=1,
        desired="present",
        account_id=ACCOUNT,
        account_role="administrator",
        zoom_meeting_id=None,
        meeting_account_id=None,
        synced_version=0,
        unanswered=None,
        topic="Onboarding day",
        start=NOW + dt.timedelta(days=2),
        end=NOW + dt.timedelta(days=2, minutes=90),
        timezone="Europe/Berlin",
        auto_recording=True,
        training_module=True,
    )
    return dataclasses.replace(base, **changes)


def settled(account: uuid.UUID = ACCOUNT) -> Marker:
    return Marker(account, NOW - dt.timedelta(minutes=2), NOW - dt.timedelta(minutes=1))


SETTLES = NOW + dt.timedelta(seconds=55)


def settling(account: uuid.UUID = ACCOUNT) -> Marker:
    return Marker(account, NOW - dt.timedelta(seconds=5), SETTLES)


class TestPlan:
    def test_r_zoom_3_a_new_zoom_day_is_created_on_its_account(self) -> None:
        action = plan(snap(), NOW)
        assert isinstance(action, Create)
        assert (action.account_id, action.earlier, action.clear_on) == (ACCOUNT, None, None)

    def test_r_zoom_3_a_synced_day_needs_nothing_and_a_forgotten_row_too(self) -> None:
        synced = snap(zoom_meeting_id="85", meeting_account_id=ACCOUNT, synced_version=1)
        assert plan(synced, NOW) == Nothing()
        assert plan(None, NOW) == Nothing()

    def test_r_zoom_3_a_newer_version_patches_the_meeting(self) -> None:
        moved = snap(version=3, synced_version=2, zoom_meeting_id="85", meeting_account_id=ACCOUNT)
        action = plan(moved, NOW)
        assert isinstance(action, Update)
        assert (action.account_id, action.zoom_meeting_id) == (ACCOUNT, "85")

    def test_r_zoom_3_a_day_moved_to_another_account_abandons_the_old_meeting(self) -> None:
        moved = snap(zoom_meeting_id="85", meeting_account_id=OTHER, version=2, synced_version=1)
        assert plan(moved, NOW) == Abandon(OTHER, "85")

    def test_r_zoom_3_no_zoom_day_any_more_removes_its_meeting(self) -> None:
        gone = snap(desired="absent", zoom_meeting_id="85", meeting_account_id=ACCOUNT)
        assert plan(gone, NOW) == Remove("85", ACCOUNT, None)
        # also when the account went away: removal never needs the day's account
        assert plan(dataclasses.replace(gone, account_id=None), NOW) == Remove("85", ACCOUNT, None)

    def test_r_zoom_8_no_connected_account_or_no_times_fails_with_the_reason(self) -> None:
        assert plan(snap(account_id=None, account_role=None), NOW) == Fail(NOT_CONNECTED)
        assert plan(snap(start=None), NOW) == Fail(NO_TIMES)

    def test_r_zoom_8_an_unanswered_create_is_waited_for_until_it_settles(self) -> None:
        marker = settling()
        assert plan(snap(unanswered=marker), NOW) == Wait(SETTLES)
        # a cancelled day waits too: the lookup would miss a meeting still in the making
        assert plan(snap(desired="absent", unanswered=marker), NOW) == Wait(SETTLES)

    def test_r_zoom_8_a_settled_unanswered_create_is_looked_up_before_any_post(self) -> None:
        marker = settled()
        action = plan(snap(unanswered=marker), NOW)
        assert isinstance(action, LookUp)
        assert action.earlier == marker
        # settling ends exactly at settles_at
        assert isinstance(plan(snap(unanswered=settling()), SETTLES), LookUp)

    def test_r_zoom_8_an_unanswered_create_on_the_previous_account_is_cleared_there(
        self,
    ) -> None:
        marker = settled(OTHER)
        action = plan(snap(unanswered=marker), NOW)
        assert isinstance(action, Create)
        assert (action.account_id, action.earlier, action.clear_on) == (ACCOUNT, marker, OTHER)

    def test_r_zoom_8_a_cancelled_day_removes_what_an_unanswered_create_made(self) -> None:
        marker = settled()
        assert plan(snap(desired="absent", unanswered=marker), NOW) == Remove(None, None, marker)


class TestMeetingBody:
    def test_r_zoom_3_the_body_carries_the_days_times_and_agenda(self) -> None:
        body = meeting_body(snap())
        assert body is not None
        assert body["start_time"] == "2026-12-04T12:00:00Z"
        assert body["duration"] == 90
        assert body["timezone"] == "Europe/Berlin"
        assert body["agenda"] == f"day:{DAY}"
        assert body["type"] == 2

    def test_r_day_9_cloud_recording_needs_the_administrator_role_and_training(self) -> None:
        def recording(**changes: Any) -> str:
            body = meeting_body(snap(**changes))
            assert body is not None
            return body["settings"]["auto_recording"]

        assert recording() == "cloud"
        assert recording(auto_recording=False) == "none"
        assert recording(account_role="participant") == "none"
        assert recording(training_module=False) == "none"
