"""Running one job against Zoom: create/patch/delete a day's meeting, or reconcile attendance."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
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
from zoom_bridge.zoom.client import (
    ZoomClient,
    ZoomFatal,
    ZoomNotConnected,
    ZoomNotFound,
    ZoomRetryable,
)

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
    meeting_account_id: uuid.UUID | None
    create_account_id: uuid.UUID | None
    synced_version: int
    body: dict[str, Any]

    @property
    def marker(self) -> str:
        """The agenda that recognises the day's meeting on Zoom."""
        return f"day:{self.day_id}"


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
        meeting_account_id=meeting.meeting_account_id or meeting.account_id,
        create_account_id=meeting.create_account_id,
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
        """R-ZOOM-8: back off and try again until the time budget is spent. A 429 with
        Retry-After waits as long as Zoom asks (up to a day) and does not use up the budget."""
        asked = exc.status == 429 and exc.retry_after is not None
        delay = max(exc.min_delay, jobs.backoff(self.settings, claimed.attempts, exc.retry_after))
        async with self.sessionmaker() as session, session.begin():
            again = await jobs.retry_later(
                session,
                claimed,
                delay,
                str(exc),
                budget_seconds=self.settings.zoom_retry_budget_seconds,
                waited_as_asked=asked,
            )
        if not again:
            await self._failed(claimed, f"gave up after {claimed.attempts} attempts: {exc}")
            return
        log.info(
            "zoom_job_retry",
            day_id=str(claimed.day_id),
            kind=claimed.kind,
            attempts=claimed.attempts,
            delay=round(delay, 2),
            status=exc.status,
        )

    async def _failed(self, claimed: jobs.Claimed, reason: str) -> None:
        """The meeting is failed with the reason, visibly (R-ZOOM-8); the job ends. A later
        change of the day, or the admin's retry, arms it again."""
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
            await self._remove(snap)
            await self._store(claimed, snap, deleted=True)
            return
        if snap.account_id is None:
            raise ZoomFatal("the day's Zoom account is not connected to this company")
        if not snap.body:
            raise ZoomFatal("the day has no start and end")
        if snap.zoom_meeting_id is not None and snap.meeting_account_id != snap.account_id:
            # the day moved to another Zoom account: its meeting there goes, a new one comes
            await self._delete(snap.meeting_account_id, snap.zoom_meeting_id)
            snap = await self._forget_meeting(snap)
        if snap.zoom_meeting_id is None:
            await self._store(claimed, snap, created=await self._create(snap))
            return
        if snap.synced_version < snap.version:
            try:
                await self.zoom.call(
                    snap.account_id, "PATCH", f"/meetings/{snap.zoom_meeting_id}", snap.body
                )
            except ZoomNotFound:
                # deleted on Zoom's side: create it again
                snap = await self._forget_meeting(snap)
                await self._store(claimed, snap, created=await self._create(snap))
                return
            await self._store(claimed, snap, updated=True)
            return
        async with self.sessionmaker() as session, session.begin():
            await jobs.finish(session, claimed)

    async def _create(self, snap: Snapshot) -> dict[str, Any]:
        """Create the day's meeting on its account, never twice: a create that may have been
        sent (the durable ``create_account_id``, set before the POST) is looked up first, so a
        create whose answer was lost is adopted whatever happened to the job since."""
        assert snap.account_id is not None
        if snap.create_account_id is not None:
            if snap.create_account_id == snap.account_id:
                existing = await self._find_existing(snap.account_id, snap.marker)
                if existing is not None:
                    path = f"/meetings/{existing['id']}"
                    await self.zoom.call(snap.account_id, "PATCH", path, snap.body)
                    created: dict[str, Any] = (
                        await self.zoom.call(snap.account_id, "GET", path)
                    ).json()
                    log.info("zoom_meeting_adopted", day_id=str(snap.day_id))
                    return created
            else:  # sent to the day's previous account: remove it there
                await self._remove_unanswered(snap.create_account_id, snap.marker)
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, snap.day_id)
            if meeting is not None:
                meeting.create_account_id = snap.account_id
        response = await self.zoom.call(snap.account_id, "POST", "/users/me/meetings", snap.body)
        answer: dict[str, Any] = response.json()
        return answer

    async def _forget_meeting(self, snap: Snapshot) -> Snapshot:
        """The stored Zoom meeting is gone (deleted, or on another account): forget it."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, snap.day_id)
            if meeting is not None:
                meeting.zoom_meeting_id = None
                meeting.meeting_account_id = None
                meeting.join_url = None
                meeting.start_url_enc = None
        return replace(snap, zoom_meeting_id=None, meeting_account_id=None)

    async def _delete(self, account_id: uuid.UUID | None, zoom_meeting_id: str) -> None:
        """Delete on Zoom; already gone (404) is done, and so is an account no longer
        connected (nothing can be deleted through it)."""
        if account_id is None:
            return
        try:
            await self.zoom.call(account_id, "DELETE", f"/meetings/{zoom_meeting_id}")
        except ZoomNotFound:
            pass
        except ZoomNotConnected:
            log.warning("zoom_meeting_left_on_disconnected_account", account_id=str(account_id))

    async def _remove_unanswered(self, account_id: uuid.UUID, marker: str) -> None:
        """Delete a meeting a create whose answer was lost may have made on ``account_id``."""
        try:
            found = await self._find_existing(account_id, marker)
        except ZoomNotConnected:
            log.warning("zoom_meeting_left_on_disconnected_account", account_id=str(account_id))
            return
        if found is not None:
            await self._delete(account_id, str(found["id"]))

    async def _remove(self, snap: Snapshot) -> None:
        """R-ZOOM-3 the day is no zoom day any more: delete its meeting, including one a
        create whose answer was lost made (looked up by its agenda)."""
        if snap.zoom_meeting_id is not None:
            await self._delete(snap.meeting_account_id, snap.zoom_meeting_id)
        elif snap.create_account_id is not None:
            await self._remove_unanswered(snap.create_account_id, snap.marker)

    async def _find_existing(self, account_id: uuid.UUID, marker: str) -> dict[str, Any] | None:
        """The meeting an earlier, unanswered create made, recognised by its agenda."""
        token = ""
        while True:
            path = "/users/me/meetings?type=scheduled&page_size=300"
            if token:
                path += f"&next_page_token={token}"
            data = (await self.zoom.call(account_id, "GET", path)).json()
            for item in data.get("meetings", []):
                if item.get("agenda") == marker:
                    found: dict[str, Any] = item
                    return found
            token = data.get("next_page_token") or ""
            if not token:
                return None

    async def _report(self, account_id: uuid.UUID, zoom_meeting_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        token = ""
        while True:
            path = f"/report/meetings/{zoom_meeting_id}/participants?page_size=300"
            if token:
                path += f"&next_page_token={token}"
            data = (await self.zoom.call(account_id, "GET", path)).json()
            rows.extend(data.get("participants", []))
            token = data.get("next_page_token") or ""
            if not token:
                return rows

    async def _report_missing(self, claimed: jobs.Claimed, exc: ZoomNotFound) -> None:
        if claimed.attempts < self.settings.zoom_reconcile_attempts:
            delay = max(self.settings.zoom_reconcile_delay_seconds, 1.0) * 2 ** (
                claimed.attempts - 1
            )
            delay = min(delay, self.settings.zoom_retry_after_max_seconds)
            log.info("zoom_report_not_ready", day_id=str(claimed.day_id), delay=delay)
            async with self.sessionmaker() as session, session.begin():
                await jobs.retry_later(session, claimed, delay, str(exc))
            return
        log.warning("zoom_report_never_came", day_id=str(claimed.day_id), error=str(exc))
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, claimed.day_id)
            if meeting is not None:
                await attendance.publish(session, meeting, final=True)
            await jobs.finish(session, claimed)

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
                meeting.meeting_account_id = None
                meeting.create_account_id = None
                meeting.join_url = None
                meeting.start_url_enc = None
            else:
                if created is not None:
                    meeting.zoom_meeting_id = str(created["id"])
                    meeting.meeting_account_id = snap.account_id
                    meeting.create_account_id = None
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
        """R-ZOOM-5: after the meeting ended, the participants report is the truth. Zoom has
        the report a while after the end: a 404 is read again later (the wait doubling), and
        after the last try the webhooks' attendance is published as final."""
        async with self.sessionmaker() as session, session.begin():
            snap = await _snapshot(session, claimed.day_id)
        account_id = snap.meeting_account_id if snap is not None else None
        if snap is None or account_id is None or snap.zoom_meeting_id is None:
            async with self.sessionmaker() as session, session.begin():
                await jobs.finish(session, claimed)
            return
        try:
            rows = await self._report(account_id, snap.zoom_meeting_id)
        except ZoomNotFound as exc:
            await self._report_missing(claimed, exc)
            return
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
