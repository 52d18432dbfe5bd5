"""Zoom-shaped routes: OAuth (zoom.us/oauth/*) and the REST API (api.zoom.us/v2/*).

- OAuth: ``GET /oauth/authorize`` (auto-approves; ``sim_user``, ``sim_deny``), ``POST
  /oauth/token`` (codes live 5 minutes; refresh tokens rotate), ``POST /oauth/revoke``.
- Users and meetings: ``GET /v2/users/{userId}``, ``POST|GET /v2/users/{userId}/meetings``,
  ``GET|PATCH|DELETE /v2/meetings/{meetingId}``; creates and updates count against Zoom's
  daily limit per user (429, ``X-RateLimit-Type: Daily-limit``).
- Registrants: ``POST|GET /v2/meetings/{meetingId}/registrants``, ``PUT
  .../registrants/status``, ``DELETE .../registrants/{registrantId}``.
- After the meeting: ``GET /v2/report/meetings/{meetingId}/participants``, ``GET
  /v2/past_meetings/{meetingId}/participants``, ``GET /v2/past_meetings/{meetingId}/instances``,
  ``GET /v2/meetings/{meetingId}/recordings``: a meeting id means the latest instance, a UUID
  (double-encoded when it begins with ``/`` or contains ``//``) names one.
- The pages behind the links handed out: ``/j/{id}``, ``/s/{id}``, ``/rec/play/{token}``,
  ``/rec/download/{token}``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import json
from datetime import date, datetime
from typing import Annotated, Any, Literal, cast
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zoom_sim.errors import (
    OAuthError,
    ZoomAPIError,
    invalid_token,
    meeting_daily_limit_message,
    meeting_not_found,
    validation_failed,
)
from zoom_sim.settings import Settings
from zoom_sim.state import (
    Instance,
    Meeting,
    Registrant,
    SimState,
    TokenPair,
    User,
    fmt_time,
    next_utc_midnight,
    page,
    parse_time,
)
from zoom_sim.webhooks import (
    REGISTRATION_ENDED,
    WebhookSender,
    meeting_deleted,
    meeting_updated,
    recording_object,
    registration_ended,
)

router = APIRouter()

AUTO_RECORDING = ("local", "cloud", "none")


async def get_state(request: Request) -> SimState:
    return cast(SimState, request.app.state.sim)


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


StateDep = Annotated[SimState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# ---- OAuth -----------------------------------------------------------------------------------


def _check_client(request: Request, settings: Settings, state: SimState | None = None) -> str:
    """The client id of the Basic credentials: the OAuth app's, or (when ``state`` is given, for
    the account_credentials grant) a configured Server-to-Server app's."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise OAuthError(401, "invalid_client", "Client ID or client secret is missing.")
    try:
        client_id, _, client_secret = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError(401, "invalid_client", "Invalid client_id or client_secret") from exc
    expected_secret = settings.client_secret.get_secret_value()
    id_ok = hmac.compare_digest(client_id.encode(), settings.client_id.encode())
    secret_ok = hmac.compare_digest(client_secret.encode(), expected_secret.encode())
    if id_ok and secret_ok:
        return client_id
    if state is not None and state.s2s_client_ok(client_id, client_secret):
        return client_id
    raise OAuthError(401, "invalid_client", "Invalid client_id or client_secret")


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@router.get("/oauth/authorize", include_in_schema=True)
async def authorize(request: Request, state: StateDep, settings: SettingsDep) -> Response:
    """Auto-approves: 302 straight back to ``redirect_uri?code=...&state=...``.

    Non-Zoom extras: ``sim_user=<email>`` authorises as that user (created on the fly, in its own
    account) instead of the default host, for tests with several connected accounts;
    ``sim_deny=1`` plays a user who clicks "Decline": ``redirect_uri?error=access_denied&state=``.
    """
    q = request.query_params
    if q.get("response_type") != "code":
        raise OAuthError(400, "unsupported_response_type", "Unsupported response type.")
    if q.get("client_id") != settings.client_id:
        raise OAuthError(400, "invalid_client", "Invalid client_id.")
    redirect_uri = q.get("redirect_uri")
    if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
        raise OAuthError(400, "invalid_request", "Redirect URI mismatch.")
    method = q.get("code_challenge_method")
    challenge = q.get("code_challenge")
    if challenge is not None and method not in (None, "plain", "S256"):
        raise OAuthError(400, "invalid_request", "Unsupported code_challenge_method.")
    if q.get("sim_deny"):
        denied = {"error": "access_denied", "error_description": "The user denied access."}
        if "state" in q:
            denied["state"] = q["state"]
        return RedirectResponse(_with_query(redirect_uri, denied), status_code=302)
    sim_user = q.get("sim_user")
    user = state.upsert_user(sim_user) if sim_user else state.default_user
    code = state.issue_code(
        user, redirect_uri, challenge, method or ("plain" if challenge else None)
    )
    params = {"code": code}
    if "state" in q:
        params["state"] = q["state"]
    return RedirectResponse(_with_query(redirect_uri, params), status_code=302)


def _token_response(pair: TokenPair, settings: Settings) -> JSONResponse:
    body: dict[str, Any] = {
        "access_token": pair.access_token,
        "token_type": "bearer",
        "expires_in": pair.expires_in,
        "scope": pair.scope,
        "api_url": settings.base_url,
    }
    if pair.refresh_token is not None:
        body["refresh_token"] = pair.refresh_token
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post("/oauth/token")
async def token(request: Request, state: StateDep, settings: SettingsDep) -> Response:
    """Token endpoint; parameters come as a form body or in the query string (Zoom takes both).
    The account_credentials grant also takes a configured Server-to-Server app's credentials."""
    params: dict[str, str] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    grant_type = params.get("grant_type")
    client_id = _check_client(
        request, settings, state if grant_type == "account_credentials" else None
    )
    if not grant_type:
        raise OAuthError(400, "invalid_request", "Missing grant type.")
    if grant_type == "authorization_code":
        pair = state.exchange_code(
            params.get("code", ""), params.get("redirect_uri"), params.get("code_verifier")
        )
    elif grant_type == "refresh_token":
        pair = state.refresh(params.get("refresh_token", ""))
    elif grant_type == "account_credentials":
        pair = state.account_credentials(params.get("account_id", ""), client_id)
    else:
        raise OAuthError(
            400, "unsupported_grant_type", "Grant type is not supported from token endpoint."
        )
    return _token_response(pair, settings)


@router.post("/oauth/revoke")
async def revoke(request: Request, state: StateDep, settings: SettingsDep) -> Response:
    _check_client(request, settings)
    params: dict[str, str] = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    state.revoke(params.get("token", ""))
    return JSONResponse({"status": "success"})


# ---- REST API --------------------------------------------------------------------------------


async def current_user(request: Request, state: StateDep) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise invalid_token()
    user, expired = state.authenticate(value.strip())
    if user is None:
        raise invalid_token(expired=expired)
    return user


UserDep = Annotated[User, Depends(current_user)]


class MeetingIn(BaseModel):
    """Create-meeting body (the fields the simulator understands; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    topic: str = Field(default="Zoom Meeting", max_length=200)
    type: Literal[1, 2, 3, 8] = 2
    start_time: str | None = None
    duration: int = Field(default=60, ge=0)
    timezone: str | None = None
    agenda: str = Field(default="", max_length=2000)
    password: str | None = Field(default=None, max_length=10)
    settings: dict[str, Any] = Field(default_factory=dict)


class MeetingPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    topic: str | None = Field(default=None, max_length=200)
    type: Literal[1, 2, 3, 8] | None = None
    start_time: str | None = None
    duration: int | None = Field(default=None, ge=0)
    timezone: str | None = None
    agenda: str | None = Field(default=None, max_length=2000)
    password: str | None = Field(default=None, max_length=10)
    settings: dict[str, Any] | None = None


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ZoomAPIError(400, 300, "Request Body should be a valid JSON object.") from exc
    if not isinstance(data, dict):
        raise ZoomAPIError(400, 300, "Request Body should be a valid JSON object.")
    return data


def _validation_errors(exc: ValidationError) -> ZoomAPIError:
    return validation_failed(
        [
            {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": "Invalid field."}
            for err in exc.errors()
        ]
    )


def _check_settings(settings: dict[str, Any]) -> None:
    auto = settings.get("auto_recording")
    if auto is not None and auto not in AUTO_RECORDING:
        raise validation_failed([{"field": "settings.auto_recording", "message": "Invalid field."}])


def parse_start(value: str, timezone: str | None) -> Any:
    try:
        return parse_time(value, timezone)
    except ValueError as exc:
        raise validation_failed([{"field": "start_time", "message": "Invalid field."}]) from exc


def _daily_quota(state: SimState, user: User, kind: str) -> tuple[str, str, date]:
    """Zoom's per-user daily limit of meeting creates and updates: 429 with ``X-RateLimit-Type:
    Daily-limit`` and ``Retry-After`` at the next 00:00 UTC once the day's are used up."""
    key = state.daily_quota(user, kind)
    if key is not None:
        return key
    limit = state.settings.meeting_daily_limit
    now = state.now()
    raise ZoomAPIError(
        429,
        429,
        meeting_daily_limit_message(limit),
        headers={
            "Retry-After": fmt_time(next_utc_midnight(now)),
            "X-RateLimit-Category": "Medium" if kind == "create" else "Light",
            "X-RateLimit-Type": "Daily-limit",
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
        },
    )


def meeting_json(
    meeting: Meeting, host: User, settings: Settings, zak: str | None = None
) -> dict[str, Any]:
    """Zoom's meeting object. ``zak``: the host key in ``start_url`` (a fresh one each time Zoom
    answers create or get, as Zoom's start_url expires after 2 hours)."""
    base = settings.base_url
    return {
        "uuid": meeting.uuid,
        "id": meeting.id,
        "host_id": meeting.host_id,
        "host_email": host.email,
        "assistant_id": "",
        "topic": meeting.topic,
        "type": meeting.type,
        "status": meeting.status,
        "start_time": fmt_time(meeting.start_time) if meeting.start_time else None,
        "duration": meeting.duration,
        "timezone": meeting.timezone,
        "agenda": meeting.agenda,
        "created_at": fmt_time(meeting.created_at),
        "start_url": f"{base}/s/{meeting.id}?zak={zak or meeting.zak}",
        "join_url": f"{base}/j/{meeting.id}?pwd={meeting.encrypted_password}",
        "password": meeting.password,
        "h323_password": meeting.password,
        "pstn_password": meeting.password,
        "encrypted_password": meeting.encrypted_password,
        "settings": meeting.settings,
        "pre_schedule": False,
    }


@router.get("/v2/users/{user_ref}")
async def get_user(user_ref: str, caller: UserDep, state: StateDep, settings: SettingsDep) -> Any:
    user = state.resolve_user(user_ref, caller)
    if user is None:
        raise ZoomAPIError(404, 1001, f"User does not exist: {user_ref}.")
    return user.to_zoom(settings.base_url)


@router.post("/v2/users/{user_ref}/meetings", status_code=201)
async def create_meeting(
    user_ref: str, request: Request, caller: UserDep, state: StateDep, settings: SettingsDep
) -> Response:
    host = state.resolve_user(user_ref, caller)
    if host is None:
        raise ZoomAPIError(404, 1001, f"User does not exist: {user_ref}.")
    data = await _json_object(request)
    try:
        body = MeetingIn.model_validate(data)
    except ValidationError as exc:
        raise _validation_errors(exc) from exc
    _check_settings(body.settings)
    timezone = body.timezone or host.timezone
    start = parse_start(body.start_time, timezone) if body.start_time else None
    quota = _daily_quota(state, host, "create")
    meeting = state.create_meeting(
        host,
        topic=body.topic,
        type_=body.type,
        start_time=start,
        duration=body.duration,
        timezone=timezone,
        agenda=body.agenda,
        password=body.password,
        settings=body.settings,
    )
    state.spend(quota)
    headers = {"Location": f"{settings.base_url}/v2/meetings/{meeting.id}"}
    return JSONResponse(meeting_json(meeting, host, settings), status_code=201, headers=headers)


def _page_params(request: Request, default: int, maximum: int) -> tuple[int, int]:
    q = request.query_params
    raw_size = q.get("page_size")
    try:
        size = int(raw_size) if raw_size else default
    except ValueError as exc:
        raise validation_failed([{"field": "page_size", "message": "Invalid field."}]) from exc
    size = max(1, min(size, maximum))
    token = q.get("next_page_token") or ""
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except (ValueError, binascii.Error) as exc:
            raise ZoomAPIError(400, 300, "Invalid next_page_token.") from exc
    return size, offset


def _next_token(offset: int, size: int, total: int) -> str:
    nxt = offset + size
    return base64.urlsafe_b64encode(f"o:{nxt}".encode()).decode() if nxt < total else ""


@router.get("/v2/users/{user_ref}/meetings")
async def list_meetings(
    user_ref: str, request: Request, caller: UserDep, state: StateDep, settings: SettingsDep
) -> Any:
    host = state.resolve_user(user_ref, caller)
    if host is None:
        raise ZoomAPIError(404, 1001, f"User does not exist: {user_ref}.")
    size, offset = _page_params(request, 30, 300)
    meetings = sorted(
        (m for m in state.meetings.values() if m.host_id == host.id and not m.deleted),
        key=lambda m: m.created_at,
    )
    chunk = meetings[offset : offset + size]
    return {
        "page_size": size,
        "total_records": len(meetings),
        "next_page_token": _next_token(offset, size, len(meetings)),
        "meetings": [
            {
                k: v
                for k, v in meeting_json(m, host, settings).items()
                if k
                in (
                    "uuid",
                    "id",
                    "host_id",
                    "topic",
                    "type",
                    "start_time",
                    "duration",
                    "timezone",
                    "agenda",
                    "created_at",
                    "join_url",
                )
            }
            for m in chunk
        ],
    }


@router.get("/v2/meetings/{meeting_ref}")
async def get_meeting(
    meeting_ref: str, caller: UserDep, state: StateDep, settings: SettingsDep
) -> Any:
    meeting = state.meeting_for(meeting_ref, caller)
    return meeting_json(meeting, state.host_of(meeting), settings, state.issue_zak(meeting))


@router.patch("/v2/meetings/{meeting_ref}", status_code=204)
async def update_meeting(
    meeting_ref: str, request: Request, caller: UserDep, state: StateDep
) -> Response:
    meeting = state.meeting_for(meeting_ref, caller)
    data = await _json_object(request)
    try:
        body = MeetingPatch.model_validate(data)
    except ValidationError as exc:
        raise _validation_errors(exc) from exc
    if body.settings is not None:
        _check_settings(body.settings)
    timezone = body.timezone or meeting.timezone
    start = parse_start(body.start_time, timezone) if body.start_time else None
    state.spend(_daily_quota(state, state.host_of(meeting), "update"))
    updated = apply_patch(meeting, body, start)
    sender = cast(WebhookSender, request.app.state.webhooks)
    sender.start(meeting_updated(caller.account_id, meeting, caller, *updated))
    return Response(status_code=204)


def apply_patch(
    meeting: Meeting, body: MeetingPatch, start: datetime | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply a patch; the fields it changed, as they are now and as they were (what
    ``meeting.updated`` carries in ``object`` and ``old_object``)."""
    before = _patchable(meeting)
    if body.topic is not None:
        meeting.topic = body.topic
    if body.type is not None:
        meeting.type = body.type
    if body.duration is not None:
        meeting.duration = body.duration
    if body.timezone is not None:
        meeting.timezone = body.timezone
    if start is not None:
        meeting.start_time = start
    if body.agenda is not None:
        meeting.agenda = body.agenda
    if body.password is not None:
        meeting.password = body.password
    if body.settings is not None:
        meeting.settings = {**meeting.settings, **body.settings}
    after = _patchable(meeting)
    changed = {k: v for k, v in after.items() if k != "settings" and before[k] != v}
    old = {k: before[k] for k in changed}
    settings = {k: v for k, v in after["settings"].items() if before["settings"].get(k) != v}
    if settings:
        changed["settings"] = settings
        old["settings"] = {k: before["settings"].get(k) for k in settings}
    return changed, old


def _patchable(meeting: Meeting) -> dict[str, Any]:
    return {
        "topic": meeting.topic,
        "type": meeting.type,
        "start_time": fmt_time(meeting.start_time) if meeting.start_time else None,
        "duration": meeting.duration,
        "timezone": meeting.timezone,
        "agenda": meeting.agenda,
        "password": meeting.password,
        "settings": dict(meeting.settings),
    }


@router.delete("/v2/meetings/{meeting_ref}", status_code=204)
async def delete_meeting(
    meeting_ref: str, request: Request, caller: UserDep, state: StateDep
) -> Response:
    """204; the meeting goes to the trash and ``meeting.deleted`` is sent, as Zoom notifies
    every deletion, an app's own API calls included (the caller is the ``operator``)."""
    meeting = state.meeting_for(meeting_ref, caller)
    state.delete_meeting(meeting)
    sender = cast(WebhookSender, request.app.state.webhooks)
    sender.start(meeting_deleted(caller.account_id, meeting, caller))
    return Response(status_code=204)


class RegistrantIn(BaseModel):
    """Add-registrant body (the fields the simulator understands; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=3, max_length=128, pattern=r"^[^@\s]+@[^@\s]+$")
    first_name: str = Field(min_length=1, max_length=64)
    last_name: str = Field(default="", max_length=64)
    auto_approve: bool = False


class RegistrantRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    email: str | None = None


class RegistrantStatusIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["approve", "cancel", "deny"]
    registrants: list[RegistrantRef] = Field(default_factory=list)


def _registration_enabled(meeting: Meeting) -> None:
    """Zoom's answer when the meeting takes no registration (``settings.approval_type`` 2)."""
    if meeting.settings.get("approval_type", 2) == 2:
        raise ZoomAPIError(
            404, 404, f"Registration has not been enabled for this meeting: {meeting.id}."
        )


@router.post("/v2/meetings/{meeting_ref}/registrants", status_code=201)
async def add_registrant(
    meeting_ref: str, request: Request, caller: UserDep, state: StateDep, settings: SettingsDep
) -> Response:
    """Register someone: approved at once with ``auto_approve`` or ``approval_type`` 0, else
    pending. The answer's ``join_url`` is their personal link (``/j/<id>?tk=<token>``)."""
    meeting = state.meeting_for(meeting_ref, caller)
    data = await _json_object(request)
    try:
        body = RegistrantIn.model_validate(data)
    except ValidationError as exc:
        raise _validation_errors(exc) from exc
    _registration_enabled(meeting)
    approved = body.auto_approve or meeting.settings.get("approval_type") == 0
    registrant = state.register(
        meeting,
        email=body.email,
        first_name=body.first_name,
        last_name=body.last_name,
        approved=approved,
    )
    return JSONResponse(
        {
            "id": meeting.id,
            "registrant_id": registrant.id,
            "join_url": registrant.join_url(settings.base_url),
            "topic": meeting.topic,
            "start_time": fmt_time(meeting.start_time) if meeting.start_time else None,
        },
        status_code=201,
    )


@router.get("/v2/meetings/{meeting_ref}/registrants")
async def list_registrants(
    meeting_ref: str, request: Request, caller: UserDep, state: StateDep, settings: SettingsDep
) -> Any:
    """Registrants of one ``status`` (default ``approved``), paged."""
    meeting = state.meeting_for(meeting_ref, caller)
    _registration_enabled(meeting)
    wanted = request.query_params.get("status") or "approved"
    if wanted not in ("approved", "pending", "denied"):
        raise validation_failed([{"field": "status", "message": "Invalid field."}])
    size, offset = _page_params(request, 30, 300)
    found = [r for r in state.registrants_of(meeting) if r.status == wanted]
    return {
        "page_count": page(len(found), size),
        "page_number": 1 + offset // size,
        "page_size": size,
        "total_records": len(found),
        "next_page_token": _next_token(offset, size, len(found)),
        "registrants": [r.to_zoom(settings.base_url) for r in found[offset : offset + size]],
    }


@router.put("/v2/meetings/{meeting_ref}/registrants/status", status_code=204)
async def update_registrant_status(
    meeting_ref: str, request: Request, caller: UserDep, state: StateDep
) -> Response:
    """``approve``, ``deny`` or ``cancel`` the registrants named by ``id`` or ``email``; a
    cancelled or denied registrant's link no longer lets them in, and Zoom notifies each
    registration it ended (``meeting.registration_cancelled`` or ``_denied``, the caller as
    ``operator``), an app's own calls included."""
    meeting = state.meeting_for(meeting_ref, caller)
    data = await _json_object(request)
    try:
        body = RegistrantStatusIn.model_validate(data)
    except ValidationError as exc:
        raise _validation_errors(exc) from exc
    status = {"approve": "approved", "deny": "denied", "cancel": "cancelled"}[body.action]
    mine = state.registrants_of(meeting)
    ended: list[Registrant] = []
    for ref in body.registrants:
        for registrant in mine:
            if (ref.id and registrant.id == ref.id) or (
                ref.email and registrant.email.lower() == ref.email.lower()
            ):
                if status in REGISTRATION_ENDED and registrant.status in ("approved", "pending"):
                    ended.append(registrant)
                registrant.status = status
    sender = cast(WebhookSender, request.app.state.webhooks)
    for registrant in ended:
        sender.start(registration_ended(caller.account_id, meeting, registrant, status, caller))
    return Response(status_code=204)


@router.delete("/v2/meetings/{meeting_ref}/registrants/{registrant_id}", status_code=204)
async def delete_registrant(
    meeting_ref: str, registrant_id: str, caller: UserDep, state: StateDep
) -> Response:
    meeting = state.meeting_for(meeting_ref, caller)
    registrant = state.registrants.get(registrant_id)
    if registrant is None or registrant.meeting_id != meeting.id:
        # the code is the simulator's guess: Zoom documents none for an unknown registrant
        raise ZoomAPIError(404, 3079, f"Registrant does not exist: {registrant_id}.")
    del state.registrants[registrant_id]
    return Response(status_code=204)


def meeting_ref_from_path(value: str) -> str:
    """A meeting id or UUID from a path, by Zoom's rule: a UUID that begins with ``/`` or
    contains ``//`` must be double-encoded (``%252F``); the path arrives decoded once, so what
    still holds a ``%`` is decoded again. Sent encoded only once, such a UUID is not found."""
    if "%" in value:
        return unquote(value)
    if value.startswith("/") or "//" in value:
        raise meeting_not_found(value)
    return value


def _paid(caller: User) -> None:
    if caller.type == 1:
        raise ZoomAPIError(
            400, 200, f"Only available for Paid or ZMP account: {caller.account_id}."
        )


def _held(state: SimState, caller: User, ref: str) -> tuple[Meeting, Instance | None]:
    meeting = state.find_meeting(ref, include_deleted=True)
    host = state.host_of(meeting)
    if host.account_id != caller.account_id:
        raise meeting_not_found(ref)
    return meeting, state.report_instance(meeting, ref)


def _participants_page(request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
    size, offset = _page_params(request, 30, 300)
    return {
        "page_count": page(len(rows), size),
        "page_size": size,
        "total_records": len(rows),
        "next_page_token": _next_token(offset, size, len(rows)),
        "participants": rows[offset : offset + size],
    }


@router.get("/v2/report/meetings/{meeting_ref:path}/participants")
async def participants_report(
    meeting_ref: str, request: Request, caller: UserDep, state: StateDep
) -> Any:
    """The stays of one instance: the latest one for a meeting id, the one a UUID names.
    Finished stays only, waiting-room stays included (``status``), ``duration`` in seconds."""
    _paid(caller)
    if not caller.can_read_reports:
        raise ZoomAPIError(
            400, 4711, "Invalid access token, does not contain scopes:[report:read:admin]."
        )
    ref = meeting_ref_from_path(meeting_ref)
    _, instance = _held(state, caller, ref)
    if instance is None:
        raise meeting_not_found(ref)
    fields = request.query_params.get("include_fields", "").split(",")
    with_registrant_id = "registrant_id" in fields
    rows = [s.report_row(with_registrant_id=with_registrant_id) for s in state.finished(instance)]
    return _participants_page(request, rows)


@router.get("/v2/past_meetings/{meeting_ref:path}/participants")
async def past_meeting_participants(
    meeting_ref: str, request: Request, caller: UserDep, state: StateDep
) -> Any:
    """Like the report, for an instance that has ended (the latest ended one for an id)."""
    _paid(caller)
    ref = meeting_ref_from_path(meeting_ref)
    meeting, instance = _held(state, caller, ref)
    if ref.isdigit():
        ended = [i for i in meeting.instances if i.ended_at is not None]
        instance = ended[-1] if ended else None
    if instance is None or instance.ended_at is None:
        raise meeting_not_found(ref)
    return _participants_page(request, [s.past_row() for s in state.finished(instance)])


@router.get("/v2/past_meetings/{meeting_ref}/instances")
async def past_meeting_instances(meeting_ref: str, caller: UserDep, state: StateDep) -> Any:
    """The ended instances of a meeting: ``{"meetings": [{"uuid", "start_time"}]}``."""
    meeting, _ = _held(state, caller, meeting_ref)
    return {
        "meetings": [
            {"uuid": i.uuid, "start_time": fmt_time(i.started_at)}
            for i in meeting.instances
            if i.ended_at is not None
        ]
    }


@router.get("/v2/meetings/{meeting_ref:path}/recordings")
async def meeting_recordings(
    meeting_ref: str, caller: UserDep, state: StateDep, settings: SettingsDep
) -> Any:
    """The cloud recording of the latest recorded instance (or of the instance a UUID names)."""
    ref = meeting_ref_from_path(meeting_ref)
    meeting = state.find_meeting(ref, include_deleted=True)
    host = state.host_of(meeting)
    recording = state.recording_of(meeting, ref)
    if host.account_id != caller.account_id or recording is None:
        raise ZoomAPIError(404, 3301, "This recording does not exist.")
    return recording_object(meeting, host, recording, settings.recording_url)


# ---- pages behind the links the API hands out ------------------------------------------------


@router.get("/j/{meeting_id}", include_in_schema=False)
async def join_page(meeting_id: str) -> HTMLResponse:
    return HTMLResponse(f"<h1>Zoom simulator</h1><p>Joining meeting {html.escape(meeting_id)}.</p>")


@router.get("/s/{meeting_id}", include_in_schema=False)
async def start_page(meeting_id: str, state: StateDep, zak: str = "") -> HTMLResponse:
    """The host link: works while its zak is fresh (``start_url_ttl``), like Zoom's."""
    if not meeting_id.isdigit() or not state.zak_valid(int(meeting_id), zak):
        return HTMLResponse(
            "<h1>Zoom simulator</h1><p>This start link has expired or is not valid.</p>",
            status_code=401,
        )
    return HTMLResponse(
        f"<h1>Zoom simulator</h1><p>Starting meeting {html.escape(meeting_id)}.</p>"
    )


@router.get("/rec/play/{token}", include_in_schema=False)
async def play_recording(token: str, state: StateDep) -> Response:
    found = state.recording_file(token)
    if found is None or found[1].status != "completed":  # in the trash, or deleted
        return PlainTextResponse("Recording not found", status_code=404)
    recording, item = found
    return HTMLResponse(
        f"<h1>Zoom simulator</h1><p>{html.escape(item.recording_type)} of meeting "
        f"{recording.meeting_id}.</p>"
    )


_DOWNLOADS = {
    "MP4": (b"\x00\x00\x00\x18ftypmp42zoom-sim", "video/mp4"),
    "M4A": (b"\x00\x00\x00\x18ftypM4A zoom-sim", "audio/mp4"),
    "CHAT": (b"09:00:00 From Host to Everyone:\n\tWelcome (zoom-sim)\n", "text/plain"),
}


@router.get("/rec/download/{token}", include_in_schema=False)
async def download_recording(token: str, state: StateDep) -> Response:
    found = state.recording_file(token)
    if found is None or found[1].status != "completed":  # in the trash, or deleted
        return PlainTextResponse("Recording not found", status_code=404)
    content, media_type = _DOWNLOADS.get(found[1].file_type, _DOWNLOADS["MP4"])
    return Response(content, media_type=media_type)
