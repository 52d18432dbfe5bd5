"""Zoom webhooks (R-ZOOM-4): verification, storing (duplicates absorbed), then processing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_shared.db import is_postgres, utcnow
from te_shared.errors import Unauthorized
from te_shared.logging import get_logger
from te_shared.outbox import add_message
from zoom_bridge import metrics
from zoom_bridge.accounts.service import deauthorize
from zoom_bridge.crypto import TokenCipher
from zoom_bridge.meetings import attendance, jobs
from zoom_bridge.models import (
    CompanyReplica,
    OutboxRecord,
    WebhookEvent,
    ZoomAccount,
    ZoomMeeting,
)
from zoom_bridge.settings import ZoomBridgeSettings

log = get_logger(__name__)

#: Events the bridge acts on; anything else is acknowledged and ignored.
HANDLED = frozenset(
    {
        "meeting.participant_joined",
        "meeting.participant_left",
        "meeting.ended",
        "recording.completed",
        "app_deauthorized",
    }
)
URL_VALIDATION = "endpoint.url_validation"


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt at a stored webhook (a metrics label pair)."""

    event: str
    result: str  # metrics.PROCESSED | FAILED | GIVEN_UP


def expected_signature(secret: str, timestamp: str, raw: bytes) -> str:
    message = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secrets: Sequence[str],
    raw: bytes,
    timestamp: str | None,
    signature: str | None,
    max_age: int,
) -> str:
    """Check the timestamp window and the signature against each candidate secret token
    (constant-time compares); returns the secret that signed it."""
    if not timestamp or not signature:
        raise Unauthorized("Missing Zoom signature headers.", code="bad_signature")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise Unauthorized("Bad Zoom timestamp.", code="bad_signature") from exc
    if ts > 10**11:  # milliseconds
        ts //= 1000
    if abs(time.time() - ts) > max_age:
        raise Unauthorized("Stale Zoom timestamp.", code="stale_timestamp")
    matched: str | None = None
    for secret in secrets:
        expected = expected_signature(secret, timestamp, raw)
        if hmac.compare_digest(expected.encode(), signature.encode()) and matched is None:
            matched = secret
    if matched is None:
        raise Unauthorized("Bad Zoom signature.", code="bad_signature")
    return matched


def account_of(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The (not yet trusted) body and the Zoom account it names, to pick the secret token."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    payload = body.get("payload")
    account = payload.get("account_id") if isinstance(payload, dict) else None
    return body, str(account) if isinstance(account, str) and account else None


async def secrets_for(
    session: AsyncSession, cipher: TokenCipher, default: str, zoom_account_id: str | None
) -> list[str]:
    """Candidate secret tokens: the Server-to-Server connections' own for the Zoom account the
    webhook names, then the global one (the OAuth app's). Without an account (URL
    validation), every connection's own secret is a candidate."""
    stmt = select(ZoomAccount.webhook_secret_enc).where(
        ZoomAccount.kind == "s2s", ZoomAccount.webhook_secret_enc.is_not(None)
    )
    if zoom_account_id is not None:
        stmt = stmt.where(ZoomAccount.zoom_account_id == zoom_account_id)
    found: list[str] = []
    for enc in (await session.execute(stmt)).scalars():
        try:
            found.append(cipher.decrypt(str(enc)))
        except InvalidToken:  # encrypted under another key: that connection must be redone
            log.warning("zoom_webhook_secret_unreadable")
    return [*dict.fromkeys(found), default]


def url_validation(secret: str, plain: str) -> dict[str, str]:
    encrypted = hmac.new(secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
    return {"plainToken": plain, "encryptedToken": encrypted}


def digest(body: dict[str, Any]) -> str:
    """Identity of a notification: its event and payload (a re-sent delivery has a new
    ``event_ts`` but the same payload)."""
    canonical = json.dumps(
        {"event": body.get("event"), "payload": body.get("payload")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def store(session: AsyncSession, body: dict[str, Any]) -> bool:
    insert = pg_insert if is_postgres(session) else sqlite_insert
    now = utcnow()
    stmt = (
        insert(WebhookEvent)
        .values(
            digest=digest(body),
            event=str(body.get("event")),
            body=body,
            received_at=now,
            processed=False,
            attempts=0,
            next_attempt_at=now,
            failed=False,
        )
        .on_conflict_do_nothing(index_elements=["digest"])
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def _meeting(session: AsyncSession, obj: dict[str, Any]) -> ZoomMeeting | None:
    zoom_id = str(obj.get("id") or "")
    if not zoom_id:
        return None
    stmt = select(ZoomMeeting).where(ZoomMeeting.zoom_meeting_id == zoom_id)
    return (await session.execute(stmt)).scalars().first()


async def process_one(session: AsyncSession, settings: ZoomBridgeSettings) -> Outcome | None:
    """Process the next due stored webhook; None when there is none. Its effect and its
    ``processed`` mark commit together; a failure (say the database hiccups) keeps it for a
    later attempt with backoff, and after ``zoom_webhook_max_attempts`` it is given up, kept
    with its error and logged, so it never blocks the ones behind it."""
    now = utcnow()
    stmt = (
        select(WebhookEvent)
        .where(
            WebhookEvent.processed.is_(False),
            WebhookEvent.failed.is_(False),
            WebhookEvent.next_attempt_at <= now,
        )
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.received_at)
        .limit(1)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    event = (await session.execute(stmt)).scalars().first()
    if event is None:
        return None
    label = metrics.event_label(event.event, HANDLED)
    try:
        async with session.begin_nested():
            await _handle(session, event, settings.zoom_reconcile_delay_seconds)
    except Exception as exc:
        await session.refresh(event)
        event.attempts += 1
        event.last_error = f"{type(exc).__name__}: {exc}"[:1000]
        if event.attempts >= settings.zoom_webhook_max_attempts:
            event.failed = True
            log.error(
                "zoom_webhook_gave_up",
                zoom_event=event.event,
                digest=event.digest,
                attempts=event.attempts,
                error=type(exc).__name__,
            )
            return Outcome(label, metrics.GIVEN_UP)
        cap = min(
            settings.zoom_retry_max_seconds,
            settings.zoom_webhook_retry_base_seconds * 2 ** min(event.attempts - 1, 30),
        )
        event.next_attempt_at = utcnow() + dt.timedelta(seconds=random.uniform(cap / 2, cap))
        log.warning(
            "zoom_webhook_retry",
            zoom_event=event.event,
            attempts=event.attempts,
            error=type(exc).__name__,
        )
        return Outcome(label, metrics.FAILED)
    event.attempts += 1
    event.processed = True
    event.processed_at = utcnow()
    return Outcome(label, metrics.PROCESSED)


async def prune(session: AsyncSession, retention_days: float) -> int:
    """Forget processed webhooks older than the retention period (failed ones stay)."""
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    result = await session.execute(
        delete(WebhookEvent).where(
            WebhookEvent.processed.is_(True), WebhookEvent.processed_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _handle(session: AsyncSession, event: WebhookEvent, settings_delay: float) -> None:
    payload: dict[str, Any] = event.body.get("payload") or {}
    obj: dict[str, Any] = payload.get("object") or {}
    if event.event == "app_deauthorized":
        removed = await deauthorize(
            session, str(payload.get("user_id", "")), str(payload.get("account_id", ""))
        )
        log.info("zoom_deauthorized", removed=removed)
        return
    meeting = await _meeting(session, obj)
    if meeting is None:
        log.info("zoom_webhook_unknown_meeting", zoom_event=event.event)
        return
    if event.event in ("meeting.participant_joined", "meeting.participant_left"):
        joined = event.event == "meeting.participant_joined"
        email = await attendance.record_segment(
            session, meeting, obj.get("participant") or {}, joined
        )
        if email is not None:
            await attendance.publish(session, meeting, email=email)
    elif event.event == "meeting.ended":
        meeting.ended = True
        if await attendance.role_of(session, meeting) == c.ZoomAccountRole.ADMINISTRATOR:
            await jobs.arm(session, meeting.day_id, jobs.RECONCILE, delay=settings_delay)
    elif event.event == "recording.completed":
        await _recording(session, meeting, obj)


async def _recording(session: AsyncSession, meeting: ZoomMeeting, obj: dict[str, Any]) -> None:
    """R-ZOOM-7: attach for the administrator role while the training module is enabled."""
    if await attendance.role_of(session, meeting) != c.ZoomAccountRole.ADMINISTRATOR:
        return
    company = await session.get(CompanyReplica, meeting.company_id)
    if company is None or not company.training_module_enabled:
        log.info("zoom_recording_not_attached", day_id=str(meeting.day_id))
        return
    known = {r["id"] for r in meeting.recordings or []}
    files = [f for f in obj.get("recording_files") or [] if f.get("id") not in known]
    if not files:
        return
    new = [
        {
            "id": str(f["id"]),
            "file_type": str(f.get("file_type", "")),
            "play_url": str(f.get("play_url", "")),
            "recording_start": f.get("recording_start"),
            "recording_end": f.get("recording_end"),
        }
        for f in files
    ]
    meeting.recordings = [*(meeting.recordings or []), *new]
    add_message(
        session,
        OutboxRecord,
        c.RecordingAvailable(
            company_id=meeting.company_id,
            day_id=meeting.day_id,
            zoom_meeting_id=meeting.zoom_meeting_id or str(obj.get("id")),
            recordings=[
                c.RecordingFile(
                    file_type=r["file_type"],
                    play_url=r["play_url"],
                    recording_start=attendance.parse_time(r["recording_start"]),
                    recording_end=attendance.parse_time(r["recording_end"]),
                )
                for r in new
            ],
        ),
    )
