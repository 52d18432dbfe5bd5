"""Control endpoints (``/_sim/*``) that tests and demos use to drive the simulator.

People in meetings (each answers the first attempt of its webhook as ``webhook_status`` and
``webhook``; ``delay_ms`` holds the webhook back):

- ``POST /_sim/meetings/{id}/join`` ``{email?, name?, at?, guest?, waiting_room?, join_url?,
  instance_uuid?, delay_ms?}``: without ``email`` a guest; answers ``user_id`` and ``uuid``.
- ``POST /_sim/meetings/{id}/leave`` ``{user_id? | email?, at?, reason?, delay_ms?}``.
- ``POST /_sim/meetings/{id}/admit`` ``{user_id, at?, delay_ms?}``: out of the waiting room.
- ``POST /_sim/meetings/{id}/end`` ``{at?, before_leaves?, delay_ms?}``: ends the instance.
- ``POST /_sim/meetings/{id}/recording`` ``{at?}``: ``recording.completed``.
- ``GET /_sim/meetings``: meetings with their instances and stays.

Failures: ``POST|GET|DELETE /_sim/faults`` (``{status?, count, delay_ms?, method?, path?,
retry_after?, retry_after_format?, rate_limit_type?, zoom_code?, message?,
drop_after_commit?}``), ``GET|DELETE /_sim/calls``, ``POST /_sim/tokens/expire``.

Webhooks: ``GET /_sim/webhooks`` (deliveries and their attempts), ``POST /_sim/webhook/send``,
``POST /_sim/webhook/url-validation``, ``POST /_sim/deauthorize``.

Set-up: ``GET|POST /_sim/users``, ``POST /_sim/s2s-apps``, ``PATCH /_sim/config``,
``POST /_sim/reset``. Every body and answer is described in the service's README.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, Field, SecretStr

from zoom_sim.api import (
    MeetingPatch,
    SettingsDep,
    StateDep,
    apply_patch,
    meeting_json,
    parse_start,
)
from zoom_sim.settings import ServerToServerApp
from zoom_sim.state import (
    IN_WAITING_ROOM,
    Delivery,
    Fault,
    Meeting,
    Recording,
    RecordingFile,
    Registrant,
    SimConflictError,
    SimState,
    User,
    fmt_time,
)
from zoom_sim.webhooks import (
    WebhookSender,
    app_deauthorized,
    encrypt_plain_token,
    event_body,
    meeting_deleted,
    meeting_ended,
    meeting_permanently_deleted,
    meeting_recovered,
    meeting_updated,
    participant_admitted,
    participant_joined,
    participant_joined_breakout_room,
    participant_joined_waiting_room,
    participant_left,
    participant_left_breakout_room,
    participant_left_waiting_room,
    recording_changed,
    recording_completed,
    recordings_changed_in_bulk,
    registration_ended,
    url_validation,
)

router = APIRouter(prefix="/_sim", tags=["simulator control"])


async def get_sender(request: Request) -> WebhookSender:
    return cast(WebhookSender, request.app.state.webhooks)


SenderDep = Annotated[WebhookSender, Depends(get_sender)]


class JoinIn(BaseModel):
    #: the email the person uses in Zoom; none: a guest (``email`` and ``id`` are "")
    email: str | None = Field(default=None, max_length=320)
    #: user_name; default: the email's local part, or "Guest N" for a guest
    name: str | None = Field(default=None, max_length=200)
    at: datetime | None = None
    #: not signed in to Zoom: no Zoom user id (``id`` is "") even with an email
    guest: bool = False
    #: enter the waiting room (``meeting.participant_joined_waiting_room``); see ``/admit``
    waiting_room: bool = False
    #: the uuid of the instance this join starts, when it starts one (e.g. ``/abc==``)
    instance_uuid: str | None = Field(default=None, min_length=1, max_length=100)
    #: a registrant's personal link (``.../j/<id>?tk=<token>``): joins as that registrant
    #: (``registrant_id`` in webhooks and reports), with whatever ``email`` is given here
    join_url: str | None = Field(default=None, max_length=2000)
    #: hold the webhook back this long (it arrives after later ones)
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


class LeaveIn(BaseModel):
    email: str | None = None
    user_id: str | None = None
    at: datetime | None = None
    reason: str = "left the meeting"
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


class BreakoutIn(BaseModel):
    #: the participant's main-room stay (the ``user_id`` ``/join`` answered)
    user_id: str = Field(min_length=1, max_length=64)
    #: the breakout room, by name (its uuid is derived from it within the instance)
    room: str = Field(default="Room 1", min_length=1, max_length=200)
    #: leave the breakout room instead of joining it
    leave: bool = False
    at: datetime | None = None
    reason: str = "left the breakout room"
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


class AdmitIn(BaseModel):
    user_id: str
    at: datetime | None = None
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


class EndIn(BaseModel):
    at: datetime | None = None
    #: send ``meeting.ended`` first and the leaves of those still in the meeting after it
    before_leaves: bool = False
    #: hold every webhook of the end back this long
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


class AtIn(BaseModel):
    at: datetime | None = None


class FaultIn(BaseModel):
    status: int | None = Field(default=None, ge=100, le=599)
    count: int = Field(default=1, ge=1)
    delay_ms: int = Field(default=0, ge=0, le=120_000)
    #: seconds; a 429 without it says 1 (QPS) or the next 00:00 UTC (Daily-limit); an explicit
    #: null sends no Retry-After at all
    retry_after: int | None = Field(default=None, ge=0)
    #: how the Retry-After header says it: seconds, an HTTP date, or an ISO 8601 time (Zoom's
    #: daily-limit 429: ``Retry-After: 2020-05-31T00:00:00Z``, ``X-RateLimit-Type: Daily-limit``)
    retry_after_format: Literal["seconds", "http-date", "iso"] = "seconds"
    #: a 429's X-RateLimit-Type (default: Daily-limit for the iso format, else QPS)
    rate_limit_type: Literal["QPS", "Daily-limit"] | None = None
    #: the body's Zoom ``code`` (e.g. 4711 missing scope, 200 free plan) and ``message``
    zoom_code: int | None = None
    message: str | None = Field(default=None, max_length=1000)
    #: do the call, then lose its answer: the connection drops, or ``status`` is answered
    drop_after_commit: bool = False
    method: str | None = None
    #: the paths the fault applies to, by prefix (``path`` and ``path_prefix`` are the same)
    path: str | None = None
    path_prefix: str | None = None


class ExpireIn(BaseModel):
    include_refresh: bool = False


class UrlValidationIn(BaseModel):
    plainToken: str | None = None  # Zoom's field name
    #: validate as the Server-to-Server app of this account would (its own secret token)
    account_id: str | None = None


class S2SAppIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=500)
    account_id: str = Field(min_length=1, max_length=100)
    webhook_secret: str | None = Field(default=None, min_length=1, max_length=500)


class RawWebhookIn(BaseModel):
    event: str
    payload: dict[str, Any] = Field(default_factory=dict)
    timestamp_offset_s: int = 0
    bad_signature: bool = False
    #: hold the delivery back this long (it then arrives after later ones); the call answers
    #: at once, with ``webhook_status`` null
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


class DeauthorizeIn(BaseModel):
    user_id: str | None = None


class UserIn(BaseModel):
    email: str = Field(min_length=3)
    type: int | None = Field(default=None, ge=1, le=3)
    role_name: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class ConfigIn(BaseModel):
    webhook_url: str | None = None
    webhook_secret: str | None = None


def _at(state: SimState, value: datetime | None) -> datetime:
    moment = value if value is not None else state.now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _meeting(state: SimState, meeting_id: str) -> Meeting:
    return state.find_meeting(meeting_id)


def _registrant(state: SimState, meeting: Meeting, join_url: str) -> Registrant:
    """The registrant whose personal link ``join_url`` is (for this meeting, approved)."""
    parts = urlsplit(join_url)
    token = parse_qs(parts.query).get("tk", [""])[0]
    if not parts.path.rstrip("/").endswith(f"/j/{meeting.id}") or not token:
        raise HTTPException(
            status_code=422, detail=f"not a registrant's link to meeting {meeting.id}"
        )
    registrant = state.registrant_by_token(meeting, token)
    if registrant is None:
        raise HTTPException(status_code=404, detail="no registrant has this link")
    if registrant.status != "approved":
        raise HTTPException(
            status_code=409,
            detail=f"registrant {registrant.id} is {registrant.status}: Zoom does not let them in",
        )
    return registrant


def _delivery_result(delivery: Delivery) -> dict[str, Any]:
    return {"webhook_status": delivery.status, "webhook": delivery.to_json()}


def _conflict(exc: SimConflictError) -> HTTPException:
    return HTTPException(status_code=409, detail=str(exc))


@router.get("/meetings")
async def list_meetings(state: StateDep, settings: SettingsDep) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for meeting in sorted(state.meetings.values(), key=lambda m: m.created_at):
        item = meeting_json(meeting, state.host_of(meeting), settings)
        item["deleted"] = meeting.deleted
        item["deleted_at"] = fmt_time(meeting.deleted_at) if meeting.deleted_at else None
        item["purged"] = meeting.purged
        item["instances"] = [i.to_json() for i in meeting.instances]
        item["participants"] = [s.to_json() for i in meeting.instances for s in i.sessions]
        item["has_recording"] = state.recording_of(meeting) is not None
        out.append(item)
    return out


async def _deliver(
    sender: WebhookSender, bodies: list[dict[str, Any]], delay_ms: int
) -> list[Delivery]:
    """Send one after the other (each first attempt awaited), or, with ``delay_ms``, hold them
    all back and answer at once."""
    if delay_ms:
        return [sender.start(b, delay_s=delay_ms / 1000) for b in bodies]
    return [await sender.send(b) for b in bodies]


@router.post("/meetings/{meeting_id}/join")
async def join(meeting_id: str, body: JoinIn, state: StateDep, sender: SenderDep) -> Any:
    """Someone joins (the meeting, or its waiting room). Answers the stay's ``user_id`` and
    the instance's ``uuid``, and the first attempt of the webhook."""
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        registrant = _registrant(state, meeting, body.join_url) if body.join_url else None
        try:
            session = state.join(
                meeting,
                email=body.email or "",
                name=body.name,
                at=_at(state, body.at),
                signed_in=not body.guest,
                waiting_room=body.waiting_room,
                instance_uuid=body.instance_uuid,
                registrant=registrant,
            )
        except SimConflictError as exc:
            raise _conflict(exc) from exc
        account = state.host_of(meeting).account_id
        event = participant_joined_waiting_room if body.waiting_room else participant_joined
        payload = event(account, meeting, session)
    (delivery,) = await _deliver(sender, [payload], body.delay_ms)
    return {
        "meeting_id": meeting.id,
        "uuid": session.instance_uuid,
        "user_id": session.user_id,
        "participant": session.to_json(),
        **_delivery_result(delivery),
    }


@router.post("/meetings/{meeting_id}/leave")
async def leave(meeting_id: str, body: LeaveIn, state: StateDep, sender: SenderDep) -> Any:
    """The stay of ``user_id`` (or of ``email``) ends: ``meeting.participant_left``, or
    ``meeting.participant_left_waiting_room`` from the waiting room."""
    if not body.user_id and not body.email:
        raise HTTPException(status_code=422, detail="give a user_id or an email")
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        try:
            session = state.leave(
                meeting,
                user_id=body.user_id or None,
                email=None if body.user_id else body.email,
                at=_at(state, body.at),
                reason=body.reason,
            )
        except SimConflictError as exc:
            raise _conflict(exc) from exc
        account = state.host_of(meeting).account_id
        waiting = session.status == IN_WAITING_ROOM
        event = participant_left_waiting_room if waiting else participant_left
        payload = event(account, meeting, session)
    (delivery,) = await _deliver(sender, [payload], body.delay_ms)
    return {
        "meeting_id": meeting.id,
        "uuid": session.instance_uuid,
        "user_id": session.user_id,
        "participant": session.to_json(),
        **_delivery_result(delivery),
    }


@router.post("/meetings/{meeting_id}/breakout")
async def breakout(meeting_id: str, body: BreakoutIn, state: StateDep, sender: SenderDep) -> Any:
    """The participant whose main-room stay is ``user_id`` joins (or, with ``leave``, leaves)
    breakout room ``room``: ``meeting.participant_joined_breakout_room`` or
    ``meeting.participant_left_breakout_room``. Nothing is said of the main room: whether
    Zoom also sends ``meeting.participant_left`` for it is the caller's to send (``/leave``)."""
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        at = _at(state, body.at)
        try:
            if body.leave:
                stay = state.leave_breakout_room(
                    meeting, user_id=body.user_id, at=at, reason=body.reason
                )
            else:
                stay = state.join_breakout_room(
                    meeting, user_id=body.user_id, room=body.room, at=at
                )
        except SimConflictError as exc:
            raise _conflict(exc) from exc
        account = state.host_of(meeting).account_id
        event = participant_left_breakout_room if body.leave else participant_joined_breakout_room
        payload = event(account, meeting, stay)
    (delivery,) = await _deliver(sender, [payload], body.delay_ms)
    return {
        "meeting_id": meeting.id,
        "uuid": stay.parent.instance_uuid,
        "breakout_room_uuid": stay.room_uuid,
        "user_id": stay.user_id,
        **_delivery_result(delivery),
    }


@router.post("/meetings/{meeting_id}/admit")
async def admit(meeting_id: str, body: AdmitIn, state: StateDep, sender: SenderDep) -> Any:
    """The host admits ``user_id`` from the waiting room at ``at``: ``meeting.participant_admitted``
    then ``meeting.participant_joined`` (join_time: the admit time). ``webhook`` is the join's."""
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        try:
            _, session = state.admit(meeting, user_id=body.user_id, at=_at(state, body.at))
        except SimConflictError as exc:
            raise _conflict(exc) from exc
        account = state.host_of(meeting).account_id
        payloads = [
            participant_admitted(account, meeting, session),
            participant_joined(account, meeting, session),
        ]
    deliveries = await _deliver(sender, payloads, body.delay_ms)
    return {
        "meeting_id": meeting.id,
        "uuid": session.instance_uuid,
        "user_id": session.user_id,
        "participant": session.to_json(),
        **_delivery_result(deliveries[-1]),
        "deliveries": [d.to_json() for d in deliveries],
    }


@router.post("/meetings/{meeting_id}/end")
async def end(
    meeting_id: str,
    state: StateDep,
    sender: SenderDep,
    body: Annotated[EndIn | None, Body()] = None,
) -> Any:
    """End the instance: the leaves of those still in it, then ``meeting.ended`` (or, with
    ``before_leaves``, ``meeting.ended`` first). The next join holds a new instance."""
    body = body or EndIn()
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        at = _at(state, body.at)
        instance, closed = state.end(meeting, at)
        account = state.host_of(meeting).account_id
        leaves = [participant_left(account, meeting, s) for s in closed]
        ended_body = meeting_ended(account, meeting, instance)
    bodies = [ended_body, *leaves] if body.before_leaves else [*leaves, ended_body]
    deliveries = await _deliver(sender, bodies, body.delay_ms)
    ended = deliveries[0] if body.before_leaves else deliveries[-1]
    return {
        "meeting_id": meeting.id,
        "uuid": instance.uuid,
        "end_time": fmt_time(instance.ended_at or at),
        **_delivery_result(ended),
        "deliveries": [d.to_json() for d in deliveries],
    }


class DeleteIn(BaseModel):
    #: hold the webhook back this long
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


@router.post("/meetings/{meeting_id}/delete")
async def delete(
    meeting_id: str,
    state: StateDep,
    sender: SenderDep,
    body: Annotated[DeleteIn | None, Body()] = None,
) -> Any:
    """The host deletes the meeting in Zoom's web portal: it goes to the trash (the API answers
    404, code 3001, from now on) and ``meeting.deleted`` is sent with the host as operator."""
    body = body or DeleteIn()
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        host = state.host_of(meeting)
        state.delete_meeting(meeting)
        deleted = meeting_deleted(host.account_id, meeting, host)
    [delivery] = await _deliver(sender, [deleted], body.delay_ms)
    return {"meeting_id": meeting.id, **_delivery_result(delivery)}


@router.post("/meetings/{meeting_id}/recover")
async def recover(
    meeting_id: str,
    state: StateDep,
    sender: SenderDep,
    body: Annotated[DeleteIn | None, Body()] = None,
) -> Any:
    """The host recovers the meeting from the trash in Zoom's web portal (Recently Deleted, for
    up to 7 days): the API answers for it again and ``meeting.recovered`` is sent with the host
    as operator. 409 when it is not in the trash."""
    return await _out_of_trash(
        state, sender, meeting_id, body, state.recover_meeting, meeting_recovered
    )


@router.post("/meetings/{meeting_id}/purge")
async def purge(
    meeting_id: str,
    state: StateDep,
    sender: SenderDep,
    body: Annotated[DeleteIn | None, Body()] = None,
) -> Any:
    """The host deletes the meeting for good out of the trash in Zoom's web portal (Recently
    Deleted, "Delete permanently"; Zoom does it itself after 7 days): nothing finds it any
    more, a recovery included, and ``meeting.permanently_deleted`` is sent with the host as
    operator. 409 when it is not in the trash."""
    return await _out_of_trash(
        state, sender, meeting_id, body, state.purge_meeting, meeting_permanently_deleted
    )


async def _out_of_trash(
    state: SimState,
    sender: WebhookSender,
    meeting_id: str,
    body: DeleteIn | None,
    move: Callable[[Meeting], None],
    notification: Callable[[str, Meeting, User], dict[str, Any]],
) -> dict[str, Any]:
    """A meeting in the trash taken out of it by its host (``move``), and Zoom's
    ``notification`` of it with the host as operator; 409 when it is not in the trash."""
    body = body or DeleteIn()
    async with state.lock:
        meeting = state.find_meeting(meeting_id, include_deleted=True)
        if not meeting.deleted:
            raise HTTPException(status_code=409, detail="the meeting is not in the trash")
        host = state.host_of(meeting)
        move(meeting)
        sent = notification(host.account_id, meeting, host)
    [delivery] = await _deliver(sender, [sent], body.delay_ms)
    return {"meeting_id": meeting.id, **_delivery_result(delivery)}


class HostEditIn(BaseModel):
    """What the host changes in Zoom's web portal (the API's patch fields)."""

    topic: str | None = Field(default=None, max_length=200)
    start_time: str | None = None
    duration: int | None = Field(default=None, ge=0)
    timezone: str | None = None
    agenda: str | None = Field(default=None, max_length=2000)
    settings: dict[str, Any] | None = None
    #: hold the webhook back this long
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


@router.post("/meetings/{meeting_id}/update")
async def update(meeting_id: str, body: HostEditIn, state: StateDep, sender: SenderDep) -> Any:
    """The host edits the meeting in Zoom's web portal: the change is made (no API quota
    spent) and ``meeting.updated`` is sent with the host as operator."""
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        host = state.host_of(meeting)
        patch = MeetingPatch.model_validate(body.model_dump(exclude={"delay_ms"}))
        timezone = patch.timezone or meeting.timezone
        start = parse_start(patch.start_time, timezone) if patch.start_time else None
        changed, old = apply_patch(meeting, patch, start)
        updated = meeting_updated(host.account_id, meeting, host, changed, old)
    [delivery] = await _deliver(sender, [updated], body.delay_ms)
    return {"meeting_id": meeting.id, "changed": changed, **_delivery_result(delivery)}


class RegistrationEndIn(BaseModel):
    #: who ends it: the host in Zoom's web portal, or the registrant with the cancel link of
    #: Zoom's confirmation e-mail
    by: Literal["host", "registrant"] = "host"
    #: the host denies the registration instead of cancelling it (``meeting.registration_denied``)
    deny: bool = False
    #: hold the webhook back this long
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


@router.post("/meetings/{meeting_id}/registrants/{registrant_id}/cancel")
async def end_registration(
    meeting_id: str,
    registrant_id: str,
    state: StateDep,
    sender: SenderDep,
    body: Annotated[RegistrationEndIn | None, Body()] = None,
) -> Any:
    """A registration ends at Zoom, outside the API: its personal link no longer lets the
    registrant in, and ``meeting.registration_cancelled`` (or ``_denied``) is sent."""
    body = body or RegistrationEndIn()
    if body.deny and body.by == "registrant":
        raise HTTPException(status_code=422, detail="only the host denies a registration")
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        registrant = state.registrants.get(registrant_id)
        if registrant is None or registrant.meeting_id != meeting.id:
            raise HTTPException(status_code=404, detail=f"no registrant {registrant_id}")
        if registrant.status not in ("approved", "pending"):
            raise HTTPException(
                status_code=409, detail=f"registrant {registrant_id} is {registrant.status}"
            )
        host = state.host_of(meeting)
        registrant.status = "denied" if body.deny else "cancelled"
        ended = registration_ended(
            host.account_id,
            meeting,
            registrant,
            registrant.status,
            host if body.by == "host" else None,
        )
    [delivery] = await _deliver(sender, [ended], body.delay_ms)
    return {
        "registrant_id": registrant.id,
        "status": registrant.status,
        **_delivery_result(delivery),
    }


@router.post("/meetings/{meeting_id}/recording")
async def recording(
    meeting_id: str,
    state: StateDep,
    settings: SettingsDep,
    sender: SenderDep,
    body: Annotated[AtIn | None, Body()] = None,
) -> Any:
    """Send ``recording.completed``. Repeating the call re-sends the same recording (same file ids),
    which is how a test checks that a duplicate delivery is handled once."""
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        if meeting.settings.get("auto_recording") != "cloud":
            # Zoom sends recording.completed for cloud recordings only
            raise HTTPException(
                status_code=409,
                detail=f"meeting {meeting.id} does not record to the cloud "
                f"(auto_recording is {meeting.settings.get('auto_recording')!r})",
            )
        end_at = _at(state, body.at) if body and body.at else None
        rec = state.ensure_recording(meeting, end_at)
        host = state.host_of(meeting)
        payload = recording_completed(meeting, host, rec, settings.recording_url)
    delivery = await sender.send(payload)
    return {
        "meeting_id": meeting.id,
        "recording_files": payload["payload"]["object"]["recording_files"],
        **_delivery_result(delivery),
    }


class RecordingChangeIn(BaseModel):
    #: the files it moves (ids from ``recording.completed``); all of the recording's by default
    file_ids: list[str] | None = None
    #: hold the webhook back this long
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


#: which files each action takes, by their status, and what it makes of them
_RECORDING_ACTIONS = {
    "trash": (("completed",), "trashed"),
    "recover": (("trashed",), "completed"),
    "delete": (("completed", "trashed"), None),
}


def _move(recording: Recording, files: list[RecordingFile], becomes: str | None) -> None:
    """``files`` of ``recording`` go to the state ``becomes`` names, or away for good (None)."""
    for item in files:
        if becomes is None:
            recording.files.remove(item)
        else:
            item.status = becomes


@router.post("/meetings/{meeting_id}/recording/{action}")
async def change_recording(
    meeting_id: str,
    action: Literal["trash", "recover", "delete"],
    state: StateDep,
    settings: SettingsDep,
    sender: SenderDep,
    body: Annotated[RecordingChangeIn | None, Body()] = None,
) -> Any:
    """The host (or the account's retention policy) moves the latest cloud recording's files:
    ``trash`` (their links answer 404 from now on; ``recording.trashed``), ``recover`` from
    the trash (``recording.recovered``), ``delete`` for good (``recording.deleted``). 404 when
    the meeting has no recording, 409 when no file named is in a state the action takes."""
    body = body or RecordingChangeIn()
    taken, becomes = _RECORDING_ACTIONS[action]
    async with state.lock:
        meeting = _meeting(state, meeting_id)
        recording = state.recording_of(meeting)
        if recording is None:
            raise HTTPException(status_code=404, detail=f"meeting {meeting.id} has no recording")
        named = set(body.file_ids) if body.file_ids is not None else None
        files = [
            f for f in recording.files if f.status in taken and (named is None or f.id in named)
        ]
        if not files:
            raise HTTPException(status_code=409, detail=f"no file to {action}")
        _move(recording, files, becomes)
        host = state.host_of(meeting)
        payload = recording_changed(action, meeting, host, recording, settings.recording_url, files)
    [delivery] = await _deliver(sender, [payload], body.delay_ms)
    return {
        "meeting_id": meeting.id,
        "recording_files": payload["payload"]["object"]["recording_files"],
        **_delivery_result(delivery),
    }


class BulkRecordingChangeIn(BaseModel):
    #: the meetings whose latest recordings move, all hosted on one Zoom account
    meeting_ids: list[str] = Field(min_length=1, max_length=300)
    #: hold the webhook back this long
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)


@router.post("/recordings/bulk/{action}")
async def change_recordings_in_bulk(
    action: Literal["trash", "recover", "delete"],
    body: BulkRecordingChangeIn,
    state: StateDep,
    sender: SenderDep,
) -> Any:
    """The host selects several meetings' cloud recordings in Zoom's web portal and trashes,
    recovers or deletes them at once: every file of each latest recording in a state the
    action takes moves, and one ``recording.batch_trashed``, ``.batch_recovered`` or
    ``.batch_deleted`` names them (instances and file ids, no links). 404 for a meeting without
    a recording, 409 when nothing moves, 422 when the meetings are on different accounts."""
    taken, becomes = _RECORDING_ACTIONS[action]
    async with state.lock:
        meetings = [_meeting(state, meeting_id) for meeting_id in body.meeting_ids]
        hosts = {state.host_of(meeting).account_id for meeting in meetings}
        if len(hosts) > 1:
            raise HTTPException(status_code=422, detail="the meetings are on different accounts")
        moved = []
        for meeting in meetings:
            recording = state.recording_of(meeting)
            if recording is None:
                raise HTTPException(
                    status_code=404, detail=f"meeting {meeting.id} has no recording"
                )
            files = [f for f in recording.files if f.status in taken]
            if files:
                moved.append((recording, files))
        if not moved:
            raise HTTPException(status_code=409, detail=f"no file to {action}")
        for recording, files in moved:
            _move(recording, files, becomes)
        payload = recordings_changed_in_bulk(action, state.host_of(meetings[0]), moved)
    [delivery] = await _deliver(sender, [payload], body.delay_ms)
    return {"object": payload["payload"]["object"], **_delivery_result(delivery)}


@router.post("/faults")
async def add_fault(body: FaultIn, state: StateDep) -> Any:
    if body.status is None and body.delay_ms == 0 and not body.drop_after_commit:
        raise HTTPException(
            status_code=422, detail="give a status, a delay_ms or drop_after_commit"
        )
    if body.path and body.path_prefix and body.path != body.path_prefix:
        raise HTTPException(status_code=422, detail="path and path_prefix differ")
    retry_after = body.retry_after
    daily = body.rate_limit_type == "Daily-limit" or body.retry_after_format == "iso"
    explicit = "retry_after" in body.model_fields_set
    if body.status == 429 and retry_after is None and not daily and not explicit:
        retry_after = 1
    state.add_fault(
        Fault(
            status=body.status,
            remaining=body.count,
            delay_ms=body.delay_ms,
            retry_after=retry_after,
            method=body.method,
            path_prefix=body.path or body.path_prefix,
            retry_after_format=body.retry_after_format,
            rate_limit_type=body.rate_limit_type,
            zoom_code=body.zoom_code,
            message=body.message,
            drop_after_commit=body.drop_after_commit,
        )
    )
    return {"faults": [f.to_json() for f in state.faults]}


@router.get("/faults")
async def list_faults(state: StateDep) -> Any:
    return {"faults": [f.to_json() for f in state.faults]}


@router.delete("/faults")
async def clear_faults(state: StateDep) -> Any:
    state.faults.clear()
    return {"faults": []}


@router.post("/reset")
async def reset(state: StateDep, sender: SenderDep) -> Any:
    await sender.cancel_all()
    async with state.lock:
        state.reset()
    return {"status": "reset"}


@router.get("/calls")
async def calls(state: StateDep) -> list[dict[str, Any]]:
    return [c.to_json() for c in state.calls]


@router.delete("/calls")
async def clear_calls(state: StateDep) -> Any:
    state.calls.clear()
    return {"calls": []}


@router.get("/webhooks")
async def webhooks(state: StateDep) -> list[dict[str, Any]]:
    return [d.to_json(with_body=True) for d in state.deliveries]


@router.post("/webhook/url-validation")
async def send_url_validation(
    state: StateDep,
    sender: SenderDep,
    body: Annotated[UrlValidationIn | None, Body()] = None,
) -> Any:
    plain = (body.plainToken if body else None) or secrets.token_urlsafe(16)
    secret = state.webhook_secret_for(body.account_id if body else None)
    expected = encrypt_plain_token(secret, plain)
    delivery = await sender.send(url_validation(plain), secret=secret)
    answer = delivery.response if isinstance(delivery.response, dict) else {}
    valid = (
        delivery.status == 200
        and answer.get("plainToken") == plain
        and answer.get("encryptedToken") == expected
    )
    return {
        "plainToken": plain,
        "expected_encryptedToken": expected,
        "valid": valid,
        **_delivery_result(delivery),
    }


@router.post("/webhook/send")
async def send_raw(body: RawWebhookIn, sender: SenderDep) -> Any:
    """Send any event, optionally with a stale timestamp or a wrong signature."""
    delivery = await sender.send(
        event_body(body.event, body.payload),
        timestamp_offset_s=body.timestamp_offset_s,
        bad_signature=body.bad_signature,
        delay_s=body.delay_ms / 1000,
    )
    return _delivery_result(delivery)


@router.post("/s2s-apps")
async def add_s2s_app(body: S2SAppIn, state: StateDep) -> Any:
    """Register a Server-to-Server app: its credentials get account_credentials tokens for its
    account, and its ``webhook_secret`` (when given) signs that account's webhooks."""
    state.add_s2s_app(
        ServerToServerApp(
            client_id=body.client_id,
            client_secret=SecretStr(body.client_secret),
            account_id=body.account_id,
            webhook_secret=SecretStr(body.webhook_secret) if body.webhook_secret else None,
        )
    )
    return {"client_id": body.client_id, "account_id": body.account_id}


@router.post("/deauthorize")
async def deauthorize(
    state: StateDep,
    settings: SettingsDep,
    sender: SenderDep,
    body: Annotated[DeauthorizeIn | None, Body()] = None,
) -> Any:
    user_id = body.user_id if body else None
    user = state.users.get(user_id) if user_id else state.default_user
    if user is None:
        raise HTTPException(status_code=404, detail=f"unknown user {user_id}")
    async with state.lock:
        state.revoke_user(user.id)
        now = state.now().astimezone(UTC)
        when = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        payload = app_deauthorized(user, settings.client_id, state.webhook_secret, when)
    delivery = await sender.send(payload)
    return {"user_id": user.id, "account_id": user.account_id, **_delivery_result(delivery)}


@router.post("/tokens/expire")
async def expire_tokens(state: StateDep, body: Annotated[ExpireIn | None, Body()] = None) -> Any:
    expired, revoked = state.expire_access_tokens(
        include_refresh=body.include_refresh if body else False
    )
    return {"expired_access_tokens": expired, "revoked_refresh_tokens": revoked}


@router.get("/users")
async def list_users(state: StateDep, settings: SettingsDep) -> list[dict[str, Any]]:
    return [u.to_zoom(settings.base_url) for u in state.users.values()]


@router.post("/users")
async def upsert_user(body: UserIn, state: StateDep, settings: SettingsDep) -> Any:
    user = state.upsert_user(
        body.email,
        account_id=body.account_id,
        type_=body.type,
        role_name=body.role_name,
        first_name=body.first_name,
        last_name=body.last_name,
    )
    return user.to_zoom(settings.base_url)


@router.patch("/config")
async def patch_config(body: ConfigIn, state: StateDep) -> Any:
    if body.webhook_url is not None:
        state.webhook_url = body.webhook_url
    if body.webhook_secret is not None:
        state.webhook_secret = body.webhook_secret
    return {"webhook_url": state.webhook_url}
