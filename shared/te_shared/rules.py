"""Rules several services apply, defined once next to the contracts (SPEC IDs named). Pure: no
session, no HTTP, no clock read.

- status sets: which enrollment statuses hold a seat (R-ENR-6), show in which tab (R-ENR-10),
  may have a zoom day's join link (R-ZOOM-3);
- the name key of R-SES-3, which is also how an import row's ``session`` finds its session;
- whether a zoom day is recorded to the cloud (R-DAY-9, R-ZOOM-7);
- the join link a zoom day shows after an announcement of its meeting (R-ZOOM-3, R-ZOOM-8).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Sequence
from typing import TypeVar

from te_shared.contracts import EnrollmentStatus, MeetingStatus, ZoomAccountRole

S = EnrollmentStatus

#: R-CO-1 defaults that other services apply to a company catalog never announced settings for
#: (catalog announces them when an admin first saves them; until then they are these).
DEFAULT_ZOOM_ENABLED = False
DEFAULT_TRAINING_MODULE_ENABLED = True

#: R-ENR-6: statuses that hold a seat of the session's limit.
SEAT_TAKING: frozenset[EnrollmentStatus] = frozenset(
    {S.PENDING, S.APPROVED, S.AWAITING_CONFIRMATION, S.PARTICIPATED, S.MISSED}
)

#: R-ENR-2: a live enrollment is any but a withdrawn one (one per user and event).
LIVE: frozenset[EnrollmentStatus] = frozenset(set(S) - {S.CANCELLED})

#: R-ENR-10 (ruling): while the session has not ended, every live enrollment but a denied one
#: shows in the Participating tab.
PARTICIPATING_TAB: frozenset[EnrollmentStatus] = frozenset(LIVE - {S.DENIED})

#: R-ENR-10: once the session's last day has ended.
COMPLETED_TAB: frozenset[EnrollmentStatus] = frozenset(
    {S.APPROVED, S.AWAITING_CONFIRMATION, S.PARTICIPATED, S.MISSED}
)

#: R-ZOOM-3 (ruling): who may have a zoom day's join link and recordings, besides the
#: organizer and the company's admins: the people holding a seat in the day's session and
#: admitted to it. An allow-list, so a status added later grants nothing until it is named
#: here. ``pending`` holds a seat (R-ENR-6) but is not admitted yet.
JOIN_LINK: frozenset[EnrollmentStatus] = frozenset(
    {S.APPROVED, S.AWAITING_CONFIRMATION, S.PARTICIPATED, S.MISSED}
)


T = TypeVar("T")
#: after every date: the sort key of what has no start yet (and an end that never comes)
FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


def sessions_in_user_order(
    sessions: Sequence[T],
    *,
    is_open: Callable[[T], bool],
    first_start: Callable[[T], dt.datetime | None],
    registration_end: Callable[[T], dt.datetime | None],
    key: Callable[[T], str],
) -> list[T]:
    """R-SES-10: sessions whose registration is open come first, by their first day's start
    (sessions without days last); then the others by ``registration_end``, newest first;
    ``key`` breaks ties so the order is stable."""
    open_ = [s for s in sessions if is_open(s)]
    closed = [s for s in sessions if not is_open(s)]
    open_.sort(key=lambda s: (first_start(s) or FAR_FUTURE, key(s)))
    closed.sort(key=lambda s: (-(registration_end(s) or _EARLIEST).timestamp(), key(s)))
    return open_ + closed


def name_key(name: str) -> str:
    """R-SES-3: the form under which two session names are the same: Unicode-normalised
    (NFKC: a full-width letter is the plain one), white space trimmed and runs of it folded to one
    space, case-folded ("STRASSE" and "straße" match). Catalog keeps names unique by it;
    an import row's ``session`` is looked up by it."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def training_module(announced: bool | None) -> bool:
    """R-CO-1: the company's training module as catalog announced it, or its default when
    catalog never did (a company that never saved settings has the defaults)."""
    return DEFAULT_TRAINING_MODULE_ENABLED if announced is None else announced


def cloud_recording(role: ZoomAccountRole | str | None, training_module_enabled: bool) -> bool:
    """R-DAY-9, R-ZOOM-7: cloud recording (automatic recording of a meeting, recordings
    attached to a day) needs an account with the administrator role and the company's
    training module enabled."""
    return role == ZoomAccountRole.ADMINISTRATOR and training_module_enabled


#: R-ZOOM-3, R-ZOOM-8: the meeting states with no meeting at Zoom behind them: deleted, or held
#: back by Zoom's daily limit
NO_MEETING: frozenset[MeetingStatus] = frozenset({MeetingStatus.DELETED, MeetingStatus.PENDING})


def meeting_join_link(status: MeetingStatus | str, join_url: str | None) -> str | None:
    """R-ZOOM-3, R-ZOOM-8: the join link a zoom day shows after the bridge announced its
    meeting in ``status`` with ``join_url``: the meeting's link while one stands at Zoom (made,
    updated, or failed: a change Zoom refused leaves the meeting and its link as they were, and
    a meeting never made has none), no link once it is deleted or while it is held back.
    Catalog's day, registration's calendar and the integrations' events all show this one."""
    return None if MeetingStatus(status) in NO_MEETING else join_url
