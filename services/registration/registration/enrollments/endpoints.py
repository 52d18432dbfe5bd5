from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Response, UploadFile, status

from registration import readmodel
from registration.binding import bind_principal, unseen
from registration.deps import SettingsDep
from registration.enrollments import importing, service
from registration.enrollments.reading import CsvEncoding
from registration.enrollments.schemas import (
    AdminEnrollmentIn,
    AdminEnrollmentPage,
    EnrollmentOut,
    ImportResult,
    SeatsOut,
    StatusChangeIn,
)
from registration.models import Enrollment
from te_shared.auth import AdminPrincipal, CurrentPrincipal
from te_shared.errors import NotFound, problem_responses
from te_shared.service import RuntimeDep, SessionDep

router = APIRouter(
    tags=["enrollments"],
    responses=problem_responses(401, 404),
    dependencies=[Depends(bind_principal)],
)


#: Self sign-up alone: its statements run each as a transaction of its own from the first, so
#: the seat counter is locked only while the seat-taking statement runs; it binds what waits for
#: the caller's e-mail itself, not in a dependency (:func:`.service.sign_up`); and the common
#: sign-up, refused or taking a seat, is done before routing (:mod:`.fast_path`)
sign_up_router = APIRouter(tags=["enrollments"], responses=problem_responses(401, 404))


def _out(enrollment: Enrollment) -> EnrollmentOut:
    return EnrollmentOut.model_validate(enrollment)


@sign_up_router.post(
    "/v1/sessions/{session_id}/enrollments",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrollmentOut,
    responses={
        200: {"model": EnrollmentOut, "description": "Already enrolled in this session"},
        **problem_responses(409),
    },
    summary="Sign up for a session (R-ENR-3)",
    description=(
        "201 with the new enrollment. Signing up again for the session one is already in "
        "answers 200 with that enrollment, so a retried request is safe; a live enrollment "
        "in another session of the event is a 409 `already_enrolled`."
    ),
)
async def sign_up(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> EnrollmentOut:
    caller = unseen(principal, runtime)
    enrollment, created = await service.sign_up(session, principal, session_id, caller)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _out(enrollment)


@router.post(
    "/v1/enrollments/{enrollment_id}/cancel",
    response_model=EnrollmentOut,
    responses=problem_responses(409),
    summary="Withdraw (R-ENR-8)",
)
async def cancel(
    enrollment_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> EnrollmentOut:
    return _out(await service.cancel(session, principal, enrollment_id))


@router.post(
    "/v1/enrollments/{enrollment_id}/confirm-participation",
    response_model=EnrollmentOut,
    responses=problem_responses(409),
    summary="Say you took part (→ awaiting_confirmation)",
)
async def confirm_participation(
    enrollment_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> EnrollmentOut:
    return _out(await service.confirm_participation(session, principal, enrollment_id))


@router.get(
    "/v1/events/{event_id}/enrollments",
    response_model=AdminEnrollmentPage,
    responses=problem_responses(403),
    summary="Applications and visits: status, history, attendance per day",
)
async def list_enrollments(
    event_id: uuid.UUID,
    admin: AdminPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,9}$")] = None,
) -> AdminEnrollmentPage:
    return await service.list_for_event(
        session, admin.company_id, event_id, limit, int(cursor or 0)
    )


@router.post(
    "/v1/events/{event_id}/enrollments",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrollmentOut,
    responses={
        200: {"model": EnrollmentOut, "description": "Nothing changed: the enrollment as it is"},
        **problem_responses(403, 409, 422),
    },
    summary="Enroll a user as an admin (R-ENR-4)",
    description=(
        "201 when the user was enrolled or moved from pending or waitlisted to approved; 200 "
        "with the enrollment as it is when the user already is approved, awaiting "
        "confirmation, participated, missed or denied in that session (nothing changes)."
    ),
)
async def admin_enroll(
    event_id: uuid.UUID,
    body: AdminEnrollmentIn,
    admin: AdminPrincipal,
    session: SessionDep,
    response: Response,
) -> EnrollmentOut:
    await readmodel.get_event(session, admin.company_id, event_id)
    target = await readmodel.get_session(session, admin.company_id, body.session_id)
    if target.event_id != event_id:
        raise NotFound("No such session in this event.", code="session_not_found")
    enrollment, changed = await service.admin_enroll(
        session,
        admin.company_id,
        event_id,
        target,
        body.user_id,
        body.email,
        by=admin.user_id,
        reason="enrolled by an admin",
    )
    if not changed:
        response.status_code = status.HTTP_200_OK
    return _out(enrollment)


@router.patch(
    "/v1/enrollments/{enrollment_id}",
    response_model=EnrollmentOut,
    responses=problem_responses(403, 409, 422),
    summary="Approve, deny, mark participated or missed",
)
async def set_status(
    enrollment_id: uuid.UUID, body: StatusChangeIn, admin: AdminPrincipal, session: SessionDep
) -> EnrollmentOut:
    return _out(
        await service.admin_set_status(session, admin, enrollment_id, body.status, body.reason)
    )


@router.post(
    "/v1/events/{event_id}/enrollments/import",
    response_model=ImportResult,
    responses=problem_responses(403, 409, 413, 422),
    summary="Import enrollments from CSV or XLSX (R-ENR-5)",
)
async def import_enrollments(
    event_id: uuid.UUID,
    file: UploadFile,
    admin: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    encoding: Annotated[
        CsvEncoding,
        Form(
            description='A CSV file\'s encoding (Excel saves "CSV" in the Windows code page of '
            'its language, windows-1252 in Western Europe, and "CSV UTF-8" in UTF-8). A byte '
            "order mark (UTF-8, UTF-16) names the encoding whatever this says; XLSX ignores it."
        ),
    ] = "utf-8",
) -> ImportResult:
    data = await file.read(importing.MAX_BYTES + 1)
    imported, unchanged = await importing.import_file(
        session,
        admin.company_id,
        event_id,
        data,
        file.filename,
        admin.user_id,
        time_limit=settings.import_read_timeout,
        encoding=encoding,
    )
    return ImportResult(imported=imported, unchanged=unchanged)


@router.get(
    "/v1/sessions/{session_id}/seats",
    response_model=SeatsOut,
    summary="Limit and seats taken/left (R-SES-8)",
)
async def get_seats(
    session_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> SeatsOut:
    return await service.seats(session, principal, session_id)
