"""Events: create, list (cursor-paginated), read with sessions and days, change state and title."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from catalog import clock
from catalog.company.service import get_settings
from catalog.days.messages import publish_day
from catalog.days.repository import DayRepository
from catalog.events.messages import publish_event
from catalog.events.repository import EventRepository
from catalog.events.rules import clean_title
from catalog.events.schemas import (
    EventDetail,
    EventIn,
    EventOut,
    EventPage,
    EventPatch,
)
from catalog.models import Event
from catalog.sessions.repository import SessionRepository
from catalog.sessions.schemas import SessionOut
from catalog.sessions.service import session_out
from te_shared import contracts as c
from te_shared import rules
from te_shared.conditional import check_if_match
from te_shared.errors import field_error


def event_out(event: Event) -> EventOut:
    return EventOut.model_validate(event, from_attributes=True)


async def create_event(session: AsyncSession, company_id: str, data: EventIn) -> EventOut:
    settings = await get_settings(session, company_id)
    event = Event(
        company_id=company_id,
        title=clean_title(data.title, settings.locales),
        state=c.EventState.HIDDEN.value,
        dated=data.dated,
        requires_approval=data.requires_approval,
        version=1,
        created_at=clock.now(),
    )
    session.add(event)
    await session.flush()
    publish_event(session, event)
    return event_out(event)


def _encode_cursor(event: Event) -> str:
    raw = json.dumps([event.created_at.isoformat(), str(event.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """The position a ``next_cursor`` names; anything else a client sends is a 422, never a 500."""
    invalid = field_error("query.cursor", "The cursor is not valid.", code="invalid_cursor")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, RecursionError) as exc:  # not base64, UTF-8 or JSON
        raise invalid from exc
    if not (
        isinstance(decoded, list)
        and len(decoded) == 2
        and all(isinstance(part, str) for part in decoded)
    ):
        raise invalid
    created_text, id_text = decoded
    try:
        created = dt.datetime.fromisoformat(created_text)
        event_id = uuid.UUID(id_text)
        if created.tzinfo is None or created.utcoffset() is None:
            raise invalid
        return created.astimezone(dt.UTC), event_id  # a far offset may overflow (year 1 or 9999)
    except (ValueError, OverflowError) as exc:
        raise invalid from exc


async def list_events(
    session: AsyncSession, company_id: str, limit: int, cursor: str | None
) -> EventPage:
    after = _decode_cursor(cursor) if cursor else None
    rows = await EventRepository.from_session(session).page(company_id, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        items=[event_out(e) for e in rows],
        next_cursor=_encode_cursor(rows[-1]) if more and rows else None,
    )


def _first_start(s: SessionOut) -> tuple[int, dt.datetime]:
    if s.days:
        return (0, s.days[0].start)
    return (1, rules.FAR_FUTURE)


def order_for_user(sessions: list[SessionOut], now: dt.datetime) -> list[SessionOut]:
    """R-SES-10 (:func:`te_shared.rules.sessions_in_user_order`) on catalog's sessions."""
    return rules.sessions_in_user_order(
        sessions,
        is_open=lambda s: s.registration_end is None or s.registration_end > now,
        first_start=lambda s: s.days[0].start if s.days else None,
        registration_end=lambda s: s.registration_end,
        key=lambda s: str(s.id),
    )


async def get_event(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, *, user_order: bool = False
) -> EventDetail:
    event = await EventRepository.from_session(session).get(company_id, event_id)
    rows = await SessionRepository.from_session(session).of_event(company_id, event.id)
    sessions = [await session_out(session, r) for r in rows]
    # stable order: sessions by first day's start (sessions without days last), days by start
    sessions.sort(key=_first_start)
    if user_order:
        sessions = order_for_user(sessions, clock.now())
    return EventDetail(**event_out(event).model_dump(), sessions=sessions)


async def update_event(
    session: AsyncSession,
    company_id: str,
    event_id: uuid.UUID,
    data: EventPatch,
    if_match: str | None = None,
) -> EventOut:
    event = await EventRepository.from_session(session).get(company_id, event_id, lock=True)
    check_if_match(if_match, event.version)
    title_changed = False
    if data.title is not None:
        settings = await get_settings(session, company_id)
        title = clean_title(data.title, settings.locales)
        merged = title if isinstance(data.title, str) else {**event.title, **title}
        title_changed = merged != event.title
        event.title = merged
    if data.state is not None:
        event.state = data.state
    if data.requires_approval is not None:
        event.requires_approval = data.requires_approval
    event.version += 1
    publish_event(session, event)
    if title_changed:  # the meeting topic carries the event title: every day is re-published
        # The locks day edits take (the session row, then the day), sessions in id order, so a
        # concurrent day edit waits for us (or we for it) and versions stay strictly increasing.
        sessions = SessionRepository.from_session(session)
        for sess in await sessions.of_event(company_id, event.id, lock=True):
            names = await SessionRepository.from_session(session).names(sess.id)
            for day in await DayRepository.from_session(session).of_session(sess.id):
                day.version += 1
                publish_day(session, day, sess, event, names, c.DayRescheduled)
    await session.flush()
    return event_out(event)
