"""R-ZOOM-3 registrants: who is registered for a day's meeting and who loses it (pure)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from zoom_bridge.meetings.plan import (
    Registered,
    RegistrantPlan,
    RegistrantSnapshot,
    Seat,
    first_name_of,
    plan_registrants,
    registration_settings,
)

DAY = uuid.UUID("00000000-0000-0000-0000-00000000d001")
ACCOUNT = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
ANN = Seat(uuid.UUID("00000000-0000-0000-0000-0000000000e1"), "ann@example.com")
BOB = Seat(uuid.UUID("00000000-0000-0000-0000-0000000000e2"), "bob@example.com")


def registered(seat: Seat, meeting: str = "85", email: str | None = None) -> Registered:
    return Registered(seat.enrollment_id, meeting, f"r-{seat.email}", email or seat.email)


def snap(**changes: Any) -> RegistrantSnapshot:
    base = RegistrantSnapshot(
        day_id=DAY,
        present=True,
        zoom_meeting_id="85",
        account_id=ACCOUNT,
        administrator=True,
        registration=True,
        seats=(ANN, BOB),
        registered=(),
    )
    return dataclasses.replace(base, **changes)


def test_r_zoom_3_every_seat_holder_is_registered_once() -> None:
    assert plan_registrants(snap()) == RegistrantPlan(add=(ANN, BOB))
    done = snap(registered=(registered(ANN), registered(BOB)))
    assert plan_registrants(done).empty


def test_r_zoom_3_a_lost_seat_loses_the_registration() -> None:
    """Status out of JOIN_LINK or enrollment moved to another session: no longer a seat."""
    left = snap(seats=(BOB,), registered=(registered(ANN), registered(BOB)))
    assert plan_registrants(left) == RegistrantPlan(remove=(registered(ANN),))


def test_r_zoom_3_a_changed_email_registers_again() -> None:
    moved = snap(seats=(ANN,), registered=(registered(ANN, email="old@example.com"),))
    plan = plan_registrants(moved)
    assert plan.remove == (registered(ANN, email="old@example.com"),)
    assert plan.add == (ANN,)


def test_r_zoom_3_a_new_meeting_registers_everyone_again() -> None:
    stale = (registered(ANN, meeting="70"), registered(BOB, meeting="70"))
    plan = plan_registrants(snap(registered=stale))
    assert plan.forget == stale  # the old meeting is gone: nothing to remove at Zoom
    assert plan.remove == ()
    assert plan.add == (ANN, BOB)


def test_r_zoom_3_no_meeting_or_no_zoom_day_forgets_the_registrations() -> None:
    rows = (registered(ANN),)
    assert plan_registrants(snap(present=False, registered=rows)) == RegistrantPlan(forget=rows)
    assert plan_registrants(snap(zoom_meeting_id=None, registered=rows)) == RegistrantPlan(
        forget=rows
    )


def test_r_zoom_3_nothing_is_asked_of_zoom_through_an_unusable_account() -> None:
    rows = (registered(ANN), registered(BOB, meeting="70"))
    plan = plan_registrants(snap(account_id=None, registered=rows))
    assert plan == RegistrantPlan(forget=(registered(BOB, meeting="70"),))


def test_r_zoom_3_participant_role_meetings_have_no_registrants() -> None:
    rows = (registered(ANN),)
    plan = plan_registrants(snap(administrator=False, registered=rows))
    assert plan == RegistrantPlan(registration=False, remove=rows)
    assert plan_registrants(snap(administrator=False, registration=False)).empty


def test_r_zoom_3_registration_is_switched_on_before_the_first_registrant() -> None:
    plan = plan_registrants(snap(registration=False))
    assert plan.registration is True
    assert plan.add == (ANN, BOB)
    assert plan_registrants(snap(registration=False, seats=())).empty  # nobody to register


def test_r_zoom_3_registration_settings_follow_the_role() -> None:
    assert registration_settings(True) == {"approval_type": 0, "registration_type": 1}
    assert registration_settings(False) == {"approval_type": 2}


def test_r_zoom_3_a_registrant_is_named_by_the_local_part_of_the_email() -> None:
    assert first_name_of("ann.lee@example.com") == "ann.lee"
    assert len(first_name_of("x" * 100 + "@example.com")) == 64
    assert first_name_of("@example.com") == "Participant"
