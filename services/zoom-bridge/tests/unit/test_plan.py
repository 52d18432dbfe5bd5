"""The pure planner of a day's meeting (R-ZOOM-3, R-ZOOM-8): no database, no simulator."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from zoom_bridge.meetings.plan import (
    AGENDA_MAX,
    NO_TIMES,
    NOT_CONNECTED,
    TOPIC_MAX,
    Abandon,
    Create,
    Fail,
    LookUp,
    Marker,
    Nothing,
    Remove,
    Snapshot,
    TakeBack,
    Update,
    Wait,
    drifted,
    fit,
    meeting_body,
    plan,
    still_to_be_held,
    takes_back,
)
from zoom_bridge.zoom.client import RECONNECT

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
        needs_reconnect=False,
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

    def test_r_zoom_8_an_account_that_needs_reconnecting_fails_without_a_call(self) -> None:
        dead = snap(needs_reconnect=True)
        assert plan(dead, NOW) == Fail(RECONNECT)
        assert "reconnect the Zoom account" in RECONNECT
        updating = snap(
            needs_reconnect=True, zoom_meeting_id="85", meeting_account_id=ACCOUNT, version=2
        )
        assert plan(updating, NOW) == Fail(RECONNECT)
        # a day that is no zoom day any more is still removed (its meeting is left, unreachable)
        assert isinstance(plan(dataclasses.replace(dead, desired="absent"), NOW), Remove)

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
            return str(body["settings"]["auto_recording"])

        assert recording() == "cloud"
        assert recording(auto_recording=False) == "none"
        assert recording(account_role="participant") == "none"
        assert recording(training_module=False) == "none"

    def test_r_zoom_3_administrator_meetings_take_registrants_automatically_approved(
        self,
    ) -> None:
        admin = meeting_body(snap())
        participant = meeting_body(snap(account_role="participant"))
        assert admin is not None
        assert participant is not None
        assert admin["settings"]["approval_type"] == 0
        assert admin["settings"]["registration_type"] == 1
        assert participant["settings"]["approval_type"] == 2  # the shared link, no registration


class TestFit:
    def test_r_zoom_3_a_topic_within_200_characters_is_kept_as_it_is(self) -> None:
        assert fit("Onboarding day", TOPIC_MAX) == "Onboarding day"
        exact = "t" * 200
        assert fit(exact, TOPIC_MAX) == exact

    def test_r_zoom_3_a_longer_topic_is_cut_to_200_ending_with_an_ellipsis(self) -> None:
        cut = fit("t" * 201, TOPIC_MAX)
        assert cut == "t" * 199 + "…"
        assert len(cut) == 200

    def test_r_zoom_3_a_cut_never_splits_a_character(self) -> None:
        family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji of five code points
        cut = fit("a" * 196 + family + "tail", TOPIC_MAX)
        assert cut == "a" * 196 + "…"  # the sequence does not fit whole: it goes whole
        accented = fit("e" * 198 + "e\u0301e\u0301", TOPIC_MAX)
        assert accented == "e" * 198 + "…"  # not "e" followed by a lone accent
        flags = fit("x" * 197 + "\U0001f1e9\U0001f1ea\U0001f1eb\U0001f1f7", TOPIC_MAX)
        assert flags == "x" * 197 + "…"  # never half a flag

    def test_r_zoom_3_characters_beyond_the_bmp_count_twice(self) -> None:
        """Counted in UTF-16 code units, the result fits however Zoom counts."""
        cut = fit("\U0001f600" * 150, TOPIC_MAX)
        assert cut == "\U0001f600" * 99 + "…"
        assert len(cut.encode("utf-16-le")) // 2 <= TOPIC_MAX

    def test_r_zoom_3_the_agenda_is_kept_within_2000_characters(self) -> None:
        assert len(fit("a" * 5000, AGENDA_MAX)) == AGENDA_MAX
        body = meeting_body(snap(topic="t" * 300))
        assert body is not None
        assert len(body["topic"]) == TOPIC_MAX
        assert len(body["agenda"]) <= AGENDA_MAX


class TestChangedAtZoom:
    """R-ZOOM-3: a meeting deleted or edited at Zoom is made again, or changed back, only while
    its day is to be held, and only for what the bridge holds it to."""

    def test_a_day_still_to_come_gets_its_meeting_again(self) -> None:
        assert still_to_be_held(False, NOW + dt.timedelta(days=1), NOW)
        assert still_to_be_held(False, None, NOW)  # no times yet: the sync fails it

    def test_a_meeting_held_stays_as_stored(self) -> None:
        assert not still_to_be_held(True, NOW + dt.timedelta(hours=1), NOW)

    def test_a_day_over_stays_as_stored(self) -> None:
        assert not still_to_be_held(False, NOW - dt.timedelta(minutes=1), NOW)
        assert not still_to_be_held(False, NOW, NOW)

    def test_what_the_bridge_holds_the_meeting_to_counts_as_moved(self) -> None:
        wanted = meeting_body(snap())
        assert wanted is not None
        assert drifted(wanted, {"id": 1}) == ()
        assert drifted(wanted, {"start_time": "2026-12-04T13:00:00Z", "duration": 45}) == (
            "duration",
            "start_time",
        )
        assert drifted(wanted, {"topic": "Mine", "agenda": "", "type": 8}) == (
            "type",
            "topic",
            "agenda",
        )
        moved = {"settings": {"auto_recording": "none", "approval_type": 2, "waiting_room": True}}
        assert drifted(wanted, moved) == ("settings.auto_recording", "settings.approval_type")
        assert drifted(wanted, {"start_time": "tomorrow"}) == ("start_time",)
        assert drifted(wanted, {"settings": "none"}) == ("settings",)

    def test_the_bridges_own_patch_moves_nothing(self) -> None:
        """What the bridge's own patch notifies is what it asked for: the same instant in
        another notation, the settings it sets, and what is the host's to change."""
        wanted = meeting_body(snap())
        assert wanted is not None
        own = {
            **wanted,
            "start_time": (NOW + dt.timedelta(days=2))
            .astimezone(dt.timezone(dt.timedelta(hours=1)))
            .isoformat(),
            "timezone": "UTC",
            "topic": f" {wanted['topic']} ",
            "password": "123456",
            "settings": {**wanted["settings"], "waiting_room": False},
        }
        assert drifted(wanted, own) == ()

    def test_a_start_zoom_keeps_to_the_minute_is_not_moved(self) -> None:
        wanted = meeting_body(snap(start=NOW + dt.timedelta(days=2, seconds=30)))
        assert wanted is not None
        assert wanted["start_time"].endswith(":30Z")
        on_the_minute = (NOW + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert drifted(wanted, {"start_time": on_the_minute}) == ()
        a_minute_on = (NOW + dt.timedelta(days=2, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert drifted(wanted, {"start_time": a_minute_on}) == ("start_time",)


def test_r_zoom_3_a_meeting_taken_back_is_patched_and_read_again() -> None:
    """A meeting recovered from Zoom's trash and taken back has no links stored: it is patched
    to the day and read back (a meeting whose links are known and synced needs nothing)."""
    body = meeting_body(snap())
    assert body is not None
    back = snap(zoom_meeting_id="77", meeting_account_id=ACCOUNT, linked=False)
    assert plan(back, NOW) == TakeBack(ACCOUNT, "77", body)
    synced = snap(zoom_meeting_id="77", meeting_account_id=ACCOUNT, synced_version=1)
    assert plan(synced, NOW) == Nothing()
    # on another account now: the meeting there goes first, as for any stored meeting
    moved = snap(zoom_meeting_id="77", meeting_account_id=uuid.uuid4(), linked=False)
    assert isinstance(plan(moved, NOW), Abandon)


def test_r_zoom_3_a_recovered_meeting_is_the_days_only_while_it_has_no_other() -> None:
    """R-ZOOM-3 ruling: a day takes back its meeting recovered from Zoom's trash while it wants
    one on that account, is still to be held, and has no other meeting, made or being made."""
    base: dict[str, Any] = {
        "desired": "present",
        "has_meeting": False,
        "creating": False,
        "account_id": ACCOUNT,
        "gone_account_id": ACCOUNT,
        "ended": False,
        "end": NOW + dt.timedelta(hours=1),
        "now": NOW,
    }
    assert takes_back(**base)
    for change in (
        {"desired": "absent"},  # the day is no zoom day any more, or was deleted
        {"has_meeting": True},  # the new meeting is made
        {"creating": True},  # a create was sent and may have made one
        {"account_id": uuid.uuid4()},  # the day moved to another Zoom account
        {"account_id": None},  # or to none
        {"ended": True},  # held
        {"end": NOW - dt.timedelta(minutes=1)},  # over
    ):
        assert not takes_back(**{**base, **change}), change
