"""registration.me.rules, tested directly (no database, no HTTP): rows built in memory."""

from __future__ import annotations

import datetime as dt
import uuid

from registration.me import rules
from registration.me.schemas import Tab
from registration.models import DayReplica, Enrollment, EventReplica, SessionReplica
from registration.readmodel import DayFacts, Timeline
from te_shared.rules import FAR_FUTURE

NOW = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)
EVENT = EventReplica(
    event_id=uuid.uuid4(),
    company_id="c",
    title={},
    state="active",
    dated=True,
    requires_approval=False,
    deleted=False,
    version=1,
)


def placed(reg_end_days: float, first_day: float, last_day: float) -> rules.Placed:
    session_id = uuid.uuid4()
    row = SessionReplica(
        session_id=session_id,
        company_id="c",
        event_id=EVENT.event_id,
        name={"en": str(session_id)},
        timezone="UTC",
        registration_end=NOW + dt.timedelta(days=reg_end_days),
        limit_enabled=False,
        participant_limit=None,
        waitlist_enabled=False,
        deleted=False,
        version=1,
        taken=0,
    )
    days: list[DayFacts] = [
        DayReplica(
            day_id=uuid.uuid4(),
            company_id="c",
            session_id=session_id,
            event_id=EVENT.event_id,
            format="online",
            start=NOW + dt.timedelta(days=d),
            end=NOW + dt.timedelta(days=d, hours=1),
            deleted=False,
            version=1,
        )
        for d in (first_day, last_day)
    ]
    return row, Timeline(days)


def enrolled(in_: rules.Placed, status: str) -> Enrollment:
    return Enrollment(
        id=uuid.uuid4(),
        company_id="c",
        event_id=EVENT.event_id,
        session_id=in_[0].session_id,
        user_id="u",
        status=status,
        version=1,
    )


def test_r_enr_10_tab_of() -> None:
    open_ = placed(1, 2, 3)
    ended = placed(-5, -4, -3)
    assert rules.tab_of(EVENT, None, [open_, ended], NOW) == Tab.AVAILABLE
    assert rules.tab_of(EVENT, None, [ended], NOW) is None  # nothing open
    for status in ("pending", "approved", "waitlisted", "participated", "missed"):
        assert rules.tab_of(EVENT, enrolled(open_, status), [open_], NOW) == Tab.PARTICIPATING
    assert rules.tab_of(EVENT, enrolled(open_, "denied"), [open_], NOW) is None
    for status in ("approved", "awaiting_confirmation", "participated", "missed"):
        assert rules.tab_of(EVENT, enrolled(ended, status), [ended], NOW) == Tab.COMPLETED
    for status in ("pending", "waitlisted", "denied"):
        assert rules.tab_of(EVENT, enrolled(ended, status), [ended], NOW) is None


def test_r_ses_10_ordered() -> None:
    late_open = placed(2, 9, 9)
    early_open = placed(1, 4, 4)
    closed_recent = placed(-1, 5, 5)
    closed_older = placed(-3, 6, 6)
    got = rules.ordered(EVENT, [closed_older, late_open, closed_recent, early_open], NOW)
    assert got == [early_open, late_open, closed_recent, closed_older]


def test_r_enr_2_visible() -> None:
    a, b = placed(1, 2, 2), placed(1, 3, 3)
    assert rules.visible(None, [a, b]) == [a, b]
    assert rules.visible(enrolled(b, "approved"), [a, b]) == [b]


def test_event_order_by_first_start_of_what_the_user_sees() -> None:
    a, b = placed(1, 2, 2), placed(1, 8, 8)
    assert rules.event_order(EVENT, None, [a, b])[0] == a[1].first_start
    assert rules.event_order(EVENT, enrolled(b, "approved"), [a, b])[0] == b[1].first_start
    assert rules.event_order(EVENT, None, [])[0] == FAR_FUTURE
