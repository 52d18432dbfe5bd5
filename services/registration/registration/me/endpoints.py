from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from registration.binding import bind_principal
from registration.deps import SettingsDep
from registration.me import calendar, service
from registration.me.schemas import CalendarFeedOut, MyEventsPage, MyEventView, Tab
from registration.settings import RegistrationSettings
from te_shared.auth import CurrentPrincipal
from te_shared.conditional import IfNoneMatch, not_modified
from te_shared.db import utcnow
from te_shared.errors import NotFound, problem_responses
from te_shared.service import SessionDep

ICS = "text/calendar; charset=utf-8"
#: a locale code as the company's settings have them (``en``, ``de-CH``)
Locale = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$",
        max_length=35,
        description="The locale of the event titles (SUMMARY); the title's first by default.",
    ),
]
_ETAG = {
    "ETag": {
        "description": "A weak tag of the days the calendar holds, for `If-None-Match`.",
        "schema": {"type": "string"},
    }
}
CALENDAR_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "content": {"text/calendar": {"schema": {"type": "string"}}},
        "description": "RFC 5545: one VEVENT per day of the sessions the user is in, from the "
        "days that ended CALENDAR_PAST_DAYS ago (365 by default) on.",
        "headers": _ETAG,
    },
    304: {
        "description": "`If-None-Match` names the calendar's current `ETag`: the days are as "
        "the client has them (calendar apps fetch a subscription every hour).",
        "headers": _ETAG,
    },
}

router = APIRouter(
    prefix="/v1/me",
    tags=["me"],
    responses=problem_responses(401),
    dependencies=[Depends(bind_principal)],
)


@router.get("/events", response_model=MyEventsPage, summary="The user's events in one tab")
async def my_events(
    principal: CurrentPrincipal,
    session: SessionDep,
    tab: Tab = Tab.AVAILABLE,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the page before.")
    ] = None,
) -> MyEventsPage:
    position = service.decode_cursor(cursor) if cursor else None
    return await service.my_events(session, principal, tab, limit, position)


@router.get(
    "/events/{event_id}",
    response_model=MyEventView,
    responses=problem_responses(404),
    summary="One event as the user sees it",
)
async def my_event(
    event_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> MyEventView:
    return await service.my_event(session, principal, event_id)


@router.get(
    "/calendar.ics",
    response_class=Response,
    responses=CALENDAR_RESPONSE,
    summary="The user's days as an iCalendar file",
)
async def my_calendar(
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
    locale: Locale = None,
) -> Response:
    return await _calendar(
        session, settings, (principal.company_id, principal.user_id), locale, if_none_match, {}
    )


async def _calendar(
    session: AsyncSession,
    settings: RegistrationSettings,
    owner: tuple[str, str],
    locale: str | None,
    if_none_match: str | None,
    headers: dict[str, str],
) -> Response:
    """The owner's calendar, or 304 when ``If-None-Match`` names its tag (nothing rendered)."""
    now = utcnow()
    since = calendar.window_start(now, settings.calendar_past_days)
    entries = await calendar.entries_for(session, *owner, locale, since=since)
    tag = calendar.entity_tag(entries)
    headers = {**headers, "ETag": tag}
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return Response(calendar.render(entries, now), media_type=ICS, headers=headers)


@router.post(
    "/calendar/feed",
    status_code=201,
    response_model=CalendarFeedOut,
    summary="A subscription URL for calendar apps",
    description="An unguessable URL that serves the user's calendar without a bearer token, "
    "for calendar apps. Shown once (only its hash is kept); a new one replaces the old.",
)
async def create_feed(
    principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> CalendarFeedOut:
    token = await calendar.new_feed(session, principal.company_id, principal.user_id, utcnow())
    base = settings.public_base_url.rstrip("/")
    return CalendarFeedOut(url=f"{base}/v1/calendar/{token}.ics")


@router.delete(
    "/calendar/feed",
    status_code=204,
    response_class=Response,
    summary="Revoke the subscription URL",
)
async def revoke_feed(principal: CurrentPrincipal, session: SessionDep) -> Response:
    await calendar.revoke_feed(session, principal.company_id, principal.user_id)
    return Response(status_code=204)


#: calendar apps cannot send headers: the feed's token in its URL is the credential
feeds = APIRouter(prefix="/v1/calendar", tags=["me"])


@feeds.get(
    "/{token}.ics",
    response_class=Response,
    responses={**CALENDAR_RESPONSE, **problem_responses(404)},
    summary="A calendar feed, by its token (no bearer token)",
)
async def feed(
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
    locale: Locale = None,
) -> Response:
    owner = (
        await calendar.feed_owner(session, token)
        if 20 <= len(token) <= 100 and token.replace("-", "").replace("_", "").isalnum()
        else None
    )
    if owner is None:
        raise NotFound("No such calendar feed.", code="feed_not_found")
    cache = {"Cache-Control": "private, max-age=300"}
    return await _calendar(session, settings, owner, locale, if_none_match, cache)
