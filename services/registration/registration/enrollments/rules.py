"""Pure rules of enrollments (SPEC section 5): the status machine as data, who may sign up,
when registration is open. No session, no HTTP, no clock read: time is passed in. The services
load the facts, ask these, and write."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import AddressHeader, HeaderRegistry
from typing import Literal

from te_shared.contracts import EnrollmentStatus, EventState

S = EnrollmentStatus

#: R-ENR-12's machine: from → allowed targets. ``None`` is a new enrollment.
TRANSITIONS: dict[S | None, frozenset[S]] = {
    None: frozenset({S.PENDING, S.APPROVED, S.WAITLISTED}),
    S.PENDING: frozenset({S.APPROVED, S.DENIED, S.CANCELLED}),
    S.WAITLISTED: frozenset({S.PENDING, S.APPROVED, S.DENIED, S.CANCELLED}),
    S.APPROVED: frozenset(
        {S.DENIED, S.CANCELLED, S.AWAITING_CONFIRMATION, S.PARTICIPATED, S.MISSED}
    ),
    S.DENIED: frozenset({S.APPROVED}),
    S.CANCELLED: frozenset(),
    S.AWAITING_CONFIRMATION: frozenset({S.APPROVED, S.PARTICIPATED, S.MISSED, S.DENIED}),
    S.PARTICIPATED: frozenset({S.APPROVED, S.MISSED}),
    S.MISSED: frozenset({S.APPROVED, S.PARTICIPATED}),
}

#: What an admin may set through PATCH.
ADMIN_TARGETS = frozenset({S.APPROVED, S.DENIED, S.PARTICIPATED, S.MISSED, S.CANCELLED})

#: R-ENR-4/5 ruling: admin enrollment moves these to ``approved``; any other live status is
#: left as it is, so re-importing a file changes nothing however the statuses moved on.
MOVED_BY_ADMIN_ENROLLMENT = frozenset({S.PENDING, S.WAITLISTED})

#: R-ENR-9: statuses that go back to ``approved`` when a future day is added to an ended session.
REOPENED_BY_NEW_DAY = frozenset({S.AWAITING_CONFIRMATION, S.PARTICIPATED, S.MISSED})

#: R-ENR-11: statuses that attendance moves to ``participated``.
MOVED_BY_ATTENDANCE = frozenset({S.APPROVED, S.AWAITING_CONFIRMATION})


def may_change(current: S | None, target: S) -> bool:
    """R-ENR-12: whether ``current`` (None: a new enrollment) may become ``target``."""
    return target in TRANSITIONS[current]


def visible_to_users(state: str, deleted: bool) -> bool:
    """R-ENR-1: users see an event only while it is active (and exists)."""
    return not deleted and state == EventState.ACTIVE


def registration_open(
    dated: bool, registration_end: dt.datetime | None, session_deleted: bool, now: dt.datetime
) -> bool:
    """R-SES-5, R-ENR-3: registration ends at ``registration_end`` for dated events; undated
    ones never end; a deleted session is never open."""
    if session_deleted:
        return False
    if not dated or registration_end is None:
        return True
    return now < registration_end


def full(limit_enabled: bool, participant_limit: int | None, taken: int) -> bool:
    """R-ENR-6: no seat is free (the conditional seat update stays the guarantee)."""
    return limit_enabled and participant_limit is not None and taken >= participant_limit


@dataclass(frozen=True)
class SignUpFacts:
    """What R-ENR-3 decides a sign-up on, loaded in one read."""

    is_admin: bool
    event_active: bool
    has_access: bool
    #: the session of the user's live enrollment in the event, if any
    enrolled_in: object | None
    session: object
    registration_open: bool
    full: bool
    waitlist_enabled: bool


@dataclass(frozen=True)
class Refusal:
    status: int  # 404 or 409
    code: str
    detail: str


#: no free seat and no waitlist (read with the facts, or the seat-taking write found none)
SESSION_FULL = Refusal(409, "session_full", "The session has no free seat.")

#: the user signs up again for the session they are in: answer with that enrollment (a retry)
REPLAY: Literal["replay"] = "replay"


def sign_up_decision(facts: SignUpFacts) -> Refusal | Literal["replay"] | None:
    """R-ENR-3 in its order: the event must be visible with access (users who lack either
    are told the session does not exist; an admin, who sees the event, is told which
    condition is missing); a sign-up for the session one is already in is a replay (the
    client may retry safely); no live enrollment in another session; registration open; a
    free seat unless there is a waitlist. None: the sign-up may go ahead."""
    if not facts.is_admin and not (facts.event_active and facts.has_access):
        return Refusal(404, "session_not_found", "No such session.")
    if not facts.event_active:
        return Refusal(409, "event_not_active", "The event is not active.")
    if not facts.has_access:
        return Refusal(409, "no_access", "You have no access to this event.")
    if facts.enrolled_in is not None and facts.enrolled_in == facts.session:
        return REPLAY
    if facts.enrolled_in is not None:
        return Refusal(409, "already_enrolled", "You already have an enrollment in this event.")
    if not facts.registration_open:
        return Refusal(409, "registration_ended", "Registration for this session has ended.")
    if facts.full and not facts.waitlist_enabled:
        return SESSION_FULL
    return None


def first_status(requires_approval: bool) -> S:
    """R-ENR-3: a self sign-up starts approved, or pending when the event requires approval."""
    return S.PENDING if requires_approval else S.APPROVED


def reopens_session(confirmed: bool, start: dt.datetime, at: dt.datetime) -> bool:
    """R-ENR-9: a day added to an ended session with confirmation (R-DAY-8), starting after
    ``at`` (when catalog said so)."""
    return confirmed and start > at


#: R-ENR-5: the import's columns by the names HR exports give them. A header cell is read
#: case-insensitively, without spaces, dots, hyphens and underscores ("E-mail", "User ID",
#: "Email address", "Session name"); other columns are ignored.
IMPORT_COLUMNS: dict[str, str] = {
    "userid": "user_id",
    "email": "email",
    "emailaddress": "email",
    "session": "session",
    "sessionname": "session",
}
_HEADER_NOISE = re.compile(r"[\s._-]+")


def import_column(header_cell: str) -> str | None:
    """The import column a header cell names (:data:`IMPORT_COLUMNS`), if any."""
    return IMPORT_COLUMNS.get(_HEADER_NOISE.sub("", header_cell).casefold())


def import_columns(header: Sequence[str]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Where each import column is (by index) and the columns more than one header cell
    names (with all their indexes): the import refuses those rather than pick one."""
    found: dict[str, list[int]] = {}
    for index, cell in enumerate(header):
        column = import_column(cell)
        if column is not None:
            found.setdefault(column, []).append(index)
    where = {column: indexes[0] for column, indexes in found.items()}
    return where, {column: indexes for column, indexes in found.items() if len(indexes) > 1}


def looks_like_email(value: str) -> bool:
    """One ``@`` with something before it and a dotted domain after it (providers vary too
    much for more)."""
    local, at, domain = value.rpartition("@")
    return bool(at and local and "." in domain.strip(".") and " " not in value)


_ADDRESSES = HeaderRegistry()


def cell_address(cell: str) -> str | None:
    """R-ENR-5: the e-mail address an import cell names, as it is written (``ann@x.io``) or as
    mail programs copy it (``Ann Smith <ann@x.io>``, ``"Smith, Ann" <ann@x.io>``; a ``;`` or
    ``,`` left after it from a copied list). Read by the standard library's RFC 5322 parser:
    None when the cell names no address, more than one (never one picked), or has any defect
    (an unclosed ``<``)."""
    text = cell.strip().rstrip(";,").rstrip()
    if not text:
        return None
    try:
        header = _ADDRESSES("to", text)
    except (HeaderParseError, ValueError, IndexError):  # a parser's refusal of odd text
        return None
    if not isinstance(header, AddressHeader) or header.defects or len(header.addresses) != 1:
        return None
    address = str(header.addresses[0].addr_spec)
    return address if looks_like_email(address) else None
