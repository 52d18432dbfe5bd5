"""In-memory state of the simulator: users, OAuth grants, meetings and their instances,
participants' stays, registrants, recordings, daily quotas, faults, call log, deliveries.

A meeting is held in instances (:class:`Instance`), each with its own uuid; an instance holds
the stays (:class:`ParticipantSession`) of the people in it or in its waiting room, numbered
per instance from 16778240 as Zoom does.

Every method here is synchronous and never awaits, so each call is atomic on the event loop.
``SimState.lock`` serialises the control operations that change state and build their webhooks,
so deliveries are *started* in the order the changes happened; they then run on their own
(see :mod:`zoom_sim.webhooks`), so they may arrive in another order.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import random
import secrets
import string
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zoom_sim.errors import OAuthError, meeting_not_found
from zoom_sim.settings import ServerToServerApp, Settings

Clock = Callable[[], datetime]

#: Zoom: "The OAuth code expires in 5 minutes" (developers.zoom.us/docs/rooms/za/za-digi-sign-oauth)
AUTH_CODE_TTL = timedelta(minutes=5)
DEFAULT_SCOPE = (
    "meeting:read:admin meeting:write:admin user:read:admin report:read:admin recording:read:admin"
)
ROLE_IDS = {"Owner": "0", "Admin": "1", "Member": "2"}

DEFAULT_MEETING_SETTINGS: dict[str, Any] = {
    "host_video": False,
    "participant_video": False,
    "cn_meeting": False,
    "in_meeting": False,
    "join_before_host": False,
    "jbh_time": 0,
    "mute_upon_entry": False,
    "watermark": False,
    "use_pmi": False,
    "approval_type": 2,
    "audio": "voip",
    "auto_recording": "none",
    "enforce_login": False,
    "enforce_login_domains": "",
    "alternative_hosts": "",
    "waiting_room": False,
    "meeting_authentication": False,
    "registrants_confirmation_email": True,
    "registrants_email_notification": True,
    "email_notification": True,
    "host_save_video_order": False,
    "encryption_type": "enhanced_encryption",
    "continuous_meeting_chat": {"enable": False},
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def fmt_time(value: datetime) -> str:
    """Zoom's time format: UTC, second precision, ``Z`` suffix."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_utc_midnight(now: datetime) -> datetime:
    """When Zoom's daily limits reset: 00:00 UTC of the next day."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_time(value: str, timezone: str | None = None) -> datetime:
    """Parse an ISO 8601 time. A time without offset is local time in ``timezone`` (as Zoom)."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(timezone))
    return parsed.astimezone(UTC)


def zoom_id(seed: str) -> str:
    """A stable 22-character Zoom-style id derived from ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().replace("-", "A").replace("_", "B")[:22]


def _zoom_token(size: int) -> str:
    """A random Zoom-style id: base64url of ``size`` bytes, without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(size)).decode().rstrip("=")


def new_uuid() -> str:
    """A Zoom-style meeting UUID (base64 of 16 random bytes)."""
    return base64.b64encode(secrets.token_bytes(16)).decode()


def _link_token() -> str:
    """The opaque token of a Zoom recording link (two base64url parts joined by a dot)."""
    return f"{secrets.token_urlsafe(60)}.{secrets.token_urlsafe(12)}"


def _file_id() -> str:
    """A recording file id, as Zoom's: a UUID."""
    return str(uuid_module.uuid4())


def _random_password(length: int = 6) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class User:
    id: str
    email: str
    first_name: str
    last_name: str
    type: int
    role_name: str
    account_id: str
    created_at: datetime
    timezone: str = "UTC"
    pmi: int = 0

    def to_zoom(self, public_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "display_name": f"{self.first_name} {self.last_name}".strip(),
            "email": self.email,
            "type": self.type,
            "role_name": self.role_name,
            "role_id": ROLE_IDS.get(self.role_name, "2"),
            "pmi": self.pmi,
            "use_pmi": False,
            "personal_meeting_url": f"{public_url}/j/{self.pmi}",
            "timezone": self.timezone,
            "verified": 1,
            "dept": "",
            "created_at": fmt_time(self.created_at),
            "user_created_at": fmt_time(self.created_at),
            "last_login_time": fmt_time(self.created_at),
            "last_client_version": "",
            "pic_url": "",
            "language": "en-US",
            "phone_number": "",
            "status": "active",
            "account_id": self.account_id,
            "account_number": int(hashlib.sha256(self.account_id.encode()).hexdigest()[:8], 16),
            "cluster": "us05",
        }

    @property
    def can_read_reports(self) -> bool:
        return self.type != 1 and self.role_name in ("Owner", "Admin")


@dataclass
class Meeting:
    id: int
    uuid: str
    host_id: str
    topic: str
    type: int
    start_time: datetime | None
    duration: int
    timezone: str
    agenda: str
    password: str
    encrypted_password: str
    zak: str
    settings: dict[str, Any]
    created_at: datetime
    deleted: bool = False
    deleted_at: datetime | None = None
    #: deleted for good out of the trash: no API call, nor a recovery, finds it any more
    purged: bool = False
    #: every time the meeting was held, oldest first; the last one may still be live
    instances: list[Instance] = field(default_factory=list)
    #: default names given to guests who join without one ("Guest 1", "Guest 2", ...)
    guest_seq: int = 0

    @property
    def live(self) -> Instance | None:
        """The instance being held now, if any."""
        if self.instances and self.instances[-1].ended_at is None:
            return self.instances[-1]
        return None

    @property
    def latest(self) -> Instance | None:
        """The instance held last (live or ended): what Zoom's APIs mean by a meeting id."""
        return self.instances[-1] if self.instances else None

    @property
    def status(self) -> str:
        return "started" if self.live is not None else "waiting"

    def instance(self, uuid: str) -> Instance | None:
        return next((i for i in self.instances if i.uuid == uuid), None)


#: Zoom numbers the participants of each meeting instance from 16778240 (1024 apart), so the
#: same ``user_id`` names different people in different instances of one meeting.
FIRST_USER_ID = 16778240
USER_ID_STEP = 1024

IN_MEETING = "in_meeting"
IN_WAITING_ROOM = "in_waiting_room"


@dataclass
class ParticipantSession:
    """One stay of one person in one meeting instance: in the meeting, or in its waiting room
    (``status``). A rejoin is a new stay, with a new ``user_id``."""

    meeting_id: int
    instance_uuid: str
    email: str  # "" for someone not signed in who gave none (a guest)
    name: str
    zoom_user_id: str  # the participant's Zoom user id ("" unless signed in)
    participant_uuid: str  # stable for the person across stays
    user_id: str  # Zoom's per-instance participant number, as a string
    join_time: datetime
    registrant_id: str = ""
    status: str = IN_MEETING
    leave_time: datetime | None = None
    leave_reason: str = ""

    @property
    def duration_s(self) -> int:
        if self.leave_time is None:
            return 0
        return max(0, int((self.leave_time - self.join_time).total_seconds()))

    @property
    def open(self) -> bool:
        return self.leave_time is None

    def report_row(self, *, with_registrant_id: bool = False) -> dict[str, Any]:
        """A row of ``GET /report/meetings/{id}/participants`` (``registrant_id`` only when
        asked with ``include_fields=registrant_id``, as Zoom documents)."""
        assert self.leave_time is not None
        row: dict[str, Any] = {
            "id": self.zoom_user_id,
            "user_id": self.user_id,
            "name": self.name,
            "user_email": self.email,
            "join_time": fmt_time(self.join_time),
            "leave_time": fmt_time(self.leave_time),
            "duration": self.duration_s,
            "failover": False,
            "status": self.status,
            "customer_key": "",
            "participant_user_id": self.zoom_user_id,
        }
        if with_registrant_id:
            row["registrant_id"] = self.registrant_id
        return row

    def past_row(self) -> dict[str, Any]:
        """A row of ``GET /past_meetings/{id}/participants``."""
        assert self.leave_time is not None
        return {
            "id": self.zoom_user_id,
            "name": self.name,
            "user_id": self.user_id,
            "registrant_id": self.registrant_id,
            "user_email": self.email,
            "join_time": fmt_time(self.join_time),
            "leave_time": fmt_time(self.leave_time),
            "duration": self.duration_s,
            "failover": False,
            "status": self.status,
            "internal_user": bool(self.zoom_user_id),
        }

    def to_json(self) -> dict[str, Any]:
        """How the control endpoints show the stay."""
        return {
            "email": self.email,
            "name": self.name,
            "id": self.zoom_user_id,
            "user_id": self.user_id,
            "participant_uuid": self.participant_uuid,
            "registrant_id": self.registrant_id,
            "uuid": self.instance_uuid,
            "status": self.status,
            "join_time": fmt_time(self.join_time),
            "leave_time": fmt_time(self.leave_time) if self.leave_time else None,
            "duration": self.duration_s,
        }


@dataclass
class Instance:
    """One holding of a meeting, from its start to its end, with its own ``uuid``."""

    uuid: str
    meeting_id: int
    started_at: datetime
    ended_at: datetime | None = None
    sessions: list[ParticipantSession] = field(default_factory=list)
    next_user_id: int = FIRST_USER_ID
    #: stays in the instance's breakout rooms (``meeting.participant_*_breakout_room``); not
    #: in the participants report, which the simulator keeps to the main room
    breakout_stays: list[BreakoutStay] = field(default_factory=list)

    def new_user_id(self) -> str:
        value = self.next_user_id
        self.next_user_id += USER_ID_STEP
        return str(value)

    def open_stay(
        self, *, user_id: str | None = None, email: str | None = None, person: str | None = None
    ) -> ParticipantSession | None:
        for stay in self.sessions:
            if not stay.open:
                continue
            if user_id is not None and stay.user_id == user_id:
                return stay
            if email and stay.email.lower() == email.strip().lower():
                return stay
            if person is not None and stay.participant_uuid == person:
                return stay
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "start_time": fmt_time(self.started_at),
            "end_time": fmt_time(self.ended_at) if self.ended_at else None,
        }


@dataclass
class BreakoutStay:
    """One stay of a participant in one of an instance's breakout rooms: a ``user_id`` of its
    own, numbered as the instance's, and ``parent`` the main-room stay they came from (its
    ``user_id`` is the events' ``parent_user_id``)."""

    room_uuid: str
    parent: ParticipantSession
    user_id: str
    join_time: datetime
    leave_time: datetime | None = None
    leave_reason: str = ""

    @property
    def open(self) -> bool:
        return self.leave_time is None


def breakout_room_uuid(instance_uuid: str, room: str) -> str:
    """A breakout room's uuid, the same for the same room name within an instance."""
    digest = hashlib.sha256(f"breakout:{instance_uuid}:{room}".encode()).digest()
    return base64.b64encode(digest[:16]).decode()


REGISTRANT_STATUSES = ("approved", "pending", "denied", "cancelled")


@dataclass
class Registrant:
    """Someone registered for a meeting; ``token`` is the ``tk`` of their personal join link."""

    id: str
    meeting_id: int
    email: str
    first_name: str
    last_name: str
    status: str  # one of REGISTRANT_STATUSES
    token: str
    create_time: datetime

    def join_url(self, public_url: str) -> str:
        return f"{public_url}/j/{self.meeting_id}?tk={self.token}"

    def to_zoom(self, public_url: str) -> dict[str, Any]:
        """A registrant as ``GET /meetings/{id}/registrants`` lists it."""
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "address": "",
            "city": "",
            "country": "",
            "zip": "",
            "state": "",
            "phone": "",
            "industry": "",
            "org": "",
            "job_title": "",
            "purchasing_time_frame": "",
            "role_in_purchase_process": "",
            "no_of_employees": "",
            "comments": "",
            "custom_questions": [],
            "status": self.status,
            "create_time": fmt_time(self.create_time),
            "join_url": self.join_url(public_url),
        }


@dataclass
class RecordingFile:
    id: str
    recording_start: datetime
    recording_end: datetime
    file_size: int
    file_type: str = "MP4"
    file_extension: str = "MP4"
    recording_type: str = "shared_screen_with_speaker_view"
    #: the opaque part of its play and download links (``/rec/play/<token>``)
    token: str = field(default_factory=lambda: _link_token())
    #: ``completed``, or ``trashed`` while in the trash (its links then answer 404); a file
    #: deleted for good is no longer listed
    status: str = "completed"


@dataclass
class Recording:
    meeting_id: int
    meeting_uuid: str  # the instance recorded
    start: datetime
    end: datetime
    files: list[RecordingFile]
    password: str
    download_token: str
    share_id: str
    play_passcode: str = ""


@dataclass
class AuthCode:
    user_id: str
    redirect_uri: str
    expires_at: datetime
    code_challenge: str | None
    code_challenge_method: str | None


@dataclass
class AccessGrant:
    user_id: str
    account_id: str
    expires_at: datetime
    scope: str


@dataclass
class RefreshGrant:
    user_id: str
    scope: str


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: str


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` API calls that match it."""

    status: int | None
    remaining: int
    delay_ms: int
    retry_after: int | None
    method: str | None
    path_prefix: str | None
    #: how Retry-After is written: ``seconds`` (``Retry-After: 2``), ``http-date`` (RFC 9110) or
    #: ``iso`` (Zoom's daily-limit form, ``Retry-After: 2020-05-31T00:00:00Z``)
    retry_after_format: str = "seconds"
    #: a 429's ``X-RateLimit-Type``: ``QPS`` (per second) or ``Daily-limit``
    rate_limit_type: str | None = None
    #: the body's Zoom ``code`` (default: the status) and ``message`` (default: Zoom's for it)
    zoom_code: int | None = None
    message: str | None = None
    #: do the call, then lose its answer: the connection drops (or ``status`` is answered)
    drop_after_commit: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "remaining": self.remaining,
            "delay_ms": self.delay_ms,
            "retry_after": self.retry_after,
            "retry_after_format": self.retry_after_format,
            "rate_limit_type": self.rate_limit_type,
            "zoom_code": self.zoom_code,
            "message": self.message,
            "drop_after_commit": self.drop_after_commit,
            "method": self.method,
            "path_prefix": self.path_prefix,
        }


@dataclass
class CallRecord:
    method: str
    path: str
    status: int  # what the caller was answered (for a dropped answer: what it would have been)
    at: datetime
    faulted: bool
    dropped: bool = False  # the work was done, the answer lost (drop_after_commit)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "at": self.at.isoformat(),
            "faulted": self.faulted,
            "dropped": self.dropped,
        }


@dataclass
class DeliveryAttempt:
    """One POST of a notification to the webhook URL and what came of it."""

    number: int  # 1 for the first attempt, 2-4 for Zoom's three retries
    at: datetime
    url: str
    status: int | None
    error: str | None
    response: Any
    elapsed_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "at": self.at.isoformat(),
            "url": self.url,
            "status": self.status,
            "error": self.error,
            "response": self.response,
            "elapsed_ms": self.elapsed_ms,
        }


@dataclass
class Delivery:
    """One notification and its attempts (the first one and Zoom's retries).

    ``state``: ``scheduled`` (held back, see ``delay_ms``), ``sending``, ``retrying`` (a retry
    is due at ``next_attempt_at``), ``delivered``, ``failed`` (every attempt failed) or
    ``cancelled`` (the simulator was reset or stopped first)."""

    id: int
    event: str
    body: dict[str, Any]
    raw: bytes
    at: datetime
    retry: bool = True
    url: str = ""
    timestamp: str = ""
    signature: str = ""
    state: str = "scheduled"
    next_attempt_at: datetime | None = None
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    first_attempt_done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def last(self) -> DeliveryAttempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def status(self) -> int | None:
        return self.last.status if self.last else None

    @property
    def error(self) -> str | None:
        return self.last.error if self.last else None

    @property
    def response(self) -> Any:
        return self.last.response if self.last else None

    def to_json(self, *, with_body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "event": self.event,
            "status": self.status,
            "error": self.error,
            "response": self.response,
            "at": self.at.isoformat(),
            "state": self.state,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "attempts": [a.to_json() for a in self.attempts],
        }
        if with_body:
            out["url"] = self.url
            out["body"] = self.body
            out["headers"] = {
                "x-zm-request-timestamp": self.timestamp,
                "x-zm-signature": self.signature,
            }
        return out


class SimConflictError(Exception):
    """A control request that does not fit the meeting's state (answered 409)."""


@dataclass
class SimState:
    settings: Settings
    clock: Clock = utcnow
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: dict[str, User] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    access_tokens: dict[str, AccessGrant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)
    meetings: dict[int, Meeting] = field(default_factory=dict)
    #: registrants by registrant id
    registrants: dict[str, Registrant] = field(default_factory=dict)
    #: cloud recordings by the uuid of the instance recorded
    recordings: dict[str, Recording] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    s2s_apps: dict[str, ServerToServerApp] = field(default_factory=dict)
    #: meeting creates and updates per (user id, "create" | "update", UTC day)
    daily_counts: dict[tuple[str, str, date], int] = field(default_factory=dict)
    #: zak of each start_url handed out: (meeting id, issued at)
    zaks: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    webhook_url: str = ""
    webhook_secret: str = ""
    delivery_seq: int = 0

    def __post_init__(self) -> None:
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------------

    def reset(self) -> None:
        self.users.clear()
        self.codes.clear()
        self.access_tokens.clear()
        self.refresh_tokens.clear()
        self.meetings.clear()
        self.registrants.clear()
        self.recordings.clear()
        self.faults.clear()
        self.calls.clear()
        self.deliveries.clear()
        self.delivery_seq = 0
        self.zaks.clear()
        self.daily_counts.clear()
        self.s2s_apps = {}
        self.webhook_url = self.settings.webhook_url
        self.webhook_secret = self.settings.webhook_secret.get_secret_value()
        self.upsert_user(
            self.settings.user_email,
            account_id=self.settings.account_id,
            type_=self.settings.user_type,
            role_name=self.settings.user_role_name,
        )
        for app in self.settings.s2s_apps:
            self.add_s2s_app(app)

    def now(self) -> datetime:
        return self.clock()

    # ---- users -----------------------------------------------------------------------------

    @property
    def default_user(self) -> User:
        return self.user_by_email(self.settings.user_email) or next(iter(self.users.values()))

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    def upsert_user(
        self,
        email: str,
        *,
        account_id: str | None = None,
        type_: int | None = None,
        role_name: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> User:
        user = self.user_by_email(email)
        if user is None:
            local = email.split("@", 1)[0]
            user = User(
                id=zoom_id(f"user:{email.lower()}"),
                email=email,
                first_name=first_name or local.capitalize(),
                last_name=last_name or "Host",
                type=2 if type_ is None else type_,
                role_name=role_name or "Owner",
                account_id=account_id or zoom_id(f"account:{email.lower()}"),
                created_at=self.now(),
                pmi=int(hashlib.sha256(email.lower().encode()).hexdigest()[:9], 16) % 9_000_000_000
                + 1_000_000_000,
            )
            self.users[user.id] = user
            return user
        if account_id is not None:
            user.account_id = account_id
        if type_ is not None:
            user.type = type_
        if role_name is not None:
            user.role_name = role_name
        if first_name is not None:
            user.first_name = first_name
        if last_name is not None:
            user.last_name = last_name
        return user

    def resolve_user(self, ref: str, caller: User) -> User | None:
        """``me``, a user id or an email; only users of the caller's account are visible."""
        if ref == "me":
            return caller
        user = self.users.get(ref) or self.user_by_email(ref)
        if user is None or user.account_id != caller.account_id:
            return None
        return user

    # ---- OAuth -----------------------------------------------------------------------------

    def issue_code(
        self,
        user: User,
        redirect_uri: str,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthCode(
            user_id=user.id,
            redirect_uri=redirect_uri,
            expires_at=self.now() + AUTH_CODE_TTL,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
        )
        return code

    def _mint(self, user: User, scope: str, *, with_refresh: bool) -> TokenPair:
        ttl = self.settings.token_ttl
        access = secrets.token_urlsafe(48)
        self.access_tokens[access] = AccessGrant(
            user_id=user.id,
            account_id=user.account_id,
            expires_at=self.now() + timedelta(seconds=ttl),
            scope=scope,
        )
        refresh: str | None = None
        if with_refresh:
            refresh = secrets.token_urlsafe(48)
            self.refresh_tokens[refresh] = RefreshGrant(user_id=user.id, scope=scope)
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl, scope=scope)

    def exchange_code(self, code: str, redirect_uri: str | None, verifier: str | None) -> TokenPair:
        grant = self.codes.pop(code, None)  # codes are single-use, even when the exchange fails
        if grant is None or grant.expires_at <= self.now():
            raise OAuthError(400, "invalid_grant", "Invalid authorization code")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError(400, "invalid_request", "Redirect URI mismatch.")
        if grant.code_challenge is not None:
            if not verifier:
                raise OAuthError(400, "invalid_request", "Missing code_verifier.")
            if grant.code_challenge_method == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            else:
                computed = verifier
            if not secrets.compare_digest(computed, grant.code_challenge):
                raise OAuthError(400, "invalid_grant", "Invalid code_verifier.")
        user = self.users.get(grant.user_id)
        if user is None:
            raise OAuthError(400, "invalid_grant", "Invalid authorization code")
        return self._mint(user, DEFAULT_SCOPE, with_refresh=True)

    def refresh(self, refresh_token: str) -> TokenPair:
        grant = self.refresh_tokens.pop(refresh_token, None)  # rotation: the old one is now dead
        user = self.users.get(grant.user_id) if grant else None
        if grant is None or user is None:
            raise OAuthError(400, "invalid_grant", "Invalid Token!")
        return self._mint(user, grant.scope, with_refresh=True)

    def account_credentials(self, account_id: str, client_id: str | None = None) -> TokenPair:
        """An account token. A Server-to-Server app (``client_id``) only gets its own account's."""
        app = self.s2s_apps.get(client_id or "")
        if app is not None and app.account_id != account_id:
            raise OAuthError(400, "invalid_request", "Invalid account_id.")
        owners = [u for u in self.users.values() if u.account_id == account_id]
        if not owners:
            raise OAuthError(400, "invalid_request", "Bad Request")
        owners.sort(key=lambda u: ROLE_IDS.get(u.role_name, "9"))
        return self._mint(owners[0], DEFAULT_SCOPE, with_refresh=False)

    def authenticate(self, access_token: str) -> tuple[User | None, bool]:
        """Return ``(user, expired)`` for a bearer token."""
        grant = self.access_tokens.get(access_token)
        if grant is None:
            return None, False
        if grant.expires_at <= self.now():
            return None, True
        return self.users.get(grant.user_id), False

    def revoke(self, token: str) -> bool:
        found = self.access_tokens.pop(token, None) is not None
        return self.refresh_tokens.pop(token, None) is not None or found

    def expire_access_tokens(self, *, include_refresh: bool = False) -> tuple[int, int]:
        moment = self.now() - timedelta(seconds=1)
        expired = 0
        for grant in self.access_tokens.values():
            if grant.expires_at > moment:
                grant.expires_at = moment
                expired += 1
        revoked = 0
        if include_refresh:
            revoked = len(self.refresh_tokens)
            self.refresh_tokens.clear()
        return expired, revoked

    def revoke_user(self, user_id: str) -> None:
        for token in [t for t, g in self.access_tokens.items() if g.user_id == user_id]:
            del self.access_tokens[token]
        for token in [t for t, g in self.refresh_tokens.items() if g.user_id == user_id]:
            del self.refresh_tokens[token]

    # ---- meetings --------------------------------------------------------------------------

    def _new_meeting_id(self) -> int:
        while True:
            candidate = random.randint(80_000_000_000, 89_999_999_999)
            if candidate not in self.meetings:
                return candidate

    def create_meeting(
        self,
        host: User,
        *,
        topic: str,
        type_: int,
        start_time: datetime | None,
        duration: int,
        timezone: str | None,
        agenda: str,
        password: str | None,
        settings: dict[str, Any],
    ) -> Meeting:
        merged = {**DEFAULT_MEETING_SETTINGS, **settings}
        meeting = Meeting(
            id=self._new_meeting_id(),
            uuid=new_uuid(),
            host_id=host.id,
            topic=topic,
            type=type_,
            start_time=start_time if start_time is not None else self.now().replace(microsecond=0),
            duration=duration,
            timezone=timezone or host.timezone,
            agenda=agenda,
            password=password if password is not None else _random_password(),
            encrypted_password=secrets.token_urlsafe(24),
            zak=secrets.token_urlsafe(32),
            settings=merged,
            created_at=self.now().replace(microsecond=0),
        )
        self.meetings[meeting.id] = meeting
        self.zaks[meeting.zak] = (meeting.id, meeting.created_at)
        return meeting

    def issue_zak(self, meeting: Meeting) -> str:
        """A new host key for the meeting's start_url; it is valid for ``start_url_ttl``."""
        zak = secrets.token_urlsafe(32)
        self.zaks[zak] = (meeting.id, self.now())
        return zak

    def zak_valid(self, meeting_id: int, zak: str) -> bool:
        issued = self.zaks.get(zak)
        if issued is None or issued[0] != meeting_id:
            return False
        return self.now() - issued[1] < timedelta(seconds=self.settings.start_url_ttl)

    # ---- Server-to-Server apps and webhook secrets -------------------------------------------

    def add_s2s_app(self, app: ServerToServerApp) -> None:
        """Register an app; its account gets an owner when it has no user yet."""
        self.s2s_apps[app.client_id] = app
        if not any(u.account_id == app.account_id for u in self.users.values()):
            owner = f"owner-{app.account_id.lower()}@zoom-sim.local"
            self.upsert_user(owner, account_id=app.account_id)

    def s2s_client_ok(self, client_id: str, client_secret: str) -> bool:
        app = self.s2s_apps.get(client_id)
        return app is not None and secrets.compare_digest(
            client_secret.encode(), app.client_secret.get_secret_value().encode()
        )

    def webhook_secret_for(self, account_id: str | None) -> str:
        """The secret token signing a notification about ``account_id``: its Server-to-Server
        app's when that app has one, else the (OAuth) app's."""
        for app in self.s2s_apps.values():
            if account_id and app.account_id == account_id and app.webhook_secret is not None:
                return app.webhook_secret.get_secret_value()
        return self.webhook_secret

    def find_meeting(self, ref: str | int, *, include_deleted: bool = False) -> Meeting:
        """A meeting by numeric id or UUID; raises a Zoom 404 (code 3001) otherwise."""
        meeting: Meeting | None = None
        text = str(ref).strip()
        if text.isdigit():
            meeting = self.meetings.get(int(text))
        else:
            meeting = next(
                (
                    m
                    for m in self.meetings.values()
                    if m.uuid == text or m.instance(text) is not None
                ),
                None,
            )
        if meeting is None or meeting.purged or (meeting.deleted and not include_deleted):
            raise meeting_not_found(ref)
        return meeting

    def meeting_for(self, ref: str, caller: User) -> Meeting:
        meeting = self.find_meeting(ref)
        host = self.users.get(meeting.host_id)
        if host is None or host.account_id != caller.account_id:
            raise meeting_not_found(ref)
        return meeting

    def delete_meeting(self, meeting: Meeting) -> None:
        meeting.deleted = True
        meeting.deleted_at = self.now()

    def purge_meeting(self, meeting: Meeting) -> None:
        """Out of the trash for good (its host's "Delete permanently", or Zoom after 7 days)."""
        meeting.purged = True

    def recover_meeting(self, meeting: Meeting) -> None:
        """Out of the trash: the API answers for it again, with its links and registrants."""
        meeting.deleted = False
        meeting.deleted_at = None

    def daily_quota(self, user: User, kind: str) -> tuple[str, str, date] | None:
        """The key of ``user``'s count of ``kind`` ("create" or "update") today, or None when
        the day's quota (``meeting_daily_limit``) is used up."""
        key = (user.id, kind, self.now().astimezone(UTC).date())
        if self.daily_counts.get(key, 0) >= self.settings.meeting_daily_limit:
            return None
        return key

    def spend(self, key: tuple[str, str, date]) -> None:
        self.daily_counts[key] = self.daily_counts.get(key, 0) + 1

    def host_of(self, meeting: Meeting) -> User:
        return self.users.get(meeting.host_id) or self.default_user

    # ---- registrants -----------------------------------------------------------------------

    def registrants_of(self, meeting: Meeting) -> list[Registrant]:
        found = [r for r in self.registrants.values() if r.meeting_id == meeting.id]
        return sorted(found, key=lambda r: r.create_time)  # stable: in the order added

    def register(
        self,
        meeting: Meeting,
        *,
        email: str,
        first_name: str,
        last_name: str,
        approved: bool,
    ) -> Registrant:
        """Register ``email`` (registering the same email again gives the same registration,
        unless it was denied or cancelled)."""
        for existing in self.registrants_of(meeting):
            if existing.email.lower() == email.lower() and existing.status in (
                "approved",
                "pending",
            ):
                return existing
        registrant = Registrant(
            id=_zoom_token(16),
            meeting_id=meeting.id,
            email=email,
            first_name=first_name,
            last_name=last_name,
            status="approved" if approved else "pending",
            token=secrets.token_urlsafe(48),
            create_time=self.now().replace(microsecond=0),
        )
        self.registrants[registrant.id] = registrant
        return registrant

    def registrant_by_token(self, meeting: Meeting, token: str) -> Registrant | None:
        return next(
            (r for r in self.registrants_of(meeting) if secrets.compare_digest(r.token, token)),
            None,
        )

    # ---- attendance ------------------------------------------------------------------------

    def start_instance(self, meeting: Meeting, at: datetime, uuid: str | None = None) -> Instance:
        """Hold the meeting now: a new instance, with the uuid the meeting shows (or ``uuid``)."""
        if meeting.live is not None:
            raise SimConflictError(f"meeting {meeting.id} is already being held")
        instance = Instance(uuid=uuid or meeting.uuid, meeting_id=meeting.id, started_at=at)
        meeting.uuid = instance.uuid
        meeting.instances.append(instance)
        return instance

    def join(
        self,
        meeting: Meeting,
        *,
        email: str,
        name: str | None,
        at: datetime,
        signed_in: bool,
        waiting_room: bool = False,
        instance_uuid: str | None = None,
        registrant: Registrant | None = None,
    ) -> ParticipantSession:
        """Someone joins (starting an instance when the meeting is not being held). Without
        an email the person is a guest; without a name a guest is "Guest N". A registrant
        (joining with their link) is known by their registration, whatever email they use."""
        email = email.strip()
        if registrant is not None:
            person = f"registrant:{registrant.id}"
            name = name or f"{registrant.first_name} {registrant.last_name}".strip()
        elif email:
            person = f"email:{email.lower()}"
            name = name or email.split("@", 1)[0]
        else:
            if not name:
                meeting.guest_seq += 1
                name = f"Guest {meeting.guest_seq}"
            person = f"guest:{name}"
        participant_uuid = zoom_id(f"participant:{meeting.id}:{person}")
        instance = meeting.live
        if instance is not None and instance.open_stay(person=participant_uuid):
            raise SimConflictError(f"{name} is already in meeting {meeting.id}")
        if instance is None:
            instance = self.start_instance(meeting, at, instance_uuid)
        session = ParticipantSession(
            meeting_id=meeting.id,
            instance_uuid=instance.uuid,
            email=email,
            name=name,
            zoom_user_id=zoom_id(f"user:{email.lower()}") if email and signed_in else "",
            participant_uuid=participant_uuid,
            user_id=instance.new_user_id(),
            join_time=at,
            registrant_id=registrant.id if registrant is not None else "",
            status=IN_WAITING_ROOM if waiting_room else IN_MEETING,
        )
        instance.sessions.append(session)
        return session

    def find_stay(
        self, meeting: Meeting, *, user_id: str | None = None, email: str | None = None
    ) -> ParticipantSession:
        instance = meeting.live
        stay = instance.open_stay(user_id=user_id, email=email) if instance else None
        if stay is None:
            who = user_id if user_id is not None else email
            raise SimConflictError(f"{who} is not in meeting {meeting.id}")
        return stay

    def leave(
        self,
        meeting: Meeting,
        *,
        at: datetime,
        reason: str,
        user_id: str | None = None,
        email: str | None = None,
    ) -> ParticipantSession:
        """The stay (in the meeting or its waiting room) of ``user_id`` or ``email`` ends."""
        session = self.find_stay(meeting, user_id=user_id, email=email)
        if at < session.join_time:
            raise SimConflictError("leave time is before the join time")
        session.leave_time = at
        session.leave_reason = reason
        return session

    def join_breakout_room(
        self, meeting: Meeting, *, user_id: str, room: str, at: datetime
    ) -> BreakoutStay:
        """The participant whose main-room stay is ``user_id`` goes into breakout room
        ``room`` (their main-room stay may have ended already, or not: the simulator sends
        what the caller asks for, see ``/_sim/meetings/{id}/breakout``)."""
        instance = meeting.live
        parent = None
        if instance is not None:
            parent = next((s for s in reversed(instance.sessions) if s.user_id == user_id), None)
        if instance is None or parent is None or parent.status != IN_MEETING:
            raise SimConflictError(f"{user_id} has no stay in meeting {meeting.id}")
        if any(b.open and b.parent is parent for b in instance.breakout_stays):
            raise SimConflictError(f"{user_id} is in a breakout room already")
        if at < parent.join_time:
            raise SimConflictError("breakout join time is before the meeting join time")
        stay = BreakoutStay(
            room_uuid=breakout_room_uuid(instance.uuid, room),
            parent=parent,
            user_id=instance.new_user_id(),
            join_time=at,
        )
        instance.breakout_stays.append(stay)
        return stay

    def leave_breakout_room(
        self, meeting: Meeting, *, user_id: str, at: datetime, reason: str
    ) -> BreakoutStay:
        """The breakout-room stay of the participant whose main-room stay is ``user_id`` ends."""
        instance = meeting.live
        stay = None
        if instance is not None:
            stay = next(
                (b for b in instance.breakout_stays if b.open and b.parent.user_id == user_id),
                None,
            )
        if stay is None:
            raise SimConflictError(f"{user_id} is in no breakout room of meeting {meeting.id}")
        if at < stay.join_time:
            raise SimConflictError("leave time is before the breakout join time")
        stay.leave_time = at
        stay.leave_reason = reason
        return stay

    def admit(
        self, meeting: Meeting, *, user_id: str, at: datetime
    ) -> tuple[ParticipantSession, ParticipantSession]:
        """The host admits someone from the waiting room: that stay ends and a stay in the
        meeting begins at ``at``, with the same ``user_id``. Returns (waiting, admitted)."""
        waiting = self.find_stay(meeting, user_id=user_id)
        if waiting.status != IN_WAITING_ROOM:
            raise SimConflictError(f"{user_id} is not in the waiting room of {meeting.id}")
        if at < waiting.join_time:
            raise SimConflictError("admit time is before the waiting room join time")
        waiting.leave_time = at
        waiting.leave_reason = "admitted by the host"
        admitted = replace(
            waiting,
            status=IN_MEETING,
            join_time=at,
            leave_time=None,
            leave_reason="",
        )
        assert meeting.live is not None
        meeting.live.sessions.append(admitted)
        return waiting, admitted

    def end(self, meeting: Meeting, at: datetime) -> tuple[Instance, list[ParticipantSession]]:
        """End the meeting: everyone still in it (or its waiting room) leaves at ``at``; the
        next join holds a new instance, with a new uuid. A meeting nobody joined is started
        and ended (the host held it alone). Returns the instance and the stays in the meeting
        that it closed."""
        instance = meeting.live or self.start_instance(meeting, at)
        closed: list[ParticipantSession] = []
        for session in instance.sessions:
            if session.leave_time is None:
                session.leave_time = max(at, session.join_time)
                session.leave_reason = "left the meeting because the host ended the meeting"
                if session.status == IN_MEETING:
                    closed.append(session)
        instance.ended_at = max(at, instance.started_at)
        meeting.uuid = new_uuid()  # what the next instance will be called
        return instance, closed

    def report_instance(self, meeting: Meeting, uuid: str | None) -> Instance | None:
        """The instance a report is about: the one ``uuid`` names, else the latest."""
        if uuid is not None and not uuid.isdigit():
            return meeting.instance(uuid)
        return meeting.latest

    @staticmethod
    def finished(instance: Instance) -> list[ParticipantSession]:
        """Finished stays of an instance (Zoom's reports list only stays that ended)."""
        rows = [s for s in instance.sessions if s.leave_time is not None]
        rows.sort(key=lambda s: (s.join_time, int(s.user_id), s.status != IN_WAITING_ROOM))
        return rows

    # ---- recordings ------------------------------------------------------------------------

    def ensure_recording(self, meeting: Meeting, end: datetime | None) -> Recording:
        """The cloud recording of the latest instance (made on first use). A meeting never held
        gets one for its scheduled time, under the uuid it shows."""
        instance = meeting.latest
        uuid = instance.uuid if instance is not None else meeting.uuid
        existing = self.recordings.get(uuid)
        if existing is not None:
            return existing
        if instance is not None:
            start = instance.started_at
            stop = end or instance.ended_at or self.now()
        else:
            start = meeting.start_time or self.now()
            stop = end or (start + timedelta(minutes=max(meeting.duration, 1)))
        if stop < start:
            stop = start
        length_s = int((stop - start).total_seconds())
        recording = Recording(
            meeting_id=meeting.id,
            meeting_uuid=uuid,
            start=start,
            end=stop,
            files=[
                RecordingFile(
                    id=_file_id(),
                    recording_start=start,
                    recording_end=stop,
                    file_size=max(1, length_s) * 40_000,
                ),
                RecordingFile(
                    id=_file_id(),
                    recording_start=start,
                    recording_end=stop,
                    file_size=max(1, length_s) * 2_000,
                    file_type="M4A",
                    file_extension="M4A",
                    recording_type="audio_only",
                ),
                RecordingFile(
                    id=_file_id(),
                    recording_start=start,
                    recording_end=stop,
                    file_size=320,
                    file_type="CHAT",
                    file_extension="TXT",
                    recording_type="chat_file",
                ),
            ],
            password=_random_password(8),
            download_token=secrets.token_urlsafe(96),
            share_id=_link_token(),
            play_passcode=secrets.token_urlsafe(24),
        )
        self.recordings[uuid] = recording
        return recording

    def recording_of(self, meeting: Meeting, uuid: str | None = None) -> Recording | None:
        """The recording of the instance ``uuid`` names, else of the latest one recorded."""
        if uuid is not None and not uuid.isdigit():
            return self.recordings.get(uuid)
        mine = [r for r in self.recordings.values() if r.meeting_id == meeting.id]
        return max(mine, key=lambda r: r.start) if mine else None

    def recording_file(self, ref: str) -> tuple[Recording, RecordingFile] | None:
        """A recording file by the token of its links (or by its id)."""
        for recording in self.recordings.values():
            for item in recording.files:
                if ref in (item.token, item.id):
                    return recording, item
        return None

    # ---- faults and call log ---------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                self.faults = [f for f in self.faults if f.remaining > 0]
                return fault
        return None

    def log_call(
        self, method: str, path: str, status: int, *, faulted: bool, dropped: bool = False
    ) -> None:
        self.calls.append(CallRecord(method, path, status, self.now(), faulted, dropped))


def page(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size)) if total else 0
