"""Reconciliation's pure parts (``zoom_bridge.meetings.reconcile``): instance uuids in paths,
a report's rows as stays, and what the day says about where its attendance came from."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import unquote

from te_testing.clock import minutes_after, zoom_time
from zoom_bridge.meetings.attendance import REPORT, WEBHOOK, Segment, Who, state_of
from zoom_bridge.meetings.reconcile import from_report, instance_path
from zoom_bridge.models import MeetingInstance

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
I1 = "4444AAAiAAAAAiAiAiiAii=="


class TestInstancePath:
    def test_a_plain_uuid_is_encoded_once(self) -> None:
        assert instance_path(I1) == "4444AAAiAAAAAiAiAiiAii%3D%3D"
        assert instance_path("ab+c/d==") == "ab%2Bc%2Fd%3D%3D"

    def test_a_uuid_beginning_with_a_slash_or_holding_two_is_encoded_twice(self) -> None:
        for value in ("/ajXp112QmuoKj4854875==", "ab//cdEF12345678901A==", "/a//b=="):
            path = instance_path(value)
            assert "%252F" in path
            assert "/" not in path
            assert unquote(unquote(path)) == value


def webhook(stay: str, join: float | None, leave: float | None, **who: str) -> Segment:
    return Segment(
        f"w:{I1}:{stay}:{join}:{leave}",
        WEBHOOK,
        I1,
        stay,
        minutes_after(T0, join) if join is not None else None,
        minutes_after(T0, leave) if leave is not None else None,
        Who(**who),
    )


def row(user_id: str, join: float, leave: float, **extra: str) -> dict[str, object]:
    return {
        "id": "",
        "user_id": user_id,
        "name": extra.pop("name", "Someone"),
        "user_email": extra.pop("user_email", ""),
        "join_time": zoom_time(minutes_after(T0, join)),
        "leave_time": zoom_time(minutes_after(T0, leave)),
        "duration": int((leave - join) * 60),
        "status": extra.pop("status", "in_meeting"),
        **extra,
    }


class TestFromReport:
    def test_waiting_room_rows_are_skipped_and_guests_keep_their_participant(self) -> None:
        existing = [webhook("16778240", 5, None, participant_uuid="pu-guest", name="Guest 1")]
        rows = [
            row("16778240", 0, 5, name="Guest 1", status="in_waiting_room"),
            row("16778240", 5, 25, name="Guest 1"),
            row("16779264", 1, 9, user_email="Ann@X.io", registrant_id="rg-ann"),
        ]
        new, gone = from_report(I1, rows, existing)
        assert [(s.source, s.stay, s.join, s.leave) for s in new] == [
            (REPORT, "16778240", minutes_after(T0, 5), minutes_after(T0, 25)),
            (REPORT, "16779264", minutes_after(T0, 1), minutes_after(T0, 9)),
        ]
        assert new[0].who.participant_uuid == "pu-guest"  # taken from the webhook stay
        assert new[1].who == Who(email="ann@x.io", name="Someone", registrant_id="rg-ann")
        assert gone == [existing[0].key]

    def test_rows_of_other_instances_stay_and_older_rows_go_by_email(self) -> None:
        other = Segment("w:other", WEBHOOK, "other==", "1", None, None, Who(email="ann@x.io"))
        legacy = Segment("old", WEBHOOK, None, None, None, None, Who(email="ann@x.io"))
        legacy_other = Segment("old2", WEBHOOK, None, None, None, None, Who(email="bo@x.io"))
        listed = [row("1", 0, 5, user_email="ann@x.io")]
        _, gone = from_report(I1, listed, [other, legacy, legacy_other])
        assert gone == ["old"]

    def test_a_breakout_rooms_webhook_rows_are_not_replaced(self) -> None:
        """The report is of the meeting: the rooms' stays stay beside it (they overlap it and
        count once should the report hold them too)."""
        main = webhook("16778240", 0, None, email="ann@x.io")
        room = webhook("br:0123456789abcdef:16779264", 20, None, email="ann@x.io")
        _, gone = from_report(I1, [row("16778240", 0, 60, user_email="ann@x.io")], [main, room])
        assert gone == [main.key]

    def test_rows_without_both_times_are_no_stays(self) -> None:
        broken = {"user_id": "1", "join_time": zoom_time(minutes_after(T0, 0))}
        new, _ = from_report(I1, [broken, "nonsense"], [])
        assert new == []


def instance(source: str | None, reason: str | None = None, end: float = 0) -> MeetingInstance:
    return MeetingInstance(
        day_id=uuid.uuid4(),
        instance_uuid=f"i{end}",
        ended_at=minutes_after(T0, end),
        source=source,
        report_unavailable_reason=reason,
    )


class TestStateOf:
    def test_before_any_reconciliation_nothing_is_said(self) -> None:
        assert state_of([]) == (None, None)
        assert state_of([instance(None)]) == (None, None)

    def test_the_report_when_it_covered_every_instance(self) -> None:
        assert state_of([instance(REPORT, end=10), instance(REPORT, end=20)]) == ("report", None)

    def test_webhooks_with_the_latest_reason_when_it_did_not(self) -> None:
        held = [
            instance("webhooks", "first", end=10),
            instance(REPORT, end=20),
            instance("webhooks", "latest", end=30),
        ]
        assert state_of(held) == ("webhooks", "latest")
