from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from registration.binding import bind_principal
from registration.me import service
from registration.me.schemas import MyEventsPage, MyEventView, Tab
from te_shared.auth import CurrentPrincipal
from te_shared.errors import problem_responses
from te_shared.service import SessionDep

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
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,9}$")] = None,
) -> MyEventsPage:
    return await service.my_events(session, principal, tab, limit, int(cursor or 0))


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
