"""Running one job against Zoom: create/patch/delete a day's meeting, verify that a create
whose answer was lost left no second meeting, or reconcile attendance.

A create is never repeated blindly: ``create_account_id`` is committed before the POST, so a
create whose answer was lost is looked up by the meeting's agenda (``day:<day_id>``) before
another POST. Zoom may be slow rather than down and make the meeting after the caller gave up,
so that lookup never runs before ``create_settles_at`` (the POST's send time plus
ZOOM_CREATE_SETTLE_SECONDS). A meeting slower than that could still appear after the lookup:
once the day's meeting is stored (or deleted) after such a create, the ``verify`` job lists the
account's meetings with the day's agenda, twice, later, and deletes every one that is not the
stored meeting, then clears the marker.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared import contracts as c
from te_shared import rules
from te_shared.db import utcnow
from te_shared.logging import get_logger
from te_shared.outbox import add_message
from zoom_bridge.meetings import jobs, reconcile
from zoom_bridge.models import (
    CompanyReplica,
    OutboxRecord,
    ZoomAccount,
    ZoomJob,
    ZoomMeeting,
)
from zoom_bridge.zoom.client import (
    ZoomClient,
    ZoomError,
    ZoomFatal,
    ZoomNotConnected,
    ZoomNotFound,
    ZoomRetryable,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class Marker:
    """A create that may have been made without its answer reaching us: on which account, when
    it was sent and when a lookup may first look for it."""

    account_id: uuid.UUID
    sent_at: dt.datetime | None
    settles_at: dt.datetime | None


@dataclass(frozen=True)
class Created:
    """The meeting Zoom holds for the day, and the unanswered create (if any) to verify."""

    meeting: dict[str, Any]
    uncertain: Marker | None


class Unsettled(Exception):
    """An unanswered create may still be in the making: look it up only after ``until``."""

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(f"waiting until {until.isoformat()} for an unanswered create to settle")
        self.until = until


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
    create_sent_at: dt.datetime | None = None
    create_settles_at: dt.datetime | None = None

    @property
    def marker(self) -> str:
        """The agenda that recognises the day's meeting on Zoom."""
        return f"day:{self.day_id}"

    @property
    def unanswered(self) -> Marker | None:
        if self.create_account_id is None:
            return None
        return Marker(self.create_account_id, self.create_sent_at, self.create_settles_at)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _snapshot(session: AsyncSession, day_id: uuid.UUID) -> Snapshot | None:
    meeting = await session.get(ZoomMeeting, day_id)
    if meeting is None:
        return None
    account = await session.get(ZoomAccount, meeting.account_id) if meeting.account_id else None
    company = await session.get(CompanyReplica, meeting.company_id)
    training = rules.training_module(company.training_module_enabled if company else None)
    role = account.role if account and account.company_id == meeting.company_id else None
    record = meeting.auto_recording and rules.cloud_recording(role, training)
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
        create_sent_at=meeting.create_sent_at,
        create_settles_at=meeting.create_settles_at,
    )


class Syncer:
    def __init__(
        self,
        zoom: ZoomClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        on_duplicate_deleted: Callable[[], None] | None = None,
    ) -> None:
        self.zoom = zoom
        self.sessionmaker = sessionmaker
        self.settings = zoom.settings
        self.on_duplicate_deleted = on_duplicate_deleted

    async def run(self, claimed: jobs.Claimed) -> None:
        try:
            if claimed.kind == jobs.SYNC:
                await self._sync(claimed)
            elif claimed.kind == jobs.VERIFY:
                await self._verify(claimed)
            else:
                await self._reconcile(claimed)
        except Unsettled as exc:
            delay = max(0.0, (exc.until - utcnow()).total_seconds())
            log.info("zoom_create_settling", day_id=str(claimed.day_id), delay=round(delay, 2))
            async with self.sessionmaker() as session, session.begin():
                # a wait, not a failure: neither an attempt nor part of the retry budget
                await jobs.retry_later(session, claimed, delay, str(exc), waited_as_asked=True)
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
            await self._store(claimed, snap, deleted=True, uncertain=await self._remove(snap))
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
            await self._store_created(claimed, snap, await self._create(snap))
            return
        if snap.synced_version < snap.version:
            try:
                await self.zoom.call(
                    snap.account_id, "PATCH", f"/meetings/{snap.zoom_meeting_id}", snap.body
                )
            except ZoomNotFound:
                # deleted on Zoom's side: create it again
                snap = await self._forget_meeting(snap)
                await self._store_created(claimed, snap, await self._create(snap))
                return
            await self._store(claimed, snap, updated=True)
            return
        async with self.sessionmaker() as session, session.begin():
            await jobs.finish(session, claimed)

    @property
    def settle_seconds(self) -> float:
        return max(self.settings.zoom_create_settle_seconds, self.settings.zoom_http_timeout)

    @staticmethod
    def _settled(snap: Snapshot) -> None:
        """Raise :class:`Unsettled` while an unanswered create may still be in the making."""
        settles = snap.create_settles_at
        if snap.create_account_id is not None and settles is not None and settles > utcnow():
            raise Unsettled(settles)

    async def _set_marker(self, day_id: uuid.UUID, marker: Marker | None) -> None:
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, day_id)
            if meeting is not None:
                meeting.create_account_id = marker.account_id if marker else None
                meeting.create_sent_at = marker.sent_at if marker else None
                meeting.create_settles_at = marker.settles_at if marker else None

    async def _create(self, snap: Snapshot) -> Created:
        """Create the day's meeting on its account, never twice: a create that may have been
        sent (the durable marker, set before the POST) is looked up first, once it settled, so
        a create whose answer was lost is adopted whatever happened to the job since. The
        result names the unanswered create (if any) still to be verified."""
        assert snap.account_id is not None
        earlier = snap.unanswered
        if earlier is not None:
            self._settled(snap)
            if earlier.account_id == snap.account_id:
                existing = await self._find_existing(snap.account_id, snap.marker)
                if existing is not None:
                    path = f"/meetings/{existing['id']}"
                    await self.zoom.call(snap.account_id, "PATCH", path, snap.body)
                    created: dict[str, Any] = (
                        await self.zoom.call(snap.account_id, "GET", path)
                    ).json()
                    log.info("zoom_meeting_adopted", day_id=str(snap.day_id))
                    return Created(created, earlier)
            else:  # sent to the day's previous account: remove it there
                await self._remove_unanswered(earlier.account_id, snap.marker)
        sent_at = utcnow()
        settles_at = sent_at + dt.timedelta(seconds=self.settle_seconds)
        await self._set_marker(snap.day_id, Marker(snap.account_id, sent_at, settles_at))
        try:
            response = await self.zoom.call(
                snap.account_id, "POST", "/users/me/meetings", snap.body
            )
        except ZoomError as exc:
            if not exc.uncertain:  # refused or never sent: this POST made nothing
                await self._set_marker(snap.day_id, earlier)
            elif not exc.in_flight:  # Zoom answered (a 500): whatever it did is done
                await self._set_marker(snap.day_id, Marker(snap.account_id, sent_at, utcnow()))
            elif isinstance(exc, ZoomRetryable):  # look it up once it settled, not sooner
                exc.min_delay = max((settles_at - utcnow()).total_seconds(), 0.0)
            raise
        # answered: this POST made the meeting; an earlier unanswered one may still have too
        answer: dict[str, Any] = response.json()
        return Created(answer, earlier)

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
        """Delete the meetings with the day's agenda on ``account_id``: ones a create whose
        answer was lost made."""
        try:
            found = await self._find_all(account_id, marker)
        except ZoomNotConnected:
            log.warning("zoom_meeting_left_on_disconnected_account", account_id=str(account_id))
            return
        for item in found:
            await self._delete(account_id, str(item["id"]))

    async def _remove(self, snap: Snapshot) -> Marker | None:
        """R-ZOOM-3 the day is no zoom day any more: delete its meeting, including any a
        create whose answer was lost made (looked up by its agenda once it settled). Returns
        that create, still to be verified (a slower one may appear later)."""
        earlier = snap.unanswered
        if earlier is not None:
            self._settled(snap)
        if snap.zoom_meeting_id is not None:
            await self._delete(snap.meeting_account_id, snap.zoom_meeting_id)
        if earlier is not None:
            await self._remove_unanswered(earlier.account_id, snap.marker)
        return earlier

    async def _find_all(self, account_id: uuid.UUID, marker: str) -> list[dict[str, Any]]:
        """The account's scheduled meetings with the day's agenda (every page)."""
        found: list[dict[str, Any]] = []
        token = ""
        while True:
            path = "/users/me/meetings?type=scheduled&page_size=300"
            if token:
                path += f"&next_page_token={token}"
            data = (await self.zoom.call(account_id, "GET", path)).json()
            found.extend(m for m in data.get("meetings", []) if m.get("agenda") == marker)
            token = data.get("next_page_token") or ""
            if not token:
                return found

    async def _find_existing(self, account_id: uuid.UUID, marker: str) -> dict[str, Any] | None:
        """The meeting an earlier, unanswered create made, recognised by its agenda."""
        found = await self._find_all(account_id, marker)
        return found[0] if found else None

    async def _store_created(self, claimed: jobs.Claimed, snap: Snapshot, result: Created) -> None:
        await self._store(claimed, snap, created=result.meeting, uncertain=result.uncertain)

    async def _store(
        self,
        claimed: jobs.Claimed,
        snap: Snapshot,
        *,
        created: dict[str, Any] | None = None,
        updated: bool = False,
        deleted: bool = False,
        uncertain: Marker | None = None,
    ) -> None:
        """Store what Zoom now holds and announce it. After a meeting was created (or deleted)
        with an unanswered create behind it (``uncertain``), that create stays marked and the
        ``verify`` job is armed to delete any second meeting it makes later."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, claimed.day_id)
            if meeting is None:
                return
            meeting.error = None
            if created is not None or deleted:
                meeting.create_account_id = uncertain.account_id if uncertain else None
                meeting.create_sent_at = uncertain.sent_at if uncertain else None
                meeting.create_settles_at = uncertain.settles_at if uncertain else None
                if uncertain is not None:
                    delay = self.settings.zoom_create_verify_delay_seconds
                    await jobs.arm(session, meeting.day_id, jobs.VERIFY, delay=delay)
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
                meeting.join_url = None
                meeting.start_url_enc = None
            else:
                if created is not None:
                    meeting.zoom_meeting_id = str(created["id"])
                    meeting.meeting_account_id = snap.account_id
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

    async def _verify_state(self, day_id: uuid.UUID) -> tuple[Marker | None, str | None, bool]:
        """The unanswered create to verify, the stored meeting on its account (to keep) and
        whether a sync of the day is pending."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, day_id)
            syncing = await session.get(ZoomJob, (day_id, jobs.SYNC)) is not None
            if meeting is None or meeting.create_account_id is None:
                return None, None, syncing
            marker = Marker(
                meeting.create_account_id, meeting.create_sent_at, meeting.create_settles_at
            )
            on_account = meeting.meeting_account_id == meeting.create_account_id
            keep = meeting.zoom_meeting_id if on_account else None
            return marker, keep, syncing

    async def _verify(self, claimed: jobs.Claimed) -> None:
        """After a meeting was stored (or deleted) following a create whose answer was lost:
        Zoom may have made that meeting later than any lookup could see. List the account's
        meetings with the day's agenda and delete every one that is not the stored meeting;
        after the last pass, clear the marker. While a sync of the day is pending (it may be
        creating the meeting right now) the pass waits: the sync owns the day's meetings."""
        settings = self.settings
        unanswered, keep, syncing = await self._verify_state(claimed.day_id)
        if unanswered is None:
            async with self.sessionmaker() as session, session.begin():
                await jobs.finish(session, claimed)
            return
        if syncing:
            await self._verify_later(claimed, "a sync of the day is pending")
            return
        marker = f"day:{claimed.day_id}"
        try:
            found = await self._find_all(unanswered.account_id, marker)
        except ZoomNotConnected:  # nothing can be listed or deleted there any more
            found = []
        extra = [str(m["id"]) for m in found if str(m["id"]) != keep]
        if extra:
            again, keep_now, syncing = await self._verify_state(claimed.day_id)
            if syncing or again != unanswered or keep_now != keep:  # the day moved on
                await self._verify_later(claimed, "the day changed while verifying")
                return
            for zoom_id in extra:
                await self._delete(unanswered.account_id, zoom_id)
                log.warning(
                    "zoom_duplicate_meeting_deleted",
                    day_id=str(claimed.day_id),
                    zoom_meeting_id=zoom_id,
                    kept=keep,
                )
                if self.on_duplicate_deleted is not None:
                    self.on_duplicate_deleted()
        last = claimed.step >= 1 or settings.zoom_create_verify_again_seconds <= 0
        async with self.sessionmaker() as session, session.begin():
            if not last:
                await jobs.next_step(session, claimed, settings.zoom_create_verify_again_seconds)
                return
            meeting = await session.get(ZoomMeeting, claimed.day_id)
            job = await session.get(ZoomJob, (claimed.day_id, claimed.kind))
            current = job is not None and job.generation == claimed.generation
            if meeting is not None and current and meeting.create_sent_at == unanswered.sent_at:
                meeting.create_account_id = None
                meeting.create_sent_at = None
                meeting.create_settles_at = None
            await jobs.finish(session, claimed)
        log.info("zoom_create_verified", day_id=str(claimed.day_id), deleted=len(extra))

    async def _verify_later(self, claimed: jobs.Claimed, reason: str) -> None:
        delay = self.settle_seconds
        async with self.sessionmaker() as session, session.begin():
            await jobs.retry_later(session, claimed, delay, reason, waited_as_asked=True)

    async def _reconcile(self, claimed: jobs.Claimed) -> None:
        """R-ZOOM-5: after the meeting ended, see :mod:`zoom_bridge.meetings.reconcile`."""
        await reconcile.run(self.zoom, self.sessionmaker, self.settings, claimed)
