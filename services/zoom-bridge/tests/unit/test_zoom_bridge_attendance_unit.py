"""Attendance as pure functions (``zoom_bridge.meetings.attendance``): reading Zoom's
participant events, pairing them into stays, grouping stays into participants, matching them
and summing per user. No database, no simulator."""

from __future__ import annotations

import datetime as dt
from types import ModuleType
from typing import Any

from te_testing.clock import minutes_after
from zoom_bridge.meetings.attendance import (
    JOINED,
    JOINED_BREAKOUT,
    LEFT,
    LEFT_BREAKOUT,
    REPORT,
    WEBHOOK,
    Credit,
    Directory,
    How,
    Match,
    Person,
    Segment,
    Stay,
    Who,
    covered_seconds,
    match,
    participant_id,
    participants,
    read_event,
    stays,
    text_value,
    totals,
)

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
I1, I2 = "aW5zdGFuY2Ugb25lAAAAAA==", "aW5zdGFuY2UgdHdvAAAAAA=="


def half(
    instance: str | None,
    stay: str,
    *,
    join: float | None = None,
    leave: float | None = None,
    **who: Any,
) -> Segment:
    """A webhook row: one half of a stay."""
    joined = join is not None
    when = minutes_after(T0, join if join is not None else leave or 0)
    key = f"w:{instance}:{stay}:{'j' if joined else 'l'}:{when.isoformat()}"
    return Segment(
        key,
        WEBHOOK,
        instance,
        stay,
        when if joined else None,
        None if joined else when,
        Who(**who),
    )


def whole(instance: str, stay: str, join: float, leave: float, **who: Any) -> Segment:
    """A report row: a whole stay."""
    return Segment(
        f"r:{instance}:{stay}",
        REPORT,
        instance,
        stay,
        minutes_after(T0, join),
        minutes_after(T0, leave),
        Who(**who),
    )


def event_object(payload: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = payload["payload"]["object"]
    return obj


class TestReadEvent:
    def test_a_members_join_as_zoom_sends_it(self, zoom_payloads: ModuleType) -> None:
        ann = zoom_payloads.member("Ann@Example.com", "Ann")
        body = zoom_payloads.participant_joined(
            "81234567890", I1, ann, user_id=zoom_payloads.user_id(0), at=minutes_after(T0, 0)
        )
        assert isinstance(event_object(body)["id"], str)  # a string in meeting.* events
        event = read_event(JOINED, event_object(body))
        assert event is not None
        assert (event.instance, event.stay, event.joined, event.at) == (
            I1,
            "16778240",
            True,
            minutes_after(T0, 0),
        )
        assert event.who.email == "ann@example.com"
        assert event.who.participant_uuid == ann.participant_uuid
        assert event.who.zoom_user_id == ann.id
        assert event.key == f"w:{I1}:16778240:j:{minutes_after(T0, 0).isoformat()}"

    def test_a_guest_has_no_email_nor_zoom_user_id(self, zoom_payloads: ModuleType) -> None:
        guest = zoom_payloads.guest("Guest 1", "PUguest00000000000001")
        body = zoom_payloads.participant_left(
            "81234567890", I1, guest, user_id=zoom_payloads.user_id(1), at=minutes_after(T0, 5)
        )
        event = read_event(LEFT, event_object(body))
        assert event is not None
        assert event.who == Who(name="Guest 1", participant_uuid="PUguest00000000000001")
        assert not event.joined
        assert event.at == minutes_after(T0, 5)

    def test_without_user_id_the_participant_uuid_names_the_stay(self) -> None:
        participant = {"participant_uuid": "p", "join_time": "x"}
        obj: dict[str, Any] = {"id": "1", "uuid": I1, "participant": participant}
        assert read_event(JOINED, obj) is None  # no time it could be read from
        participant["join_time"] = minutes_after(T0, 0).isoformat()
        event = read_event(JOINED, obj)
        assert event is not None
        assert event.stay == "p"

    def test_what_names_no_stay_or_is_not_zooms_is_no_event(self) -> None:
        join = {"user_id": "1", "join_time": minutes_after(T0, 0).isoformat()}
        assert read_event(JOINED, {"uuid": I1, "participant": {"join_time": "2026-11-20"}}) is None
        assert read_event(JOINED, {"uuid": "x" * 65, "participant": join}) is None
        assert read_event(JOINED, {"uuid": I1, "participant": "nobody"}) is None
        assert read_event("meeting.participant_joined_waiting_room", {"participant": join}) is None
        no_instance = read_event(JOINED, {"participant": join})
        assert no_instance is not None
        assert no_instance.instance is None

    def test_a_breakout_rooms_stay_is_keyed_by_the_room(self, zoom_payloads: ModuleType) -> None:
        """A stay in a breakout room has the room's ``user_id`` and the room's uuid in its key:
        it never pairs with a main-room half, and the same ``user_id`` in two rooms is two
        stays. Who it is reads as in the main room."""
        ann = zoom_payloads.member("ann@example.com", "Ann")
        room = "J8kPRqdKQ2qNTdUEabbnBw=="

        def read(event: str, at: float, user_id: str, in_room: str = room) -> Any:
            body = zoom_payloads.participant_breakout_room(
                "81234567890",
                I1,
                in_room,
                ann,
                user_id=user_id,
                parent_user_id="16778240",
                at=minutes_after(T0, at),
                joined=event == JOINED_BREAKOUT,
            )
            assert body["event"] == event
            return read_event(event, event_object(body))

        joined, left = read(JOINED_BREAKOUT, 20, "16779264"), read(LEFT_BREAKOUT, 40, "16779264")
        other_room = read(JOINED_BREAKOUT, 20, "16779264", in_room="another-room==")
        main = read_event(
            JOINED,
            {"uuid": I1, "participant": {"user_id": "16779264", "join_time": T0.isoformat()}},
        )
        assert joined is not None
        assert left is not None
        assert other_room is not None
        assert main is not None
        assert (joined.instance, joined.joined, left.joined) == (I1, True, False)
        assert joined.stay == left.stay
        assert joined.stay.startswith("br:")
        assert joined.stay.endswith(":16779264")
        assert len({joined.stay, other_room.stay, main.stay}) == 3
        assert joined.who.email == "ann@example.com"
        # without its room it names no stay; a room's id of any length still fits the column
        at = T0.isoformat()
        no_room: dict[str, Any] = {"uuid": I1, "participant": {"user_id": "1", "join_time": at}}
        assert read_event(JOINED_BREAKOUT, no_room) is None
        long_ids = {
            "uuid": I1,
            "breakout_room_uuid": "r" * 64,
            "participant": {"user_id": "u" * 64, "join_time": at},
        }
        event = read_event(JOINED_BREAKOUT, long_ids)
        assert event is not None
        assert len(event.stay) <= 100


class TestStays:
    def test_halves_pair_whatever_order_they_came_in(self) -> None:
        rows = [
            half(I1, "9001", leave=30),
            half(I1, "9001", join=5),
        ]
        (stay,) = stays(rows)
        assert (stay.join, stay.leave, stay.seconds) == (
            minutes_after(T0, 5),
            minutes_after(T0, 30),
            25 * 60,
        )

    def test_rejoins_with_one_stay_id_pair_in_time_order(self) -> None:
        rows = [
            half(I1, "p-gus", join=0),
            half(I1, "p-gus", leave=10),
            half(I1, "p-gus", leave=35),  # before its join
            half(I1, "p-gus", join=20),
        ]
        found = stays(rows)
        assert [(s.join, s.leave) for s in found] == [
            (minutes_after(T0, 0), minutes_after(T0, 10)),
            (minutes_after(T0, 20), minutes_after(T0, 35)),
        ]

    def test_a_second_join_while_in_is_the_same_stay(self) -> None:
        found = stays([half(I1, "1", join=0), half(I1, "1", join=1), half(I1, "1", leave=10)])
        assert [(s.join, s.leave) for s in found] == [(minutes_after(T0, 0), minutes_after(T0, 10))]

    def test_a_leave_whose_join_never_came_counts_nothing(self) -> None:
        (stay,) = stays([half(I1, "1", leave=10)])
        assert stay.seconds == 0

    def test_a_stay_open_when_its_instance_ended_counts_until_the_end(self) -> None:
        rows = [half(I1, "1", join=0), half(I2, "1", join=50)]
        found = stays(rows, ended={I1: minutes_after(T0, 40)})
        assert [(s.instance, s.until, s.seconds) for s in found] == [
            (I1, minutes_after(T0, 40), 40 * 60),
            (I2, None, 0),  # still in the meeting: counts once they leave
        ]

    def test_the_same_user_id_in_two_instances_is_two_stays(self) -> None:
        rows = [
            half(I1, "16778240", join=0, email="ann@x.io"),
            half(I2, "16778240", join=60, name="Guest 1"),
            half(I1, "16778240", leave=30),
            half(I2, "16778240", leave=70),
        ]
        found = stays(rows)
        assert [(s.instance, s.seconds, s.who.email) for s in found] == [
            (I1, 30 * 60, "ann@x.io"),
            (I2, 10 * 60, None),
        ]

    def test_a_report_replaces_the_webhook_rows_of_its_instance(self) -> None:
        rows = [
            half(I1, "1", join=0, email="ann@x.io"),
            whole(I1, "1", 0, 15, email="ann@x.io"),
            half(I2, "1", join=20, email="ann@x.io"),
            half(I2, "1", leave=25, email="ann@x.io"),
        ]
        found = stays(rows, reported={I1})
        assert [(s.instance, s.seconds) for s in found] == [(I1, 15 * 60), (I2, 5 * 60)]


class TestCoveredSeconds:
    def test_overlaps_count_once(self) -> None:
        assert (
            covered_seconds(
                [
                    (minutes_after(T0, 0), minutes_after(T0, 10)),
                    (minutes_after(T0, 5), minutes_after(T0, 15)),
                    (minutes_after(T0, 20), minutes_after(T0, 30)),
                ]
            )
            == 25 * 60
        )
        assert (
            covered_seconds(
                [
                    (minutes_after(T0, 0), minutes_after(T0, 10)),
                    (minutes_after(T0, 0), minutes_after(T0, 10)),
                ]
            )
            == 10 * 60
        )
        assert covered_seconds([(minutes_after(T0, 10), minutes_after(T0, 0))]) == 0


def stay(instance: str, join: float, leave: float, key: str, **who: Any) -> Stay:
    return Stay(
        instance,
        minutes_after(T0, join),
        minutes_after(T0, leave),
        minutes_after(T0, leave),
        Who(**who),
        (key,),
    )


class TestParticipants:
    def test_stays_sharing_anything_that_names_a_person_are_one_participant(self) -> None:
        found = participants(
            [
                stay(I1, 0, 10, "a", participant_uuid="pu-ann", email="ann@x.io"),
                stay(I2, 20, 30, "b", email="ann@x.io", zoom_user_id="zu-ann"),
                stay(I2, 40, 50, "c", zoom_user_id="zu-ann", registrant_id="rg-ann"),
                stay(I1, 1, 2, "d", name="Guest 1"),
                stay(I2, 1, 2, "e", name="Guest 1"),  # another guest of the same name
            ]
        )
        assert [len(p.stays) for p in found] == [3, 1, 1]
        ann = found[0]
        assert ann.id == participant_id("pu:pu-ann")
        assert ann.emails == ["ann@x.io"]
        assert ann.registrant_ids == ["rg-ann"]
        assert (ann.joined_at, ann.left_at, ann.seconds) == (
            minutes_after(T0, 0),
            minutes_after(T0, 50),
            30 * 60,
        )
        assert participant_id("em:ann@x.io") in ann.aliases
        assert found[1].id != found[2].id

    def test_a_guests_id_holds_when_the_report_takes_their_participant_uuid(self) -> None:
        webhook = stay(I1, 0, 10, "w", participant_uuid="pu-guest", name="Guest 1")
        before = participants([webhook])[0].id
        report = stay(I1, 0, 12, "r", participant_uuid="pu-guest", name="Guest 1")
        assert participants([report])[0].id == before

    def test_someone_still_in_the_meeting_has_not_left(self) -> None:
        open_stay = Stay(I1, minutes_after(T0, 0), None, None, Who(email="a@x.io"), ("k",))
        (p,) = participants([stay(I1, 0, 5, "j", email="a@x.io"), open_stay])
        assert p.left_at is None


class TestMatchAndTotals:
    ann = Person("ann", "ann@x.io")
    bea = Person("bea", "bea@x.io")

    def test_the_registrant_id_wins_over_the_email_zoom_shows(self) -> None:
        (p,) = participants([stay(I1, 0, 10, "a", registrant_id="rg-1", email="bea@x.io")])
        book = Directory(registrants={"rg-1": self.ann}, emails={"bea@x.io": self.bea})
        assert match(p, book) == Match(self.ann, How.REGISTRANT)

    def test_else_the_email_else_an_admins_match_else_nobody(self) -> None:
        (member,) = participants([stay(I1, 0, 10, "a", email="bea@x.io")])
        (guest,) = participants([stay(I1, 0, 10, "g", participant_uuid="pu-g", name="Guest")])
        book = Directory(
            emails={"bea@x.io": self.bea},
            credits={participant_id("pu:pu-g"): Credit(self.ann, "admin1")},
        )
        assert match(member, book) == Match(self.bea, How.EMAIL)
        assert match(guest, book) == Match(self.ann, How.ADMIN, "admin1")
        assert match(guest, Directory()) is None

    def test_instances_and_rejoins_add_up_per_user_and_overlaps_count_once(self) -> None:
        found = participants(
            [
                stay(I1, 0, 10, "a1", email="ann@x.io"),
                stay(I2, 60, 90, "a2", email="ann@x.io"),
                stay(I2, 65, 80, "g", participant_uuid="pu-g"),  # ann's phone, as a guest
                stay(I1, 0, 30, "b", email="bea@x.io"),
            ]
        )
        book = Directory(
            emails={"ann@x.io": self.ann, "bea@x.io": self.bea},
            credits={participant_id("pu:pu-g"): Credit(self.ann, "admin1")},
        )
        figures = totals((p, m) for p in found if (m := match(p, book)) is not None)
        assert {k: (f.minutes, f.matched_by) for k, f in figures.items()} == {
            "ann": (40, None),  # 10 + 30; the phone's 15 minutes were within them
            "bea": (30, None),
        }

    def test_time_in_a_breakout_room_counts_whether_or_not_the_main_room_was_left(
        self,
    ) -> None:
        """Ann is in the main room 0-20 and 40-60, in a breakout room 20-40. Told that she left
        the main room when she went into the room, or not (her main stay then runs 0-60), her
        time is 60 minutes either way: a breakout stay is a stay, and overlaps count once. The
        participants report replaces the main room's webhooks, not the room's: 60 minutes
        whether the report holds the room's stay or not."""
        room = "br:0123456789abcdef:16779264"
        in_room = [half(I1, room, join=20, email="ann@x.io"), half(I1, room, leave=40)]
        left_main = [
            half(I1, "16778240", join=0, email="ann@x.io"),
            half(I1, "16778240", leave=20),
            half(I1, "16780288", join=40, email="ann@x.io"),
            half(I1, "16780288", leave=60),
        ]
        stayed = [half(I1, "16778240", join=0, email="ann@x.io"), half(I1, "16778240", leave=60)]
        book = Directory(emails={"ann@x.io": self.ann})
        # and once Zoom's report replaced the main room's webhooks, with or without the room
        reported = [
            whole(I1, "16778240", 0, 20, email="ann@x.io"),
            whole(I1, "x", 40, 60, email="ann@x.io"),
        ]
        with_room = [*reported, whole(I1, "y", 20, 40, email="ann@x.io")]
        for rows, done in ((left_main, ()), (stayed, ()), (reported, (I1,)), (with_room, (I1,))):
            found = participants(stays([*rows, *in_room], reported=done))
            figures = totals((p, m) for p in found if (m := match(p, book)) is not None)
            assert {k: f.minutes for k, f in figures.items()} == {"ann": 60}

    def test_an_admins_match_that_is_all_of_it_is_named(self) -> None:
        (guest,) = participants([stay(I1, 0, 20, "g", participant_uuid="pu-g")])
        credit = Credit(Person("cid", "cid@x.io"), "admin7")
        found = match(guest, Directory(credits={participant_id("pu:pu-g"): credit}))
        assert found is not None
        (figures,) = totals([(guest, found)]).values()
        assert figures.person.user_id == "cid"
        assert (figures.minutes, figures.matched_by) == (20, "admin7")

    def test_an_enrollment_waiting_for_its_person_is_keyed_by_email(self) -> None:
        waiting = Person(None, "new@x.io")
        (p,) = participants([stay(I1, 0, 5, "n", email="new@x.io")])
        found = match(p, Directory(emails={"new@x.io": waiting}))
        assert found is not None
        assert list(totals([(p, found)])) == ["email:new@x.io"]


class TestTextValue:
    def test_only_what_the_database_can_store_is_kept(self) -> None:
        assert text_value(" 16778240 ") == "16778240"
        assert text_value(16778240) == "16778240"
        for bad in ("", "   ", "x" * 65, "a\x00b", "\ud800", None, True, ["x"]):
            assert text_value(bad) is None
