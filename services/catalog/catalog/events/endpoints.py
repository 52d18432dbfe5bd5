from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from catalog.events import service
from catalog.events.schemas import EventDetail, EventIn, EventOut, EventPage, EventPatch
from catalog.sessions import service as sessions
from catalog.sessions.schemas import SessionIn, SessionOut
from te_shared.auth import AdminPrincipal
from te_shared.conditional import IfMatch, created, created_headers, tagged
from te_shared.errors import problem_responses
from te_shared.service import SessionDep

router = APIRouter(prefix="/v1/events", tags=["events"], responses=problem_responses(401, 403))


@router.post(
    "",
    status_code=201,
    response_model=EventOut,
    responses={**problem_responses(422), **created_headers()},
)
async def create_event(
    body: EventIn, admin: AdminPrincipal, session: SessionDep, response: Response
) -> EventOut:
    """Create an event; its `state` starts `hidden`."""
    event = await service.create_event(session, admin.company_id, body)
    return created(response, event, f"/v1/events/{event.id}")


@router.get("", response_model=EventPage, responses=problem_responses(422))
async def list_events(
    admin: AdminPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> EventPage:
    return await service.list_events(session, admin.company_id, limit, cursor)


@router.get("/{event_id}", response_model=EventDetail, responses=problem_responses(404))
async def get_event(
    event_id: uuid.UUID,
    admin: AdminPrincipal,
    session: SessionDep,
    response: Response,
    view: Annotated[
        Literal["admin", "user"],
        Query(description="`user`: sessions in the order users see them (R-SES-10)."),
    ] = "admin",
) -> EventDetail:
    """One event with its sessions and days: sessions by first day's start (sessions without
    days last), days by start; with `view=user`, sessions ordered as R-SES-10 says. `ETag`:
    the event's version, for `If-Match`."""
    return tagged(
        response,
        await service.get_event(session, admin.company_id, event_id, user_order=view == "user"),
    )


@router.patch("/{event_id}", response_model=EventOut, responses=problem_responses(404, 412, 422))
async def update_event(
    event_id: uuid.UUID,
    body: EventPatch,
    admin: AdminPrincipal,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventOut:
    """Change the event; with `If-Match`, only while it is still at that version (412)."""
    return tagged(
        response, await service.update_event(session, admin.company_id, event_id, body, if_match)
    )


@router.post(
    "/{event_id}/sessions",
    status_code=201,
    response_model=SessionOut,
    responses={**problem_responses(404, 409, 422), **created_headers()},
)
async def create_session(
    event_id: uuid.UUID,
    body: SessionIn,
    admin: AdminPrincipal,
    session: SessionDep,
    response: Response,
) -> SessionOut:
    """Create a session; defaults: company timezone (R-SES-4), registration end (R-SES-6)."""
    made = await sessions.create_session(session, admin.company_id, event_id, body)
    return created(response, made, f"/v1/sessions/{made.id}")
