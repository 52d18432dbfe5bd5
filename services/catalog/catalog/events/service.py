"""Events: create, list (cursor-paginated), read with sessions and days, change state and title."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import clock
from catalog.common import load, publish_day, publish_event, session_days, session_names
from catalog.company.service import get_settings
from catalog.events.schemas import (
    TITLE_MAX,
    EventDetail,
    EventIn,
    EventOut,
    EventPage,
    EventPatch,
    Title,
)
from catalog.models import Event, TrainingSession
from catalog.sessions.schemas import SessionOut
from catalog.sessions.service import session_out
from te_shared import contracts as c
from te_shared.errors import field_error


def clean_title(value: Title, locales: list[str]) -> dict[str, str]:
    """A plain string titles every locale; a dict names some of the company's locales."""
    raw = dict.fromkeys(locales, value) if isinstance(value, str) else dict(value)
    if not raw:
        raise field_error("body.title", "A title is required.")
    title: dict[str, str] = {}
    for locale, text in raw.items():
        field = "body.title" if isinstance(value, str) else f"body.title.{locale}"
        if locale not in locales:
            raise field_error(field, f"{locale!r} is not one of the company's locales {locales}.")
        cleaned = text.strip()
        if not cleaned or len(cleaned) > TITLE_MAX:
            raise field_error(field, f"A title has 1 to {TITLE_MAX} characters.")
        title[locale] = cleaned
    return title


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
    stmt = select(Event).where(Event.company_id == company_id)
    if cursor:
        created, event_id = _decode_cursor(cursor)
        stmt = stmt.where(
            or_(Event.created_at > created, and_(Event.created_at == created, Event.id > event_id))
        )
    rows = list(await session.scalars(stmt.order_by(Event.created_at, Event.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        items=[event_out(e) for e in rows],
        next_cursor=_encode_cursor(rows[-1]) if more and rows else None,
    )


def _first_start(s: SessionOut) -> tuple[int, dt.datetime]:
    if s.days:
        return (0, s.days[0].start)
    return (1, dt.datetime.max.replace(tzinfo=dt.UTC))


def order_for_user(sessions: list[SessionOut], now: dt.datetime) -> list[SessionOut]:
    """R-SES-10: open sessions first by first day's start; closed ones by registration end,
    newest first."""
    open_ = [s for s in sessions if s.registration_end is None or s.registration_end > now]
    closed = [s for s in sessions if s not in open_]
    open_.sort(key=_first_start)
    closed.sort(key=lambda s: s.registration_end or now, reverse=True)
    return open_ + closed


async def get_event(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, *, user_order: bool = False
) -> EventDetail:
    event = await load(session, Event, event_id, company_id, what="event")
    rows = await session.scalars(
        select(TrainingSession)
        .where(TrainingSession.event_id == event.id, TrainingSession.company_id == company_id)
        .order_by(TrainingSession.created_at, TrainingSession.id)
    )
    sessions = [await session_out(session, r) for r in rows]
    # stable order: sessions by first day's start (sessions without days last), days by start
    sessions.sort(key=_first_start)
    if user_order:
        sessions = order_for_user(sessions, clock.now())
    return EventDetail(**event_out(event).model_dump(), sessions=sessions)


async def update_event(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, data: EventPatch
) -> EventOut:
    event = await load(session, Event, event_id, company_id, lock=True, what="event")
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
        rows = await session.scalars(
            select(TrainingSession)
            .where(TrainingSession.event_id == event.id, TrainingSession.company_id == company_id)
            .order_by(TrainingSession.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for sess in list(rows):
            names = await session_names(session, sess.id)
            for day in await session_days(session, sess.id):
                day.version += 1
                publish_day(session, day, sess, event, names, c.DayRescheduled)
    await session.flush()
    return event_out(event)
