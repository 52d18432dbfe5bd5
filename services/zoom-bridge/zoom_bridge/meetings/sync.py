"""Running one job against Zoom: create/patch/delete a day's meeting, or reconcile attendance."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared import contracts as c
from te_shared.logging import get_logger
from te_shared.outbox import add_message
from zoom_bridge.meetings import attendance, jobs
from zoom_bridge.models import (
    AttendanceSegment,
    CompanyReplica,
    OutboxRecord,
    ZoomAccount,
    ZoomMeeting,
)
from zoom_bridge.zoom.client import ZoomClient, ZoomFatal, ZoomNotFound, ZoomRetryable

log = get_logger(__name__)


@dataclass(frozen=True)
class Snapshot:
    day_id: uuid.UUID
    company_id: str
    version: int
    desired: str
    account_id: uuid.UUID | None
    account_role: str | None
    zoom_meeting_id: str | None
    synced_version: int
    body: dict[str, Any]


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _snapshot(session: AsyncSession, day_id: uuid.UUID) -> Snapshot | None:
    meeting = await session.get(ZoomMeeting, day_id)
    if meeting is None:
        return None
    account = await session.get(ZoomAccount, meeting.account_id) if meeting.account_id else None
    company = await session.get(CompanyReplica, meeting.company_id)
    training = bool(company and company.training_module_enabled)
    role = account.role if account and account.company_id == meeting.company_id else None
    record = meeting.auto_recording and role == c.ZoomAccountRole.ADMINISTRATOR and training
    body: dict[str, Any] = {}
    if meeting.start is not None and meeting.end is not None:
        minutes = max(1, round((meeting.end - meeting.start).total_seconds() / 60))
        body = {
            "topic": meeting.topic or "Training",
            "type": 2,
            "start_time": _iso(meeting.start),
            "duration": minutes,
            "timezone": meeting.timezone,
            "agenda": f"day:{meeting.day_id}",
            "settings": {"auto_recording": "cloud" if record else "none"},
        }
    return Snapshot(
        day_id=meeting.day_id,
        company_id=meeting.company_id,
        version=meeting.version,
        desired=meeting.desired,
        account_id=account.id if account is not None and role else None,
        account_role=role,
        zoom_meeting_id=meeting.zoom_meeting_id,
        synced_version=meeting.synced_version,
        body=body,
    )


class Syncer:
    def __init__(self, zoom: ZoomClient, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.zoom = zoom
        self.sessionmaker = sessionmaker
        self.settings = zoom.settings

    async def run(self, claimed: jobs.Claimed) -> None:
        try:
            if claimed.kind == jobs.SYNC:
                await self._sync(claimed)
            else:
                await self._reconcile(claimed)
        except ZoomRetryable as exc:
            await self._retryable(claimed, exc)
        except ZoomFatal as exc:
            await self._failed(claimed, str(exc))

    async def _retryable(self, claimed: jobs.Claimed, exc: ZoomRetryable) -> None:
        if claimed.attempts >= self.settings.zoom_retry_max_attempts:
            await self._failed(claimed, f"gave up after {claimed.attempts} attempts: {exc}")
            return
        delay = max(exc.min_delay, jobs.backoff(self.settings, claimed.attempts, exc.retry_after))
        log.info(
            "zoom_job_retry",
            day_id=str(claimed.day_id),
            kind=claimed.kind,
            attempts=claimed.attempts,
            delay=round(delay, 2),
            status=exc.status,
        )
        async with self.sessionmaker() as session, session.begin():
            await jobs.retry_later(session, claimed, delay, str(exc))

    async def _failed(self, claimed: jobs.Claimed, reason: str) -> None:
        log.warning("zoom_job_failed", day_id=str(claimed.day_id), kind=claimed.kind, error=reason)
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, claimed.day_id)
            if meeting is not None and claimed.kind == jobs.SYNC:
                meeting.status = c.MeetingStatus.FAILED.value
                meeting.error = reason
                add_message(
                    session,
                    OutboxRecord,
                    c.MeetingFailed(
                        company_id=meeting.company_id,
                        day_id=meeting.day_id,
                        version=meeting.version,
                        zoom_meeting_id=meeting.zoom_meeting_id,
                        join_url=meeting.join_url,
                        start_time=meeting.start,
                        error=reason,
                    ),
                )
            await jobs.finish(session, claimed)

    async def _sync(self, claimed: jobs.Claimed) -> None:
        async with self.sessionmaker() as session, session.begin():
            snap = await _snapshot(session, claimed.day_id)
        if snap is None:
            async with self.sessionmaker() as session, session.begin():
                await jobs.finish(session, claimed)
            return
        if snap.desired == "absent":
            if snap.zoom_meeting_id and snap.account_id:
                with contextlib.suppress(ZoomNotFound):  # already gone on Zoom: done
                    await self.zoom.call(
                        snap.account_id, "DELETE", f"/meetings/{snap.zoom_meeting_id}"
                    )
            await self._store(claimed, snap, deleted=True)
            return
        if snap.account_id is None:
            raise ZoomFatal("the day's Zoom account is not connected to this company")
        if not snap.body:
            raise ZoomFatal("the day has no start and end")
        if snap.zoom_meeting_id is None:
            existing = await self._find_existing(snap) if claimed.attempts > 1 else None
            if existing is not None:
                # an earlier attempt created it but its answer was lost (e.g. a timeout)
                path = f"/meetings/{existing['id']}"
                await self.zoom.call(snap.account_id, "PATCH", path, snap.body)
                created = (await self.zoom.call(snap.account_id, "GET", path)).json()
            else:
                response = await self.zoom.call(
                    snap.account_id, "POST", "/users/me/meetings", snap.body
                )
                created = response.json()
            await self._store(claimed, snap, created=created)
            return
        if snap.synced_version < snap.version:
            try:
                await self.zoom.call(
                    snap.account_id, "PATCH", f"/meetings/{snap.zoom_meeting_id}", snap.body
                )
            except ZoomNotFound:
                # deleted on Zoom's side: create it again
                response = await self.zoom.call(
                    snap.account_id, "POST", "/users/me/meetings", snap.body
                )
                await self._store(claimed, snap, created=response.json())
                return
            await self._store(claimed, snap, updated=True)
            return
        async with self.sessionmaker() as session, session.begin():
            await jobs.finish(session, claimed)

    async def _find_existing(self, snap: Snapshot) -> dict[str, Any] | None:
        """The meeting an earlier, unanswered attempt created, recognised by its agenda."""
        assert snap.account_id is not None
        marker = snap.body.get("agenda")
        token = ""
        while True:
            path = "/users/me/meetings?type=scheduled&page_size=300"
            if token:
                path += f"&next_page_token={token}"
            data = (await self.zoom.call(snap.account_id, "GET", path)).json()
            for item in data.get("meetings", []):
                if item.get("agenda") == marker:
                    found: dict[str, Any] = item
                    return found
            token = data.get("next_page_token") or ""
            if not token:
                return None

    async def _store(
        self,
        claimed: jobs.Claimed,
        snap: Snapshot,
        *,
        created: dict[str, Any] | None = None,
        updated: bool = False,
        deleted: bool = False,
    ) -> None:
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, claimed.day_id)
            if meeting is None:
                return
            meeting.error = None
            if deleted:
                meeting.status = c.MeetingStatus.DELETED.value
                message: c.Message = c.MeetingDeleted(
                    company_id=meeting.company_id,
                    day_id=meeting.day_id,
                    version=snap.version,
                    zoom_meeting_id=snap.zoom_meeting_id,
                )
                meeting.zoom_meeting_id = None
                meeting.join_url = None
                meeting.start_url_enc = None
            else:
                if created is not None:
                    meeting.zoom_meeting_id = str(created["id"])
                    meeting.join_url = str(created.get("join_url", ""))
                    start_url = created.get("start_url")
                    meeting.start_url_enc = (
                        self.zoom.cipher.encrypt(str(start_url)) if start_url else None
                    )
                meeting.status = c.MeetingStatus.CREATED.value
                kind = c.MeetingCreated if created is not None else c.MeetingUpdated
                message = kind(
                    company_id=meeting.company_id,
                    day_id=meeting.day_id,
                    version=snap.version,
                    zoom_meeting_id=meeting.zoom_meeting_id,
                    join_url=meeting.join_url,
                    start_time=meeting.start,
                )
            meeting.synced_version = snap.version
            add_message(session, OutboxRecord, message)
            await jobs.finish(session, claimed)
        log.info("zoom_meeting_synced", day_id=str(claimed.day_id), kind=type(message).__name__)

    async def _reconcile(self, claimed: jobs.Claimed) -> None:
        """R-ZOOM-5: after the meeting ended, the participants report is the truth."""
        async with self.sessionmaker() as session, session.begin():
            snap = await _snapshot(session, claimed.day_id)
        if snap is None or snap.account_id is None or snap.zoom_meeting_id is None:
            async with self.sessionmaker() as session, session.begin():
                await jobs.finish(session, claimed)
            return
        rows: list[dict[str, Any]] = []
        token = ""
        while True:
            path = f"/report/meetings/{snap.zoom_meeting_id}/participants?page_size=300"
            if token:
                path += f"&next_page_token={token}"
            data = (await self.zoom.call(snap.account_id, "GET", path)).json()
            rows.extend(data.get("participants", []))
            token = data.get("next_page_token") or ""
            if not token:
                break
        async with self.sessionmaker() as session, session.begin():
            # the report replaces what webhooks said about the people it lists; people it
            # does not list (e.g. no e-mail in the report) keep their webhook segments
            reported = {str(r.get("user_email") or "").lower() for r in rows} - {""}
            await session.execute(
                delete(AttendanceSegment).where(
                    AttendanceSegment.day_id == claimed.day_id,
                    AttendanceSegment.email.in_(reported),
                )
            )
            for i, row in enumerate(rows):
                if str(row.get("user_email") or "").lower() not in reported:
                    continue
                session.add(
                    AttendanceSegment(
                        day_id=claimed.day_id,
                        participant_key=f"r:{row.get('user_id') or i}:{row.get('join_time')}",
                        email=(row.get("user_email") or "").lower() or None,
                        join_time=attendance.parse_time(row.get("join_time")),
                        leave_time=attendance.parse_time(row.get("leave_time")),
                    )
                )
            await session.flush()
            meeting = await session.get(ZoomMeeting, claimed.day_id)
            if meeting is not None:
                await attendance.publish(session, meeting, final=True)
            await jobs.finish(session, claimed)
