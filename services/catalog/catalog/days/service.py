"""Days: R-DAY-1..9, and R-SES-7 from the day's side. Every change locks the session row first,
so concurrent edits of one session's days are serialised (R-DAY-6, R-SES-7)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from catalog import clock
from catalog.company.schemas import CompanySettingsIn
from catalog.company.service import get_settings
from catalog.days import rules
from catalog.days.messages import publish_day, publish_day_cancelled
from catalog.days.repository import DayRepository
from catalog.days.schemas import DayIn, DayOut, DayPatch, MeetingOut, RecordingOut, ZoomIn, ZoomOut
from catalog.events.repository import EventRepository
from catalog.models import Day, Event, TrainingSession, ZoomAccountReplica
from catalog.sessions.repository import SessionRepository
from catalog.sessions.rules import default_registration_end
from catalog.validation import address_refusal, link_refusal
from te_shared import contracts as c
from te_shared import rules as shared_rules
from te_shared.conditional import check_if_match
from te_shared.errors import Conflict, FieldError, Unprocessable, field_error


def day_out(day: Day, warnings: list[str] | None = None) -> DayOut:
    zoom = None
    if day.format == c.DayFormat.ZOOM and day.zoom_account_id is not None:
        meeting = None
        if day.meeting_status:
            meeting = MeetingOut.model_validate(
                {
                    "status": day.meeting_status,
                    "join_url": day.meeting_join_url,
                    "error": day.meeting_error,
                }
            )
        zoom = ZoomOut(
            account_id=day.zoom_account_id,
            account_role=c.ZoomAccountRole(day.zoom_account_role or "administrator"),
            organizer_user_id=day.zoom_organizer_user_id or "",
            auto_recording=day.zoom_auto_recording,
            meeting=meeting,
            recordings=[  # links stored before they were checked are never shown (F1)
                RecordingOut.model_validate(r)
                for r in day.recordings or []
                if link_refusal(str(r.get("play_url", ""))) is None
            ],
        )
    return DayOut(
        id=day.id,
        session_id=day.session_id,
        format=c.DayFormat(day.format),
        start=day.start,
        end=day.end,
        duration_minutes=int((day.end - day.start).total_seconds() // 60),
        address=day.address,
        url=day.url,
        zoom=zoom,
        version=day.version,
        warnings=warnings or [],
    )


def _check_url(url: str | None) -> str:
    """R-DAY-2: a well-formed absolute http or https URL (:func:`link_refusal`; the request
    schema refused a bad link already, this holds for what is stored)."""
    cleaned = (url or "").strip()
    refusal = link_refusal(cleaned)
    if refusal is not None:
        raise field_error("body.url", refusal.message, code=refusal.code)
    return cleaned


def _check_address(address: str | None) -> str:
    """R-DAY-2: free text; links are kept as text, but script, data and file links and HTML
    markup are refused (:func:`address_refusal`)."""
    cleaned = (address or "").strip()
    if not cleaned:
        raise field_error("body.address", "An offline day needs an address.")
    refusal = address_refusal(cleaned)
    if refusal is not None:
        raise field_error("body.address", refusal.message, code=refusal.code)
    return cleaned


@dataclass(frozen=True, slots=True)
class _Zoom:
    """A zoom day's settings as catalog stores them: the role is the account's (R-DAY-9)."""

    account_id: uuid.UUID
    role: c.ZoomAccountRole
    organizer_user_id: str
    auto_recording: bool

    def same_as(self, sent: ZoomIn) -> bool:
        """What the client sends matches these settings (the role is not the client's)."""
        return (self.account_id, self.organizer_user_id, self.auto_recording) == (
            sent.account_id,
            sent.organizer_user_id,
            sent.auto_recording,
        )


ACCOUNT_FIELD = "body.zoom.account_id"
ACCOUNT_UNKNOWN = (
    "The company has no Zoom account with this id that catalog knows of yet. An account "
    "connected moments ago becomes known shortly: retry in a few seconds."
)
ACCOUNT_DISCONNECTED = (
    "This Zoom account is no longer connected (it was deauthorized or removed): connect it "
    "again or choose another account."
)
ACCOUNT_RECONNECT = (
    "Zoom no longer accepts this account's connection: reconnect the Zoom account (connect "
    "the same Zoom user again) or choose another account."
)


async def _account_role(
    session: AsyncSession, company_id: str, account_id: uuid.UUID
) -> c.ZoomAccountRole:
    """R-DAY-9: the role of a connected account of the company, from the bridge's messages.

    Unknown (another company's is unknown too) is a retryable 422: the day may race the
    account's ``ZoomAccountChanged`` (catalog never asks the bridge synchronously)."""
    account = await session.get(ZoomAccountReplica, account_id)
    if account is None or account.company_id != company_id:
        raise Unprocessable(
            ACCOUNT_UNKNOWN,
            code="zoom_account_unknown",
            errors=[
                FieldError(
                    field=ACCOUNT_FIELD, message=ACCOUNT_UNKNOWN, code="zoom_account_unknown"
                )
            ],
            extra={"retryable": True},
        )
    if not account.connected:
        raise field_error(ACCOUNT_FIELD, ACCOUNT_DISCONNECTED, code="zoom_account_disconnected")
    if account.needs_reconnect:
        raise field_error(ACCOUNT_FIELD, ACCOUNT_RECONNECT, code="zoom_account_needs_reconnect")
    return c.ZoomAccountRole(account.role)


async def _check_zoom(
    session: AsyncSession,
    company_id: str,
    zoom: ZoomIn | None,
    settings: CompanySettingsIn,
    event: Event,
) -> _Zoom:
    """R-DAY-3 and R-DAY-9 (the client's ``account_role`` is ignored: the account's counts)."""
    if not settings.zoom_enabled:
        raise field_error(
            "body.format", "Zoom days need Zoom enabled for the company.", code="zoom_disabled"
        )
    if not event.dated:
        raise field_error(
            "body.format", "An undated event cannot have Zoom days.", code="zoom_undated"
        )
    if zoom is None:
        raise field_error("body.zoom", "A Zoom day needs its Zoom settings.")
    role = await _account_role(session, company_id, zoom.account_id)
    if zoom.auto_recording and not shared_rules.cloud_recording(
        role, settings.training_module_enabled
    ):
        raise field_error(
            "body.zoom.auto_recording",
            "Automatic cloud recording needs an account with the administrator role and the "
            "training module enabled.",
            code="auto_recording_unavailable",
        )
    return _Zoom(zoom.account_id, role, zoom.organizer_user_id, zoom.auto_recording)


def _apply_content(
    day: Day,
    fmt: c.DayFormat,
    address: str | None,
    url: str | None,
    zoom: _Zoom | None,
) -> None:
    """R-DAY-1/2/3/9: set the fields the format has and clear the others. A zoom day's
    settings come checked (:func:`_check_zoom`) or kept as stored."""
    was_zoom = day.format == c.DayFormat.ZOOM
    day.format = fmt.value
    day.address = _check_address(address) if fmt is c.DayFormat.OFFLINE else None
    day.url = _check_url(url) if fmt is c.DayFormat.ONLINE else None
    if fmt is c.DayFormat.ZOOM:
        assert zoom is not None  # checked by the caller
        day.zoom_account_id = zoom.account_id
        day.zoom_account_role = zoom.role.value
        day.zoom_organizer_user_id = zoom.organizer_user_id
        day.zoom_auto_recording = zoom.auto_recording
        if not was_zoom:
            day.meeting_status = c.MeetingStatus.PENDING.value
    else:
        day.zoom_account_id = day.zoom_account_role = day.zoom_organizer_user_id = None
        day.zoom_auto_recording = False
        day.meeting_status = day.meeting_join_url = day.meeting_error = None
        day.meeting_zoom_id = None


def _check_schedule(
    start: dt.datetime, end: dt.datetime, others: list[Day], sess: TrainingSession
) -> None:
    """R-DAY-5, R-DAY-6, R-SES-7 (:func:`catalog.days.rules.check_schedule`)."""
    rules.check_schedule(start, end, [(d.start, d.end) for d in others], sess.registration_end)


def _default_start(sess: TrainingSession, days: list[Day]) -> dt.datetime:
    """R-DAY-4: the registration end's next calendar day at the same local time in the
    session's time zone (see the README for undated events and later days)."""
    if days:
        after = max(d.start for d in days)
    elif sess.registration_end is not None:
        after = sess.registration_end
    else:
        after = default_registration_end(clock.now(), sess.timezone)
    return rules.next_day_same_local_time(after, sess.timezone)


async def _context(
    session: AsyncSession, company_id: str, session_id: uuid.UUID
) -> tuple[TrainingSession, Event, CompanySettingsIn]:
    sess = await SessionRepository.from_session(session).get(company_id, session_id, lock=True)
    event = await EventRepository.from_session(session).get(company_id, sess.event_id)
    return sess, event, await get_settings(session, company_id)


def zoom_role_warnings(day: Day, sess: TrainingSession) -> list[str]:
    """R-ZOOM-2 warnings of a day (:func:`catalog.days.rules.zoom_role_warnings`)."""
    return rules.zoom_role_warnings(
        day.format,
        day.zoom_account_role,
        day.start,
        day.end,
        sess.limit_enabled,
        sess.participant_limit,
    )


async def create_day(
    session: AsyncSession, company_id: str, session_id: uuid.UUID, data: DayIn, *, confirm: bool
) -> DayOut:
    sess, event, settings = await _context(session, company_id, session_id)
    days = await DayRepository.from_session(session).of_session(sess.id)
    start = data.start or _default_start(sess, days)
    end = data.end or start + dt.timedelta(hours=1)
    day = Day(company_id=company_id, session_id=sess.id, version=1, recordings=[])
    day.format = ""
    zoom = None
    if data.format is c.DayFormat.ZOOM:
        zoom = await _check_zoom(session, company_id, data.zoom, settings, event)
    _apply_content(day, data.format, data.address, data.url, zoom)
    _check_schedule(start, end, days, sess)
    now = clock.now()
    warnings: list[str] = []
    confirmed = False
    if rules.needs_confirmation([d.end for d in days], start, now):  # R-DAY-8
        if not confirm:
            raise Conflict(
                rules.R_DAY_8,
                code="confirmation_required",
                errors=[FieldError(field="query.confirm", message=rules.R_DAY_8)],
            )
        confirmed = True
        warnings.append(rules.R_DAY_8)
    day.start, day.end = start, end
    day.reopens_session = confirmed
    session.add(day)
    await session.flush()
    names = await SessionRepository.from_session(session).names(sess.id)
    publish_day(session, day, sess, event, names, c.DayScheduled)
    return day_out(day, warnings + zoom_role_warnings(day, sess))


def _stored_zoom(day: Day) -> _Zoom | None:
    if day.format != c.DayFormat.ZOOM or day.zoom_account_id is None:
        return None
    return _Zoom(
        account_id=day.zoom_account_id,
        role=c.ZoomAccountRole(day.zoom_account_role or "administrator"),
        organizer_user_id=day.zoom_organizer_user_id or "-",
        auto_recording=day.zoom_auto_recording,
    )


def _published(day: Day) -> tuple[object, ...]:
    """What a day's messages carry of the day itself (any change is a ``DayRescheduled``)."""
    return (day.format, day.start, day.end, day.address, day.url, day.zoom_account_id,
            day.zoom_account_role, day.zoom_organizer_user_id, day.zoom_auto_recording)  # fmt: skip


async def update_day(
    session: AsyncSession,
    company_id: str,
    day_id: uuid.UUID,
    data: DayPatch,
    if_match: str | None = None,
) -> DayOut:
    """Only what the PATCH changes is checked again: a zoom day keeps its Zoom settings (and the
    account role stored with them) through an edit of its times, address or link even after Zoom
    (or the training module, for automatic recording) was turned off or the account's role
    changed; new Zoom settings, or becoming a zoom day, are checked as on create (the account's
    current role). R-DAY-8 is not asked here (it is about adding a day; see the README)."""
    found = await DayRepository.from_session(session).get(company_id, day_id)
    sess, event, settings = await _context(session, company_id, found.session_id)
    day = await DayRepository.from_session(session).get(
        company_id, day_id, lock=True
    )  # fresh, under lock
    check_if_match(if_match, day.version)
    sent = data.model_fields_set
    before = _published(day)
    fmt = data.format or c.DayFormat(day.format)
    stored = _stored_zoom(day)
    zoom = None
    if fmt is c.DayFormat.ZOOM:
        if stored is not None and (data.zoom is None or stored.same_as(data.zoom)):
            zoom = stored
        else:
            zoom = await _check_zoom(session, company_id, data.zoom, settings, event)
    _apply_content(
        day,
        fmt,
        data.address if "address" in sent else day.address,
        data.url if "url" in sent else day.url,
        zoom,
    )
    start = data.start or day.start
    end = data.end or day.end
    if "start" in sent and "end" not in sent and data.start is not None:
        end = data.start + (day.end - day.start)  # moving the start keeps the duration
    others = [
        d for d in await DayRepository.from_session(session).of_session(sess.id) if d.id != day.id
    ]
    _check_schedule(start, end, others, sess)
    day.start, day.end = start, end
    day.version += 1
    if _published(day) != before:  # times, format, place, link or Zoom settings (R-DAY-7)
        names = await SessionRepository.from_session(session).names(sess.id)
        publish_day(session, day, sess, event, names, c.DayRescheduled)
    await session.flush()
    return day_out(day, zoom_role_warnings(day, sess))


async def delete_day(
    session: AsyncSession, company_id: str, day_id: uuid.UUID, if_match: str | None = None
) -> None:
    found = await DayRepository.from_session(session).get(company_id, day_id)
    sess, event, _ = await _context(session, company_id, found.session_id)
    day = await DayRepository.from_session(session).get(company_id, day_id, lock=True)
    check_if_match(if_match, day.version)
    day.version += 1
    publish_day_cancelled(
        session, day, sess, event, await SessionRepository.from_session(session).names(sess.id)
    )
    await session.delete(day)
    await session.flush()


async def get_day(session: AsyncSession, company_id: str, day_id: uuid.UUID) -> DayOut:
    return day_out(await DayRepository.from_session(session).get(company_id, day_id))
