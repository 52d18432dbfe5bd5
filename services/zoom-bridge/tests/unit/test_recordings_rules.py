"""R-ZOOM-7: a day's recording files after Zoom's notifications (``rules.recordings_after``):
files come and go, ordered by Zoom's ``event_ts``, whatever order the deliveries take."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from zoom_bridge.webhooks.rules import (
    Recordings,
    bulk_recordings,
    files_changed,
    notified_after,
    recordings_after,
)

COMPLETED, RECOVERED = "recording.completed", "recording.recovered"
TRASHED, DELETED = "recording.trashed", "recording.deleted"


def file(key: str, instance: str = "inst==") -> dict[str, Any]:
    return {"id": key, "play_url": f"https://zoom.us/rec/play/{key}", "instance": instance}


def ids(recordings: Recordings | None) -> list[str]:
    assert recordings is not None
    return [f["id"] for f in recordings.files]


NOTHING = Recordings((), {})


def test_files_come_once_and_remember_when() -> None:
    after = recordings_after(NOTHING, COMPLETED, 100, [file("v"), file("a")], "inst==")
    assert ids(after) == ["v", "a"]
    assert after is not None
    assert [f["at"] for f in after.files] == [100, 100]
    again = recordings_after(after, COMPLETED, 100, [file("v"), file("a")], "inst==")
    assert again is not None
    assert not files_changed(after, again)  # a duplicate changes nothing shown


def test_a_trashed_file_goes_and_a_late_older_completion_does_not_bring_it_back() -> None:
    shown = recordings_after(NOTHING, COMPLETED, 100, [file("v"), file("a")], "inst==")
    assert shown is not None
    trashed = recordings_after(shown, TRASHED, 200, [{"id": "v"}], "inst==")
    assert ids(trashed) == ["a"]
    assert trashed is not None
    assert trashed.gone == {"v": 200}
    late = recordings_after(trashed, COMPLETED, 150, [file("v")], "inst==")
    assert ids(late) == ["a"]
    recovered = recordings_after(trashed, RECOVERED, 300, [file("v")], "inst==")
    assert ids(recovered) == ["a", "v"]
    assert recovered is not None
    assert recovered.gone == {}


def test_a_trash_sent_before_a_recovery_but_delivered_after_it_changes_nothing() -> None:
    shown = recordings_after(NOTHING, COMPLETED, 100, [file("a")], "inst==")
    recovered = recordings_after(shown or NOTHING, RECOVERED, 300, [file("a")], "inst==")
    late_trash = recordings_after(recovered or NOTHING, TRASHED, 200, [{"id": "a"}], "inst==")
    assert ids(late_trash) == ["a"]


def test_without_a_file_list_the_whole_instance_goes() -> None:
    shown = recordings_after(
        NOTHING, COMPLETED, 100, [file("v"), file("x", instance="other==")], "inst=="
    )
    gone = recordings_after(shown or NOTHING, DELETED, 200, [], "inst==")
    assert ids(gone) == ["x"]
    older = Recordings(({"id": "old", "play_url": "https://zoom.us/rec/play/old"},), {})
    assert ids(recordings_after(older, TRASHED, 200, [], "inst==")) == []  # no instance kept


def test_a_file_that_never_came_is_remembered_as_gone_without_a_change() -> None:
    after = recordings_after(NOTHING, DELETED, 200, [{"id": "v"}], "inst==")
    assert after is not None
    assert not files_changed(NOTHING, after)
    assert after.gone == {"v": 200}
    assert ids(recordings_after(after, COMPLETED, 100, [file("v")], "inst==")) == []


def test_other_events_are_not_recording_changes() -> None:
    assert recordings_after(NOTHING, "meeting.ended", 1, [], None) is None


def test_a_trashed_file_is_kept_as_shown_and_a_recovery_by_id_brings_it_back() -> None:
    """Zoom's bulk recovery names files by id only: a file comes back as it was shown when it
    was trashed; one deleted for good, or never shown, does not."""
    shown = recordings_after(NOTHING, COMPLETED, 100, [file("v"), file("a")], "inst==")
    assert shown is not None
    trashed = recordings_after(shown, TRASHED, 200, [], "inst==")  # the whole instance
    assert trashed is not None
    assert ids(trashed) == []
    assert set(trashed.trashed) == {"v", "a"}
    assert trashed.trashed["v"]["play_url"] == "https://zoom.us/rec/play/v"
    back = recordings_after(trashed, RECOVERED, 300, [{"id": "v"}, {"id": "never"}], "inst==")
    assert ids(back) == ["v"]
    assert back is not None
    assert back.files[0]["play_url"] == "https://zoom.us/rec/play/v"
    assert set(back.trashed) == {"a"}
    assert set(back.gone) == {"a"}
    deleted = recordings_after(back, DELETED, 400, [{"id": "a"}], "inst==")
    assert deleted is not None
    assert deleted.trashed == {}
    again = recordings_after(deleted, RECOVERED, 500, [{"id": "a"}], "inst==")
    assert ids(again) == ["v"]  # deleted for good: nothing says where it played


def test_a_bulk_recovery_without_ids_brings_back_the_instances_trashed_files() -> None:
    shown = recordings_after(
        NOTHING, COMPLETED, 100, [file("v"), file("x", instance="other==")], "inst=="
    )
    assert shown is not None
    trashed = recordings_after(shown, TRASHED, 200, [{"id": "v"}, {"id": "x"}], "inst==")
    assert trashed is not None
    back = recordings_after(trashed, RECOVERED, 300, [], "inst==")
    assert ids(back) == ["v"]  # the other instance's file stays in the trash
    gone = recordings_after(trashed, DELETED, 300, [], "other==")
    assert gone is not None
    assert set(gone.trashed) == {"v"}  # the other instance's trash is emptied


def test_bulk_notifications_name_instances_and_file_ids_each_once() -> None:
    trashed = {"meeting_uuids": ["a==", "b==", "a==", 7, "", "x" * 201]}
    assert bulk_recordings("recording.batch_trashed", trashed) == [("a==", ()), ("b==", ())]
    listed = {
        "meetings": [
            {"meeting_uuid": "a==", "recording_file_ids": ["f1", "f2", 3]},
            {"meeting_uuid": "a==", "recording_file_ids": ["f2", "f3"]},
            {"meeting_uuid": "b=="},
            {"recording_file_ids": ["f9"]},
            "junk",
        ]
    }
    assert bulk_recordings("recording.batch_deleted", listed) == [
        ("a==", ("f1", "f2", "f3")),
        ("b==", ()),
    ]
    assert bulk_recordings("recording.batch_recovered", {"meetings": "junk"}) == []


def test_an_older_notification_of_a_meetings_deletion_or_recovery_changes_nothing() -> None:
    """R-ZOOM-3: ``meeting.deleted`` and ``meeting.recovered`` are ordered by Zoom's
    ``event_ts``, whatever order they are delivered in."""
    assert notified_after(100, None)
    assert notified_after(200, 100)
    assert not notified_after(100, 200)  # a deletion retried after the recovery that undid it
    assert not notified_after(100, 100)


BY_ID = [{"id": "v"}]
NOTICES = {
    "completed": (COMPLETED, 100, [file("v")]),
    "trashed by id": (TRASHED, 200, BY_ID),
    "trashed, the whole instance": (TRASHED, 200, []),
    "recovered by id": (RECOVERED, 300, BY_ID),
    "trashed again, the whole instance": (TRASHED, 350, []),
    "deleted by id": (DELETED, 400, BY_ID),
}


def delivered(order: tuple[str, ...]) -> Recordings:
    now = NOTHING
    for name in order:
        event, at, listed = NOTICES[name]
        after = recordings_after(now, event, at, listed, "inst==")
        assert after is not None
        now = after
    return now


@pytest.mark.parametrize("trash", ["trashed by id", "trashed, the whole instance"])
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_file_trashed_then_recovered_by_id_is_shown_whatever_the_delivery_order(
    trash: str, order: tuple[int, ...]
) -> None:
    """Zoom retries a notification for hours: a host's trash and a bulk recovery by id (Zoom's
    ``recording.batch_recovered``) may reach the bridge before the file's completion, or the
    recovery before the trash it undid. Sent in the order completed, trashed, recovered, the
    file is at Zoom: every delivery order shows it."""
    sent = ("completed", trash, "recovered by id")
    final = delivered(tuple(sent[i] for i in order))
    assert ids(final) == ["v"]
    assert final.files[0]["play_url"] == "https://zoom.us/rec/play/v"
    assert final.files[0]["at"] == 300
    assert final.gone == {}
    assert final.trashed == {}
    assert final.came == {}


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_a_file_deleted_for_good_after_its_recovery_is_gone_whatever_the_delivery_order(
    order: tuple[int, ...],
) -> None:
    sent = ("completed", "trashed by id", "recovered by id", "deleted by id")
    final = delivered(tuple(sent[i] for i in order))
    assert ids(final) == []
    assert final.gone == {"v": 400}
    assert final.came == {}


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_a_recording_trashed_whole_after_its_recovery_is_gone_whatever_the_delivery_order(
    order: tuple[int, ...],
) -> None:
    """Zoom's bulk trash names instances only (``recording.batch_trashed``): the whole
    recording went at that time, also files the day does not show when it is delivered (in
    the trash still, their recovery late, or not come yet). Every delivery order leaves the
    file in the trash, as at Zoom, and a recovery by id after it brings it back."""
    sent = ("completed", "trashed by id", "recovered by id", "trashed again, the whole instance")
    final = delivered(tuple(sent[i] for i in order))
    assert ids(final) == []
    assert set(final.trashed) == {"v"}
    back = recordings_after(final, RECOVERED, 500, BY_ID, "inst==")
    assert ids(back) == ["v"]
    assert back is not None
    assert back.files[0]["play_url"] == "https://zoom.us/rec/play/v"


#: a host's moves of a recording of two files at Zoom: (action, the files it names, or none for
#: the whole recording). Zoom's bulk recovery names file ids, so a recovery names them
MOVES = {
    "trash v": (TRASHED, ("v",)),
    "trash the recording": (TRASHED, ()),
    "recover v": (RECOVERED, ("v",)),
    "recover in bulk": (RECOVERED, ("v", "w")),
    "delete v": (DELETED, ("v",)),
    "delete the recording": (DELETED, ()),
}
#: what each event takes (a file's status at Zoom) and makes of it
TAKES: dict[str, tuple[tuple[str, ...], str]] = {
    TRASHED: (("live",), "trashed"),
    RECOVERED: (("trashed",), "live"),
    DELETED: (("live", "trashed"), "deleted"),
}


def at_zoom(moves: tuple[str, ...]) -> tuple[list[tuple[str, int, list[Any]]], list[str]] | None:
    """Zoom's notifications of a recording completed at 100 and then ``moves`` (one each 100
    later), and the files live at the end; None when a move has nothing to take."""
    status = {"v": "live", "w": "live"}
    sent: list[tuple[str, int, list[Any]]] = [(COMPLETED, 100, [file("v"), file("w")])]
    for n, name in enumerate(moves):
        event, named = MOVES[name]
        taken, becomes = TAKES[event]
        moved = [k for k in (named or status) if status[k] in taken]
        if not moved:
            return None
        status.update(dict.fromkeys(moved, becomes))
        sent.append((event, 200 + 100 * n, [{"id": k} for k in moved] if named else []))
    return sent, sorted(k for k, s in status.items() if s == "live")


def test_every_delivery_order_of_up_to_four_moves_ends_as_at_zoom() -> None:
    """R-ZOOM-7, exhaustively: a recording of two files completes, then up to four moves by a
    host (trash, recover, delete; one file or the whole recording; in bulk too), and Zoom
    delivers the notifications in every possible order (it retries a failed one for hours).
    The day ends showing exactly the files live at Zoom, whatever the order (8,402 orders;
    before this rule 290 of the 722 orders of up to three moves ended otherwise)."""
    wrong: list[str] = []
    orders = 0
    for length in range(1, 5):
        for moves in itertools.product(MOVES, repeat=length):
            made = at_zoom(moves)
            if made is None:
                continue
            sent, live = made
            for order in itertools.permutations(sent):
                now = NOTHING
                for event, at, listed in order:
                    now = recordings_after(now, event, at, listed, "inst==") or now
                orders += 1
                if sorted(f["id"] for f in now.files) != live:
                    wrong.append(f"{moves}: delivered {[(e, at) for e, at, _ in order]}")
    assert orders == 8402
    assert wrong == []
