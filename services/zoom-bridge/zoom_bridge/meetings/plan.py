"""The pure planner of a day's meeting: from what the bridge knows of the day (a
:class:`Snapshot`, read by the store in one transaction) and the time, the next thing to do at
Zoom (an action). No session, no HTTP, no clock read: unit-tested on its own.

A create is never repeated blindly: the store marks it (``unanswered``) in a committed
transaction before the POST, so a create whose answer was lost is looked up by the meeting's
agenda (``day:<day_id>``) before another POST (:class:`LookUp`), and never before it settled
(:class:`Wait`): Zoom may be slow rather than down and still be making the meeting.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from te_shared import rules
from te_shared.contracts import ZoomAccountRole
from zoom_bridge.zoom.api import MeetingBody, MeetingSettings
from zoom_bridge.zoom.client import RECONNECT

#: Zoom refuses a longer topic (``MeetingsCreateMeetingRequestBody.topic``: 200 characters)
TOPIC_MAX = 200
#: ... and a longer agenda (2,000 characters)
AGENDA_MAX = 2000
ELLIPSIS = "…"

NOT_CONNECTED = "the day's Zoom account is not connected to this company"
NO_TIMES = "the day has no start and end"


@dataclass(frozen=True)
class Marker:
    """A create that may have been made without its answer reaching us: on which account, when
    it was sent and when a lookup may first look for it."""

    account_id: uuid.UUID
    sent_at: dt.datetime | None
    settles_at: dt.datetime | None

    def settling(self, now: dt.datetime) -> bool:
        return self.settles_at is not None and self.settles_at > now


@dataclass(frozen=True)
class Snapshot:
    """What the bridge knows of a day's meeting, read in one transaction."""

    day_id: uuid.UUID
    company_id: str
    version: int
    desired: str  # present | absent
    #: the day's account when it is connected to the day's company, else None
    account_id: uuid.UUID | None
    account_role: str | None
    #: the account's refresh token is dead: nothing can be done through it until reconnected
    needs_reconnect: bool
    zoom_meeting_id: str | None
    #: the account the stored Zoom meeting lives on
    meeting_account_id: uuid.UUID | None
    synced_version: int
    unanswered: Marker | None
    topic: str
    start: dt.datetime | None
    end: dt.datetime | None
    timezone: str
    auto_recording: bool
    training_module: bool
    #: the stored meeting's links are known; not for one taken back after it was recovered
    #: from Zoom's trash (:class:`TakeBack`)
    linked: bool = True

    @property
    def marker(self) -> str:
        """The agenda that recognises the day's meeting on Zoom."""
        return agenda_of(self.day_id)

    @property
    def administrator(self) -> bool:
        return self.account_role == ZoomAccountRole.ADMINISTRATOR


def agenda_of(day_id: uuid.UUID) -> str:
    return f"day:{day_id}"


# ---- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nothing:
    """Zoom holds what the day wants: the job is done."""


@dataclass(frozen=True)
class Fail:
    """Nothing can make the meeting (no connected account, no times): failed with ``reason``."""

    reason: str


@dataclass(frozen=True)
class Wait:
    """An unanswered create may still be in the making: run again at ``until``."""

    until: dt.datetime


@dataclass(frozen=True)
class Remove:
    """The day is no zoom day any more: delete its meeting (on ``account_id``) and any meeting
    an unanswered create made (found by its agenda), then store it deleted."""

    zoom_meeting_id: str | None
    account_id: uuid.UUID | None
    unanswered: Marker | None


@dataclass(frozen=True)
class Abandon:
    """The day moved to another Zoom account: delete its meeting on the old one and forget it
    (then plan again: a new one is created on the new account)."""

    account_id: uuid.UUID | None
    zoom_meeting_id: str


@dataclass(frozen=True)
class LookUp:
    """An unanswered create on this account settled: adopt the meeting it made (found by its
    agenda, patched to ``body``), else create one."""

    account_id: uuid.UUID
    body: MeetingBody
    earlier: Marker


@dataclass(frozen=True)
class Create:
    """Create the day's meeting. ``clear_on``: an unanswered create went to the day's previous
    account; what it made there is deleted first. ``earlier``: that create, still to be
    verified once the meeting is stored."""

    account_id: uuid.UUID
    body: MeetingBody
    earlier: Marker | None = None
    clear_on: uuid.UUID | None = None


@dataclass(frozen=True)
class Update:
    """A newer version of the day: patch the meeting."""

    account_id: uuid.UUID
    zoom_meeting_id: str
    body: MeetingBody


@dataclass(frozen=True)
class TakeBack:
    """The day's meeting again after it was recovered from Zoom's trash: patch it to the day
    and read it back for its links."""

    account_id: uuid.UUID
    zoom_meeting_id: str
    body: MeetingBody


Action = Nothing | Fail | Wait | Remove | Abandon | LookUp | Create | Update | TakeBack


def plan(snap: Snapshot | None, now: dt.datetime) -> Action:
    """The next step towards the meeting the day wants."""
    if snap is None:
        return Nothing()
    earlier = snap.unanswered
    if snap.desired != "present":
        if earlier is not None and earlier.settling(now):
            assert earlier.settles_at is not None
            return Wait(earlier.settles_at)
        return Remove(snap.zoom_meeting_id, snap.meeting_account_id, earlier)
    if snap.account_id is None:
        return Fail(NOT_CONNECTED)
    if snap.needs_reconnect:  # no call would work: fail at once, no pointless retries
        return Fail(RECONNECT)
    body = meeting_body(snap)
    if body is None:
        return Fail(NO_TIMES)
    if snap.zoom_meeting_id is not None and snap.meeting_account_id != snap.account_id:
        return Abandon(snap.meeting_account_id, snap.zoom_meeting_id)
    if snap.zoom_meeting_id is None:
        if earlier is None:
            return Create(snap.account_id, body)
        if earlier.settling(now):
            assert earlier.settles_at is not None
            return Wait(earlier.settles_at)
        if earlier.account_id == snap.account_id:
            return LookUp(snap.account_id, body, earlier)
        return Create(snap.account_id, body, earlier, clear_on=earlier.account_id)
    if not snap.linked:
        return TakeBack(snap.account_id, snap.zoom_meeting_id, body)
    if snap.synced_version < snap.version:
        return Update(snap.account_id, snap.zoom_meeting_id, body)
    return Nothing()


def still_to_be_held(ended: bool, end: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether the bridge still keeps a day's meeting as the day wants it when someone changed
    it at Zoom (its host, in Zoom's web portal): made again once deleted (``meeting.deleted``),
    changed back once edited (``meeting.updated``). So while the day is still to be held: the
    meeting was never ended and the day is not over. A meeting that was held, or whose day is
    over, stays as it is: its attendance and recordings came from it, and nobody will join it
    again."""
    return not ended and (end is None or end > now)


def takes_back(
    *,
    desired: str,
    has_meeting: bool,
    creating: bool,
    account_id: uuid.UUID | None,
    gone_account_id: uuid.UUID | None,
    ended: bool,
    end: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """Whether a day takes back its meeting recovered from Zoom's trash (``meeting.recovered``
    for the meeting its host deleted there): the day still wants a meeting, on the account the
    recovered one lives on, is still to be held (:func:`still_to_be_held`), and has no other
    meeting, made or being made (a create sent and not answered may have made one). Then the
    links people had work again and no second meeting is made. Otherwise the recovered meeting
    is not the day's."""
    return (
        desired == "present"
        and not has_meeting
        and not creating
        and account_id is not None
        and account_id == gone_account_id
        and still_to_be_held(ended, end, now)
    )


#: the settings of a day's meeting the bridge sets (:func:`meeting_body`); the host's others
#: (waiting room, passcode, ...) are theirs to change at Zoom
HELD_SETTINGS = ("auto_recording", "approval_type", "registration_type")


def drifted(wanted: MeetingBody, changed: Mapping[str, object]) -> tuple[str, ...]:
    """The fields a change at Zoom (a ``meeting.updated`` object: the fields the update
    changed, as they are now) moved away from the day's meeting as the bridge asks for it
    (``wanted``): the type, start (as an instant), duration, topic, agenda (which recognises
    the day's meeting) and :data:`HELD_SETTINGS`. The time zone only shows the start, the
    rest is the host's. A value that cannot be read counts as moved.

    Compared as Zoom may keep them, so that a notification of the bridge's own patch never
    counts as moved (a ping-pong would spend the daily update quota): texts without the white
    space around them, the start to the minute (Zoom schedules minutes)."""
    moved = [
        key
        for key in ("type", "duration", "topic", "agenda")
        if key in changed and _same(changed[key]) != _same(wanted.get(key))
    ]
    if "start_time" in changed and _instant(changed["start_time"]) != _instant(
        wanted.get("start_time")
    ):
        moved.append("start_time")
    settings = changed.get("settings")
    if "settings" in changed and not isinstance(settings, Mapping):
        moved.append("settings")
    elif isinstance(settings, Mapping):
        held = wanted.get("settings") or {}
        moved += [
            f"settings.{key}"
            for key in HELD_SETTINGS
            if key in settings and key in held and settings[key] != held.get(key)
        ]
    return tuple(moved)


def _same(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _instant(value: object) -> dt.datetime | None:
    """A start time, to the minute."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(second=0, microsecond=0) if parsed.tzinfo is not None else None


# ---- the meeting Zoom is asked for ---------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meeting_body(snap: Snapshot) -> MeetingBody | None:
    """The day's meeting as Zoom is asked for it; None while the day has no times.

    Topic and agenda within Zoom's limits (:func:`fit`). R-DAY-9/R-ZOOM-7: cloud recording
    when the day asks for it, the account has the administrator role and the training module
    is on. R-ZOOM-3: registration as :func:`registration_settings` says."""
    if snap.start is None or snap.end is None:
        return None
    minutes = max(1, round((snap.end - snap.start).total_seconds() / 60))
    record = snap.auto_recording and rules.cloud_recording(snap.account_role, snap.training_module)
    settings: MeetingSettings = {
        "auto_recording": "cloud" if record else "none",
        **registration_settings(snap.administrator),
    }
    return {
        "topic": fit(snap.topic or "Training", TOPIC_MAX),
        "type": 2,
        "start_time": _iso(snap.start),
        "duration": minutes,
        "timezone": snap.timezone,
        "agenda": fit(snap.marker, AGENDA_MAX),
        "settings": settings,
    }


def registration_settings(administrator: bool) -> MeetingSettings:
    """R-ZOOM-3: with the administrator role, registration with automatic approval (each seat
    holder is registered and gets a personal link; registering once covers every
    occurrence); otherwise none (everyone has the meeting's shared link)."""
    if administrator:
        return {"approval_type": 0, "registration_type": 1}
    return {"approval_type": 2}


# ---- registrants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seat:
    """A seat holder of the day's session (``rules.JOIN_LINK``) with an e-mail to register."""

    enrollment_id: uuid.UUID
    email: str


@dataclass(frozen=True)
class Registered:
    """A seat holder registered for one of the day's meetings."""

    enrollment_id: uuid.UUID
    zoom_meeting_id: str
    registrant_id: str
    email: str


@dataclass(frozen=True)
class RegistrantSnapshot:
    """What the bridge knows of a day's registrants, read in one transaction."""

    day_id: uuid.UUID
    present: bool
    zoom_meeting_id: str | None
    #: the account the meeting lives on, when it is connected and usable, else None
    account_id: uuid.UUID | None
    administrator: bool
    #: whether the meeting takes registrants (its ``approval_type`` is not 2)
    registration: bool
    seats: tuple[Seat, ...]
    registered: tuple[Registered, ...]


@dataclass(frozen=True)
class RegistrantPlan:
    """``registration``: switch the meeting's registration on (before adding) or off (after
    removing), None to leave it; ``forget``: rows whose meeting is gone (nothing to do at
    Zoom); ``remove``: registrants to remove at Zoom, then here; ``add``: seats to register."""

    registration: bool | None = None
    forget: tuple[Registered, ...] = ()
    remove: tuple[Registered, ...] = ()
    add: tuple[Seat, ...] = ()

    @property
    def empty(self) -> bool:
        return self.registration is None and not (self.forget or self.remove or self.add)


def plan_registrants(snap: RegistrantSnapshot) -> RegistrantPlan:
    """R-ZOOM-3: with the administrator role, every seat holder with an e-mail is registered
    for the day's meeting, once; a registrant whose seat is lost (status out of
    ``rules.JOIN_LINK``, enrollment moved to another session) or whose e-mail changed is
    removed; registrants of a meeting that is gone are forgotten (the new meeting registers
    everyone again). Without the role (or once it is lost), no registrants, no registration.
    Nothing is asked of Zoom through an account that is not usable."""
    stale = tuple(r for r in snap.registered if r.zoom_meeting_id != snap.zoom_meeting_id)
    live = tuple(r for r in snap.registered if r.zoom_meeting_id == snap.zoom_meeting_id)
    if not snap.present or snap.zoom_meeting_id is None:
        return RegistrantPlan(forget=snap.registered)
    if snap.account_id is None:
        return RegistrantPlan(forget=stale)
    if not snap.administrator:
        return RegistrantPlan(
            registration=False if snap.registration else None, forget=stale, remove=live
        )
    seats = {s.enrollment_id: s for s in snap.seats}
    remove = tuple(
        r for r in live if r.enrollment_id not in seats or seats[r.enrollment_id].email != r.email
    )
    kept = {r.enrollment_id for r in live} - {r.enrollment_id for r in remove}
    add = tuple(
        s for s in sorted(seats.values(), key=lambda s: s.email) if s.enrollment_id not in kept
    )
    switch_on = True if add and not snap.registration else None
    return RegistrantPlan(registration=switch_on, forget=stale, remove=remove, add=add)


def first_name_of(email: str) -> str:
    """The name a registrant is registered under (Zoom requires a first name, at most 64
    characters; enrollments carry only an e-mail): the e-mail's local part."""
    local = email.split("@", 1)[0].strip()
    return fit(local, 64) if local else "Participant"


#: the zero-width joiner glues the characters on both sides into one (emoji sequences)
_ZWJ = "\u200d"


def _continues(char: str) -> bool:
    """True when ``char`` extends the character before it: a combining mark (accents, vowel
    signs, the keycap), a variation selector, a zero-width joiner, a skin tone, a tag."""
    point = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == _ZWJ
        or 0xFE00 <= point <= 0xFE0F  # variation selectors
        or 0x1F3FB <= point <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= point <= 0xE007F  # tags (subdivision flags)
    )


def _regional(char: str) -> bool:
    """A regional indicator: two of them make one flag."""
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _splits(text: str, end: int) -> bool:
    """True when cutting ``text`` at ``end`` would split one character."""
    if end <= 0 or end >= len(text):
        return False
    if _continues(text[end]) or text[end - 1] == _ZWJ:
        return True
    if _regional(text[end]) and _regional(text[end - 1]):
        run = 0
        while end - 1 - run >= 0 and _regional(text[end - 1 - run]):
            run += 1
        return run % 2 == 1  # the last flag before the cut would lose its second half
    return False


def _units(text: str) -> int:
    """Length in UTF-16 code units: what a limit counted in JavaScript or Java characters
    sees (a character beyond the BMP, most emoji, counts twice)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def fit(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, counted in UTF-16 code units so that the result is
    within the limit however Zoom counts; when cut, it ends with "…" and is cut between two
    characters, never inside one (an emoji sequence or flag, a letter and its accents)."""
    if _units(text) <= limit:
        return text
    budget = limit - _units(ELLIPSIS)
    end, used = 0, 0
    while end < len(text) and used + _units(text[end]) <= budget:
        used += _units(text[end])
        end += 1
    while _splits(text, end):
        end -= 1
    return text[:end].rstrip() + ELLIPSIS
