"""Zoom webhooks (R-ZOOM-4): verification, storing (duplicates absorbed), then processing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_shared.db import is_postgres, utcnow
from te_shared.errors import Unauthorized
from te_shared.logging import get_logger
from te_shared.outbox import add_message
from zoom_bridge.accounts.service import deauthorize
from zoom_bridge.meetings import attendance, jobs
from zoom_bridge.models import CompanyReplica, OutboxRecord, WebhookEvent, ZoomMeeting

log = get_logger(__name__)

#: Events the bridge acts on; anything else is acknowledged and ignored.
HANDLED = {
    "meeting.participant_joined",
    "meeting.participant_left",
    "meeting.ended",
    "recording.completed",
    "app_deauthorized",
}


def expected_signature(secret: str, timestamp: str, raw: bytes) -> str:
    message = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, raw: bytes, timestamp: str | None, signature: str | None, max_age: int
) -> None:
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
    expected = expected_signature(secret, timestamp, raw)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Unauthorized("Bad Zoom signature.", code="bad_signature")


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
    stmt = (
        insert(WebhookEvent)
        .values(
            digest=digest(body),
            event=str(body.get("event")),
            body=body,
            received_at=utcnow(),
            processed=False,
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


async def process_one(session: AsyncSession, settings_delay: float) -> bool:
    """Process the oldest unprocessed event; False when there is none."""
    stmt = (
        select(WebhookEvent)
        .where(WebhookEvent.processed.is_(False))
        .order_by(WebhookEvent.received_at)
        .limit(1)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    event = (await session.execute(stmt)).scalars().first()
    if event is None:
        return False
    event.processed = True
    try:
        async with session.begin_nested():
            await _handle(session, event, settings_delay)
    except Exception as exc:  # a poison notification must not block the ones behind it
        log.warning("zoom_webhook_failed", zoom_event=event.event, error=type(exc).__name__)
    return True


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
