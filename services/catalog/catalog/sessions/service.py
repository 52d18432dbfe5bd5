"""Sessions: R-SES-1..8 (R-SES-9 and the seats of R-SES-8 belong to registration)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import clock
from catalog.company.service import get_settings
from catalog.days import rules as day_rules
from catalog.days.messages import publish_day, publish_day_cancelled
from catalog.days.repository import DayRepository
from catalog.days.service import day_out
from catalog.events.repository import EventRepository
from catalog.models import Day, OutboxRecord, SessionName, TrainingSession
from catalog.sessions import rules as session_rules
from catalog.sessions.messages import publish_session
from catalog.sessions.repository import SessionRepository
from catalog.sessions.schemas import SessionIn, SessionOut, SessionPatch
from te_shared import contracts as c
from te_shared import rules
from te_shared.conditional import check_if_match
from te_shared.errors import Conflict, FieldError, field_error
from te_shared.outbox import add_message


async def store_names(session: AsyncSession, row: TrainingSession, names: dict[str, str]) -> None:
    """R-SES-3: unique per event and locale under :func:`te_shared.rules.name_key` (trimmed,
    white space folded, case-folded, Unicode-normalised; also in the DB), the key registration
    finds an import row's session by."""
    for locale, name in names.items():
        key = rules.name_key(name)
        repository = SessionRepository.from_session(session)
        if await repository.name_owner(row.event_id, locale, key, besides=row.id) is not None:
            raise _name_taken(locale, name)
        existing = await repository.name_in(row.id, locale)
        if existing is None:
            session.add(
                SessionName(
                    session_id=row.id, locale=locale, event_id=row.event_id, name=name, name_key=key
                )
            )
        else:
            existing.name, existing.name_key = name, key
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request took the name first
        raise _name_taken(None, None) from exc


def _name_taken(locale: str | None, name: str | None) -> Conflict:
    msg = (
        f"A session named {name!r} already exists in this event ({locale})."
        if name
        else "A session with this name already exists in this event."
    )
    return Conflict(
        msg,
        code="session_name_taken",
        errors=[FieldError(field=f"body.name.{locale}" if locale else "body.name", message=msg)],
    )


async def session_out(session: AsyncSession, row: TrainingSession) -> SessionOut:
    days = await DayRepository.from_session(session).of_session(row.id)
    taken = (
        await SessionRepository.from_session(session).seats_taken(row.id)
        if row.limit_enabled
        else None
    )
    limit = row.participant_limit if row.limit_enabled else None
    return SessionOut(
        id=row.id,
        event_id=row.event_id,
        name=await SessionRepository.from_session(session).names(row.id),
        timezone=row.timezone,
        registration_end=row.registration_end,
        limit_enabled=row.limit_enabled,
        participant_limit=limit,
        seats_taken=taken,
        seats_left=max(limit - taken, 0) if limit is not None and taken is not None else None,
        waitlist_enabled=row.waitlist_enabled,
        version=row.version,
        days=[day_out(d) for d in days],
    )


async def create_session(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, data: SessionIn
) -> SessionOut:
    event = await EventRepository.from_session(session).get(company_id, event_id, lock=True)
    settings = await get_settings(session, company_id)
    names = session_rules.clean_names(data.name, settings.locales, all_locales=True)
    tz = session_rules.timezone(data.timezone) if data.timezone is not None else settings.timezone
    registration_end: dt.datetime | None = None
    if event.dated:
        registration_end = data.registration_end or session_rules.default_registration_end(
            clock.now(), tz
        )
    elif data.registration_end is not None:
        raise field_error(
            "body.registration_end",
            "An undated event's sessions have no registration end.",
            code="registration_end_undated",
        )
    session_rules.check_limit(data.limit_enabled, data.participant_limit)
    row = TrainingSession(
        company_id=company_id,
        event_id=event.id,
        timezone=tz,
        registration_end=registration_end,
        limit_enabled=data.limit_enabled,
        participant_limit=data.participant_limit,
        waitlist_enabled=data.waitlist_enabled,
        version=1,
    )
    session.add(row)
    await session.flush()
    await store_names(session, row, names)
    publish_session(session, row, names, c.SessionCreated)
    return await session_out(session, row)


async def update_session(
    session: AsyncSession,
    company_id: str,
    session_id: uuid.UUID,
    data: SessionPatch,
    if_match: str | None = None,
) -> SessionOut:
    row = await SessionRepository.from_session(session).get(company_id, session_id, lock=True)
    check_if_match(if_match, row.version)
    event = await EventRepository.from_session(session).get(company_id, row.event_id)
    settings = await get_settings(session, company_id)
    sent = data.model_fields_set
    republish_days = False
    if "name" in sent:
        if data.name is None:
            raise field_error("body.name", "Name is required.", code="name_required")
        await store_names(
            session, row, session_rules.clean_names(data.name, settings.locales, all_locales=False)
        )
        republish_days = True
    if "timezone" in sent:
        if data.timezone is None:
            raise field_error("body.timezone", "A time zone is required.")
        tz = session_rules.timezone(data.timezone)
        republish_days = republish_days or tz != row.timezone
        row.timezone = tz
    days = await DayRepository.from_session(session).of_session(row.id)
    if "registration_end" in sent:
        if not event.dated:
            if data.registration_end is not None:
                raise field_error(
                    "body.registration_end",
                    "An undated event's sessions have no registration end.",
                    code="registration_end_undated",
                )
        elif data.registration_end is None:
            raise field_error(
                "body.registration_end", "A dated event's session needs a registration end."
            )
        else:
            session_rules.check_registration_end(
                data.registration_end,
                min((d.start for d in days), default=None),
                "body.registration_end",
            )
            row.registration_end = data.registration_end
    if data.limit_enabled is not None:
        row.limit_enabled = data.limit_enabled
    if "participant_limit" in sent:
        row.participant_limit = data.participant_limit
    if data.waitlist_enabled is not None:
        row.waitlist_enabled = data.waitlist_enabled
    session_rules.check_limit(row.limit_enabled, row.participant_limit)
    if row.limit_enabled and row.participant_limit is not None:  # R-SES-9
        taken = await SessionRepository.from_session(session).seats_taken(row.id)
        session_rules.check_limit_against_taken(row.limit_enabled, row.participant_limit, taken)
    row.version += 1
    names = await SessionRepository.from_session(session).names(row.id)
    publish_session(session, row, names, c.SessionUpdated)
    if republish_days:  # the topic and timezone the bridge and registration see changed
        for day in days:
            day.version += 1
            publish_day(session, day, row, event, names, c.DayRescheduled)
    out = await session_out(session, row)
    if sent & {"limit_enabled", "participant_limit"}:
        out.warnings = _limit_warnings(row, days)
    return out


def _limit_warnings(row: TrainingSession, days: list[Day]) -> list[str]:
    """R-ZOOM-2 ruling: a limit raised above 100 (or disabled) while the session has days on
    a participant-role account is accepted with the warning those days carry."""
    on_participant = any(
        d.format == c.DayFormat.ZOOM and d.zoom_account_role == c.ZoomAccountRole.PARTICIPANT
        for d in days
    )
    warning = day_rules.people_warning(row.limit_enabled, row.participant_limit)
    return [warning] if on_participant and warning is not None else []


async def delete_session(
    session: AsyncSession, company_id: str, session_id: uuid.UUID, if_match: str | None = None
) -> None:
    row = await SessionRepository.from_session(session).get(company_id, session_id, lock=True)
    check_if_match(if_match, row.version)
    event = await EventRepository.from_session(session).get(company_id, row.event_id)
    names = await SessionRepository.from_session(session).names(row.id)
    for day in await DayRepository.from_session(session).of_session(row.id):
        day.version += 1
        publish_day_cancelled(session, day, row, event, names)
    row.version += 1
    add_message(
        session,
        OutboxRecord,
        c.SessionDeleted(
            company_id=company_id, session_id=row.id, event_id=row.event_id, version=row.version
        ),
    )
    await SessionRepository.from_session(session).delete(row.id)
    session.expunge(row)
