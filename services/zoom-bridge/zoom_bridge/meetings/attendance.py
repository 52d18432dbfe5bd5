"""Attendance (R-ZOOM-5, R-ZOOM-2, R-ENR-11): what Zoom said about each stay in a day's meeting,
paired into stays, grouped into participants, matched to platform users and summed per user.

The first half of this module is pure (no session, no clock): :func:`read_event` reads a
``meeting.participant_joined``/``_left`` object (or a breakout room's), :func:`stays` pairs the
stored halves of each stay (in any order, re-deliveries absorbed), :func:`participants` groups
the stays of one person, :func:`match` finds their platform user and :func:`totals` sums each
user's time. The second half loads a day's rows and publishes ``AttendanceRecorded``.

- A stay belongs to a meeting **instance** (Zoom's ``uuid``: a meeting held again is a new
  instance, whose ``user_id`` numbering starts again) and is keyed by the instance and
  Zoom's ``user_id`` (else the ``participant_uuid``).
- Waiting-room time is never attendance: the waiting-room events are not stored, and report
  rows with ``status: in_waiting_room`` are skipped.
- Time in a breakout room is attendance: its stays are keyed by the room (see
  :data:`JOINED_BREAKOUT`) and add to the person's time like any other stay, overlaps once.
- One person's stays are grouped by anything that names them: ``participant_uuid``,
  ``registrant_id``, Zoom user id, e-mail.
- A participant is matched by ``registrant_id`` (the personal link of a registered seat
  holder, whatever e-mail they use in Zoom), else by e-mail, else by an admin's match.
- A user's time is the union of the stays of every participant matched to them: rejoins and
  instances add up; two devices at once count once.
- A stay still open when its instance ended counts until the end (``meeting.ended`` may come
  before the last ``participant_left``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_shared.db import is_postgres
from te_shared.outbox import add_message
from te_shared.text import clean_text
from zoom_bridge.models import (
    AttendanceSegment,
    Enrollment,
    MeetingInstance,
    MeetingRegistrant,
    OutboxRecord,
    ParticipantMatch,
    ZoomAccount,
    ZoomMeeting,
)

#: where a row came from
WEBHOOK = "webhook"
REPORT = "report"
#: where an instance's final attendance came from: ``REPORT``, or the webhooks' stays
WEBHOOKS = "webhooks"
#: a report row of a stay in the waiting room (never attendance)
IN_WAITING_ROOM = "in_waiting_room"

#: Zoom's events about one participant's stay in the meeting itself. The waiting-room events
#: (``meeting.participant_joined_waiting_room``, ``_admitted``, ``_left_waiting_room``) are not
#: attendance and are not among them: being admitted is followed by ``participant_joined``.
JOINED = "meeting.participant_joined"
LEFT = "meeting.participant_left"
#: a stay in one of the meeting's breakout rooms is a stay in the meeting: its own key (the
#: room's uuid and the room's ``user_id``), so it never pairs with a main-room half, and a
#: user's time is the union of their stays, so it counts once whether or not Zoom also says
#: the person left the main room when they went into the room
JOINED_BREAKOUT = "meeting.participant_joined_breakout_room"
LEFT_BREAKOUT = "meeting.participant_left_breakout_room"
#: the events that are a half of a stay, and whether each is its join
STAY_HALVES = {JOINED: True, LEFT: False, JOINED_BREAKOUT: True, LEFT_BREAKOUT: False}
#: how the stay id of a breakout room's stay begins (a main-room one is Zoom's ``user_id`` or
#: ``participant_uuid``, which have no colon)
IN_BREAKOUT_ROOM = "br:"


def in_breakout_room(stay: str | None) -> bool:
    """Whether a stored stay id is a breakout room's: Zoom's participants report is of the
    meeting, so its rows replace the main room's webhook halves, never a room's (should it
    hold the rooms' stays too, the two overlap and count once)."""
    return stay is not None and stay.startswith(IN_BREAKOUT_ROOM)


#: bounds of what a stored row keeps (a Server-to-Server app's webhooks are signed with a secret
#: its company chose: their values are not trusted to fit)
MAX_ID = 64
MAX_NAME = 300
MAX_EMAIL = 320


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def text_value(value: Any, limit: int = MAX_ID) -> str | None:
    """A non-empty text of at most ``limit`` characters without control characters or lone
    surrogates (what the database stores), else None (Zoom sends ``""`` for what a guest does
    not have)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        return clean_text(str(value), max_length=limit)
    except ValueError:
        return None


# ---- pure: stays -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Who:
    """What Zoom says about who a participant is (each may be missing: a guest has no e-mail
    and no Zoom user id)."""

    email: str | None = None
    name: str | None = None
    participant_uuid: str | None = None
    registrant_id: str | None = None
    zoom_user_id: str | None = None

    def merged(self, other: Who) -> Who:
        """Each attribute from ``self``, else from ``other``."""
        return Who(
            email=self.email or other.email,
            name=self.name or other.name,
            participant_uuid=self.participant_uuid or other.participant_uuid,
            registrant_id=self.registrant_id or other.registrant_id,
            zoom_user_id=self.zoom_user_id or other.zoom_user_id,
        )


def who_of(participant: Mapping[str, Any], *, email_field: str = "email") -> Who:
    """A webhook's ``participant`` (or a report row, with ``email_field="user_email"``)."""
    email = text_value(participant.get(email_field), MAX_EMAIL)
    return Who(
        email=email.lower() if email else None,
        name=text_value(participant.get("user_name") or participant.get("name"), MAX_NAME),
        participant_uuid=text_value(participant.get("participant_uuid")),
        registrant_id=text_value(participant.get("registrant_id")),
        zoom_user_id=text_value(participant.get("id"))
        or text_value(participant.get("participant_user_id")),
    )


@dataclass(frozen=True)
class StayEvent:
    """One ``meeting.participant_joined`` or ``_left`` (in the meeting or one of its breakout
    rooms): a half of a stay."""

    instance: str | None
    stay: str
    joined: bool
    at: dt.datetime
    who: Who

    @property
    def key(self) -> str:
        """The row's key: the same notification (a retry, a re-delivery) is the same row."""
        half = "j" if self.joined else "l"
        when = self.at.astimezone(dt.UTC).isoformat()
        return f"w:{self.instance or ''}:{self.stay}:{half}:{when}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def read_event(event: str, obj: Mapping[str, Any]) -> StayEvent | None:
    """The stay event a webhook's ``object`` describes; None when it names no stay (no
    participant, no time, no ``user_id`` nor ``participant_uuid``, a breakout event without
    its room) or its ids are not Zoom's (too long to be)."""
    joined = STAY_HALVES.get(event)
    if joined is None:
        return None
    participant = obj.get("participant")
    if not isinstance(participant, Mapping):
        return None
    at = parse_time(participant.get("join_time" if joined else "leave_time"))
    stay = text_value(participant.get("user_id")) or text_value(participant.get("participant_uuid"))
    if stay is not None and event in (JOINED_BREAKOUT, LEFT_BREAKOUT):
        room = text_value(obj.get("breakout_room_uuid"))
        # the room by a digest of its uuid: the key fits the stored stay id (100) whatever
        # lengths a company's own Server-to-Server app sends
        stay = f"{IN_BREAKOUT_ROOM}{_digest(room)}:{stay}" if room is not None else None
    raw_instance = obj.get("uuid")
    instance = text_value(raw_instance)
    if at is None or stay is None or (raw_instance not in (None, "") and instance is None):
        return None
    return StayEvent(instance, stay, joined, at, who_of(participant))


@dataclass(frozen=True)
class Segment:
    """A stored row as the pure functions see it: a half of a stay (a webhook) or a whole one
    (a report row, or a row from before halves were kept)."""

    key: str
    source: str
    instance: str | None
    stay: str | None
    join: dt.datetime | None
    leave: dt.datetime | None
    who: Who = field(default_factory=Who)


@dataclass(frozen=True)
class Stay:
    """One stay of one participant in one instance. ``until`` is when it stopped counting: the
    leave, or the instance's end for a stay still open when the instance ended."""

    instance: str | None
    join: dt.datetime | None
    leave: dt.datetime | None
    until: dt.datetime | None
    who: Who
    keys: tuple[str, ...]

    @property
    def seconds(self) -> float:
        if self.join is None or self.until is None:
            return 0.0
        return max(0.0, (self.until - self.join).total_seconds())


def _stay(
    instance: str | None,
    join: dt.datetime | None,
    leave: dt.datetime | None,
    who: Who,
    keys: tuple[str, ...],
    ended: Mapping[str, dt.datetime],
) -> Stay:
    until = leave
    end = ended.get(instance or "")
    if until is None and join is not None and end is not None:
        until = max(end, join)
    return Stay(instance, join, leave, until, who, keys)


def stays(
    segments: Iterable[Segment],
    *,
    ended: Mapping[str, dt.datetime] | None = None,
    reported: Collection[str] = (),
) -> list[Stay]:
    """The stays the rows describe. The halves of a stay (same instance and stay id) pair in
    time order whatever order they arrived in: a join opens a stay, the next leave closes it;
    a second join while it is open is the same stay (nothing counts twice); a leave whose join
    never came counts nothing. Webhook rows of an instance in ``reported`` are left out: the
    report's rows replace them, except a breakout room's (:func:`in_breakout_room`).
    ``ended``: instance → end, for stays still open then."""
    ended = ended or {}
    out: list[Stay] = []
    halves: dict[tuple[str | None, str], list[Segment]] = {}
    for seg in segments:
        if (
            seg.source == WEBHOOK
            and seg.instance is not None
            and seg.instance in reported
            and not in_breakout_room(seg.stay)
        ):
            continue
        one_half = (seg.join is None) != (seg.leave is None)
        if seg.source == WEBHOOK and seg.stay is not None and one_half:
            halves.setdefault((seg.instance, seg.stay), []).append(seg)
        else:
            out.append(_stay(seg.instance, seg.join, seg.leave, seg.who, (seg.key,), ended))
    for (instance, _), group in halves.items():
        group.sort(key=lambda s: (s.join or s.leave, s.join is None, s.key))
        opened: list[Segment] = []
        for seg in group:
            if seg.join is not None:
                opened.append(seg)  # a second join while in: the same stay
                continue
            if opened:
                who = seg.who
                for earlier in opened:
                    who = earlier.who.merged(who)
                keys = (*(h.key for h in opened), seg.key)
                out.append(_stay(instance, opened[0].join, seg.leave, who, keys, ended))
                opened = []
            else:  # its join never came (lost): it counts nothing until the report says
                out.append(_stay(instance, None, seg.leave, seg.who, (seg.key,), ended))
        if opened:
            who = Who()
            for earlier in opened:
                who = who.merged(earlier.who)
            keys = tuple(h.key for h in opened)
            out.append(_stay(instance, opened[0].join, None, who, keys, ended))
    out.sort(key=lambda s: (s.join or s.leave or dt.datetime.min.replace(tzinfo=dt.UTC), s.keys))
    return out


def covered_seconds(intervals: Iterable[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds covered by the union of ``intervals`` (overlaps count once)."""
    total = 0.0
    current: tuple[dt.datetime, dt.datetime] | None = None
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if current is None or start > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def _intervals(items: Iterable[Stay]) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(s.join, s.until) for s in items if s.join is not None and s.until is not None]


# ---- pure: participants ------------------------------------------------------------------------

#: how a participant's identities rank when one of them names the participant (its ``id``)
_PRIORITY = ("pu:", "rg:", "zu:", "em:", "st:")


def _identities(stay: Stay) -> list[str]:
    who = stay.who
    keys = [
        f"pu:{who.participant_uuid}" if who.participant_uuid else "",
        f"rg:{who.registrant_id}" if who.registrant_id else "",
        f"zu:{who.zoom_user_id}" if who.zoom_user_id else "",
        f"em:{who.email}" if who.email else "",
    ]
    found = [k for k in keys if k]
    return found or [f"st:{stay.keys[0]}"]  # nothing names them: this stay alone


def participant_id(identity: str) -> str:
    """The public id of a participant named by ``identity`` (a hash: stable, URL-safe)."""
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Participant:
    """One person in the day's meeting: every stay that something ties to them (a
    ``participant_uuid``, a registrant id, a Zoom user id or an e-mail)."""

    id: str
    #: the ids of every identity of theirs: an admin's match stored under any of them (the
    #: participant may have shown under another before more stays tied them together) holds
    aliases: frozenset[str]
    stays: tuple[Stay, ...]
    who: Who

    @property
    def emails(self) -> list[str]:
        return sorted({s.who.email for s in self.stays if s.who.email})

    @property
    def registrant_ids(self) -> list[str]:
        return sorted({s.who.registrant_id for s in self.stays if s.who.registrant_id})

    @property
    def seconds(self) -> float:
        return covered_seconds(_intervals(self.stays))

    @property
    def joined_at(self) -> dt.datetime | None:
        joins = [s.join for s in self.stays if s.join is not None]
        return min(joins) if joins else None

    @property
    def left_at(self) -> dt.datetime | None:
        """The last leave; None while a stay is still open (they are in the meeting)."""
        if any(s.until is None and s.join is not None for s in self.stays):
            return None
        ends = [s.leave or s.until for s in self.stays]
        known = [e for e in ends if e is not None]
        return max(known) if known else None


def participants(items: Sequence[Stay]) -> list[Participant]:
    """Group the stays of each person: stays sharing an identity are one participant (union
    of everything that names them). A participant's ``id`` comes from its best identity
    (``participant_uuid``, then registrant id, Zoom user id, e-mail; for someone nothing
    names, the stay), taken from its earliest stay."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    identities = [_identities(s) for s in items]
    for keys in identities:
        for other in keys[1:]:
            parent[find(other)] = find(keys[0])
        find(keys[0])
    groups: dict[str, list[int]] = {}
    for index, keys in enumerate(identities):
        groups.setdefault(find(keys[0]), []).append(index)
    out: list[Participant] = []
    for indexes in groups.values():
        members = tuple(items[i] for i in indexes)  # in the order of ``items`` (by time)
        names = [k for i in indexes for k in identities[i]]
        anchor = min(names, key=lambda k: (_PRIORITY.index(k[:3]), names.index(k)))
        who = Who()
        for stay in members:
            who = who.merged(stay.who)
        out.append(
            Participant(
                id=participant_id(anchor),
                aliases=frozenset(participant_id(k) for k in names),
                stays=members,
                who=who,
            )
        )
    out.sort(key=lambda p: (p.joined_at or dt.datetime.max.replace(tzinfo=dt.UTC), p.id))
    return out


# ---- pure: matching and totals -----------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Whose attendance it is: the enrollment's user (None while registration's enrollment
    waits for its person, made for an e-mail nobody signed in with yet) and e-mail."""

    user_id: str | None
    email: str | None

    @property
    def key(self) -> str:
        return self.user_id if self.user_id is not None else f"email:{self.email or ''}"


class How(StrEnum):
    REGISTRANT = "registrant"
    EMAIL = "email"
    ADMIN = "admin"


@dataclass(frozen=True)
class Credit:
    """An admin's match of a participant to a user."""

    person: Person
    matched_by: str


@dataclass(frozen=True)
class Directory:
    """Who the day's participants may be: Zoom registrant id → seat holder, e-mail → enrollee
    (a bound enrollment wins over one still waiting for its person), participant id → an
    admin's match."""

    registrants: Mapping[str, Person] = field(default_factory=dict)
    emails: Mapping[str, Person] = field(default_factory=dict)
    credits: Mapping[str, Credit] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    person: Person
    how: How
    matched_by: str | None = None


def match(participant: Participant, directory: Directory) -> Match | None:
    """By ``registrant_id`` first (the personal link of a seat holder: whatever e-mail they use
    in Zoom), else by e-mail, else an admin's match; None: unmatched."""
    for registrant in participant.registrant_ids:
        if registrant in directory.registrants:
            return Match(directory.registrants[registrant], How.REGISTRANT)
    for email in participant.emails:
        if email in directory.emails:
            return Match(directory.emails[email], How.EMAIL)
    for alias in sorted(participant.aliases):
        credit = directory.credits.get(alias)
        if credit is not None:
            return Match(credit.person, How.ADMIN, credit.matched_by)
    return None


@dataclass(frozen=True)
class Figures:
    """One user's attendance of the day. ``matched_by``: the admin whose match is all of it."""

    person: Person
    seconds: float
    matched_by: str | None = None

    @property
    def minutes(self) -> int:
        return round(self.seconds / 60)


def totals(matched: Iterable[tuple[Participant, Match]]) -> dict[str, Figures]:
    """Per user (:attr:`Person.key`): the time covered by the stays of every participant
    matched to them (rejoins and instances add up, overlaps count once)."""
    stays_of: dict[str, list[Stay]] = {}
    people: dict[str, Person] = {}
    admins: dict[str, list[str | None]] = {}
    for participant, found in matched:
        key = found.person.key
        people.setdefault(key, found.person)
        stays_of.setdefault(key, []).extend(participant.stays)
        admins.setdefault(key, []).append(found.matched_by if found.how is How.ADMIN else None)
    out: dict[str, Figures] = {}
    for key, person in people.items():
        by = admins[key]
        matched_by = by[0] if all(by) else None  # only when an admin's match is all of it
        out[key] = Figures(person, covered_seconds(_intervals(stays_of[key])), matched_by)
    return out


# ---- the day's attendance from the database ----------------------------------------------------


async def role_of(session: AsyncSession, meeting: ZoomMeeting) -> str | None:
    if meeting.account_id is None:
        return None
    account = await session.get(ZoomAccount, meeting.account_id)
    return account.role if account is not None else None


def segment_of(row: AttendanceSegment | Row[*tuple[Any, ...]]) -> Segment:
    """A stored half of a stay (an ORM row, or a plain row of :data:`_SEGMENT_COLUMNS`)."""
    return Segment(
        key=row.participant_key,
        source=row.source or WEBHOOK,
        instance=row.instance_uuid,
        stay=row.stay_id,
        join=row.join_time,
        leave=row.leave_time,
        who=Who(
            email=row.email,
            name=row.name,
            participant_uuid=row.participant_uuid,
            registrant_id=row.registrant_id,
            zoom_user_id=row.zoom_user_id,
        ),
    )


@dataclass(frozen=True)
class DayAttendance:
    """A day's participants, their matches and the figures per user."""

    participants: list[Participant]
    matches: dict[str, Match]
    figures: dict[str, Figures]
    administrator: bool
    #: the day's final attendance was published (figures published after it are final too)
    final: bool
    #: ``report`` or ``webhooks`` once the day's attendance was reconciled, with the reason
    #: the report was unavailable for the latest instance it was unavailable for
    source: Source | None = None
    report_unavailable_reason: str | None = None

    def minutes(self, seconds: float) -> int | None:
        """R-ZOOM-2: time spent only with the administrator role."""
        return round(seconds / 60) if self.administrator else None


async def directory(session: AsyncSession, meeting: ZoomMeeting) -> Directory:
    """The day's registrants, the session's enrollees by e-mail and admins' matches."""
    enrollments = list(
        (
            await session.execute(
                select(Enrollment).where(
                    Enrollment.session_id == meeting.session_id,
                    Enrollment.company_id == meeting.company_id,
                )
            )
        ).scalars()
    )
    emails: dict[str, Person] = {}
    for e in enrollments:  # an e-mail's bound enrollment wins over an unbound one
        if e.email and (e.email not in emails or emails[e.email].user_id is None):
            emails[e.email] = Person(e.user_id, e.email)
    by_enrollment = {e.enrollment_id: e for e in enrollments}
    registrants: dict[str, Person] = {}
    for r in (
        await session.execute(
            select(MeetingRegistrant).where(MeetingRegistrant.day_id == meeting.day_id)
        )
    ).scalars():
        enrollment = by_enrollment.get(r.enrollment_id)
        if enrollment is not None:
            registrants[r.zoom_registrant_id] = Person(enrollment.user_id, enrollment.email)
    credits = {
        m.participant_id: Credit(Person(m.user_id, m.email), m.matched_by)
        for m in (
            await session.execute(
                select(ParticipantMatch).where(ParticipantMatch.day_id == meeting.day_id)
            )
        ).scalars()
    }
    return Directory(registrants=registrants, emails=emails, credits=credits)


async def instances(session: AsyncSession, day_id: Any) -> list[MeetingInstance]:
    stmt = select(MeetingInstance).where(MeetingInstance.day_id == day_id)
    return list((await session.execute(stmt)).scalars())


Source = Literal["report", "webhooks"]


def state_of(held: Sequence[MeetingInstance]) -> tuple[Source | None, str | None]:
    """Where the day's final attendance came from: ``report`` when Zoom's report covered
    every instance reconciled, ``webhooks`` when it was unavailable for one (with the latest
    reason); None before any was reconciled."""
    done = [i for i in held if i.source is not None]
    if not done:
        return None, None
    missing = [i for i in done if i.source != REPORT]
    if not missing:
        return "report", None
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    latest = max(missing, key=lambda i: i.ended_at or oldest)
    return "webhooks", latest.report_unavailable_reason


#: what :func:`segment_of` reads of a row: selected as plain rows, a day's segments are read
#: without an ORM object each (a batch of webhooks reads its days' rows again)
_SEGMENT_COLUMNS = (
    AttendanceSegment.participant_key,
    AttendanceSegment.source,
    AttendanceSegment.instance_uuid,
    AttendanceSegment.stay_id,
    AttendanceSegment.join_time,
    AttendanceSegment.leave_time,
    AttendanceSegment.email,
    AttendanceSegment.name,
    AttendanceSegment.participant_uuid,
    AttendanceSegment.registrant_id,
    AttendanceSegment.zoom_user_id,
)


async def load(session: AsyncSession, meeting: ZoomMeeting) -> DayAttendance:
    rows = await session.execute(
        select(*_SEGMENT_COLUMNS).where(AttendanceSegment.day_id == meeting.day_id)
    )
    held = await instances(session, meeting.day_id)
    ended = {i.instance_uuid: i.ended_at for i in held if i.ended_at is not None}
    reported = {i.instance_uuid for i in held if i.source == REPORT}
    found = participants(stays([segment_of(r) for r in rows], ended=ended, reported=reported))
    book = await directory(session, meeting)
    matches = {p.id: m for p in found if (m := match(p, book)) is not None}
    figures = totals((p, matches[p.id]) for p in found if p.id in matches)
    source, reason = state_of(held)
    return DayAttendance(
        participants=found,
        matches=matches,
        figures=figures,
        administrator=await role_of(session, meeting) == c.ZoomAccountRole.ADMINISTRATOR,
        final=any(i.final_at is not None for i in held),
        source=source,
        report_unavailable_reason=reason,
    )


async def record(session: AsyncSession, meeting: ZoomMeeting, event: StayEvent) -> str:
    """Store a half of a stay (a re-delivered one is the row already there); returns its key.
    One statement: an insert that does nothing when the row is there."""
    await record_many(session, [segment_row(meeting, event)])
    return event.key


def segment_row(meeting: ZoomMeeting, event: StayEvent) -> dict[str, Any]:
    """The ``attendance_segments`` row of a half of a stay (its key: ``participant_key``)."""
    who = event.who
    return {
        "day_id": meeting.day_id,
        "participant_key": event.key,
        "source": WEBHOOK,
        "instance_uuid": event.instance,
        "stay_id": event.stay,
        "join_time": event.at if event.joined else None,
        "leave_time": None if event.joined else event.at,
        "email": who.email,
        "name": who.name,
        "participant_uuid": who.participant_uuid,
        "registrant_id": who.registrant_id,
        "zoom_user_id": who.zoom_user_id,
    }


async def record_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store halves of stays (:func:`segment_row`) in one multi-row insert; a row already there
    (a re-delivery), or twice among ``rows``, is stored once: the first one in."""
    if not rows:
        return
    insert = pg_insert if is_postgres(session) else sqlite_insert
    # the rows as parameters of the table's (Core) insert: one executemany, which asyncpg
    # pipelines in one round trip. Given the ORM entity instead, SQLAlchemy splits the rows
    # into runs of equal non-null columns, and a join followed by a leave (join_time, then
    # leave_time) made every row a run of its own: one round trip per row
    table: Any = AttendanceSegment.__table__
    await session.execute(
        insert(table).on_conflict_do_nothing(index_elements=["day_id", "participant_key"]),
        list(rows),
    )


async def ended(
    session: AsyncSession, meeting: ZoomMeeting, instance: str | None, at: dt.datetime | None
) -> None:
    """``meeting.ended``: the instance's end, from which stays still open stop counting."""
    if instance is None:
        return
    row = await session.get(MeetingInstance, (meeting.day_id, instance))
    if row is None:
        session.add(MeetingInstance(day_id=meeting.day_id, instance_uuid=instance, ended_at=at))
    elif row.ended_at is None:
        row.ended_at = at
    await session.flush()


def announce(
    session: AsyncSession,
    meeting: ZoomMeeting,
    day: DayAttendance,
    figures: Iterable[Figures],
    *,
    final: bool,
) -> None:
    for f in sorted(figures, key=lambda f: f.person.key):
        add_message(
            session,
            OutboxRecord,
            c.AttendanceRecorded(
                company_id=meeting.company_id,
                day_id=meeting.day_id,
                user_id=f.person.user_id,
                email=f.person.email,
                joined=True,
                minutes=day.minutes(f.seconds),
                final=final,
                matched_by=f.matched_by,
            ),
        )


async def hold_day(session: AsyncSession, meeting: ZoomMeeting) -> None:
    """Lock the day's meeting row until this transaction ends, before its attendance is added
    up for a message. Two transactions that record stays of one day (two workers, two
    replicas) would otherwise each add up what it sees, without the other's uncommitted rows,
    and the later message (registration keeps the newest) would lack the other's stays. With
    the lock the second waits, then reads the first's committed rows: its figures hold both.
    Callers lock days in ``day_id`` order (:func:`zoom_bridge.webhooks.service.process_batch`)."""
    if is_postgres(session):
        await session.execute(
            select(ZoomMeeting.day_id).where(ZoomMeeting.day_id == meeting.day_id).with_for_update()
        )


async def publish_touching(
    session: AsyncSession, meeting: ZoomMeeting, keys: Collection[str]
) -> DayAttendance:
    """AttendanceRecorded for the users whose participants have any of the rows ``keys`` (the
    joins and leaves of a batch of webhooks), computed once for the batch: the day's figures
    are read and added up once, not once per webhook."""
    await hold_day(session, meeting)
    day = await load(session, meeting)
    wanted = set(keys)
    chosen: dict[str, Figures] = {}
    for participant in day.participants:
        if all(wanted.isdisjoint(stay.keys) for stay in participant.stays):
            continue
        found = day.matches.get(participant.id)
        if found is not None and found.person.key in day.figures:
            chosen[found.person.key] = day.figures[found.person.key]
    announce(session, meeting, day, chosen.values(), final=day.final)
    return day


async def publish(
    session: AsyncSession,
    meeting: ZoomMeeting,
    *,
    final: bool | None = None,
    touching: str | None = None,
    person: str | None = None,
) -> DayAttendance:
    """AttendanceRecorded per matched user of the day (minutes only for the administrator
    role). ``touching``: only the user whose participant has that row (a join or leave changes
    one user's figures, so a webhook costs one message, not one per participant); ``person``:
    only that user (:attr:`Person.key`). ``final`` defaults to the day's state: once the day's
    final attendance was published, whatever is published later is final too (a leave that
    came after ``meeting.ended`` corrects the final figures, never turns them back to live)."""
    await hold_day(session, meeting)
    day = await load(session, meeting)
    chosen = list(day.figures.values())
    if touching is not None:
        owner = next(
            (p for p in day.participants if any(touching in s.keys for s in p.stays)), None
        )
        found = day.matches.get(owner.id) if owner is not None else None
        chosen = [day.figures[found.person.key]] if found is not None else []
    elif person is not None:
        chosen = [day.figures[person]] if person in day.figures else []
    announce(session, meeting, day, chosen, final=day.final if final is None else final)
    return day
