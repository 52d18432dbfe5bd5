"""Running one durable job against Zoom: the job runner (:class:`Syncer`) and the day's meeting
sync it runs for ``sync`` jobs.

The layers: :mod:`~zoom_bridge.meetings.plan` decides (pure), the typed adapter
(:class:`~zoom_bridge.zoom.api.ZoomApi`) talks to Zoom, :class:`~zoom_bridge.meetings.store.
MeetingStore` reads and writes the database one transaction per step. :class:`Syncer` runs a
claimed job: it dispatches on the kind (``sync`` here, ``verify`` in
:mod:`~zoom_bridge.meetings.verify`, ``registrants`` in :mod:`~zoom_bridge.meetings.registrants`,
``reconcile`` in :meth:`Syncer._reconcile`) and applies the retry policy of R-ZOOM-8 to what a
job raises.

A create is never repeated blindly: it is marked (committed) before the POST, and a create
whose answer was lost is looked up by the meeting's agenda (``day:<day_id>``) once it settled,
before another POST; the ``verify`` job later deletes any second meeting a slower create made
(see the README).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared.db import utcnow
from te_shared.logging import get_logger
from zoom_bridge.meetings import jobs, reconcile
from zoom_bridge.meetings.plan import (
    Abandon,
    Create,
    Fail,
    LookUp,
    Marker,
    Nothing,
    Remove,
    Snapshot,
    TakeBack,
    Update,
    Wait,
    plan,
)
from zoom_bridge.meetings.registrants import Registrar
from zoom_bridge.meetings.store import MeetingStore
from zoom_bridge.meetings.verify import Verifier, delete_quietly, remove_found
from zoom_bridge.zoom.api import Meeting, MeetingBody, ZoomApi
from zoom_bridge.zoom.client import (
    ZoomClient,
    ZoomDailyLimit,
    ZoomError,
    ZoomFatal,
    ZoomNotFound,
    ZoomRetryable,
    one_job,
)

log = get_logger(__name__)


class Syncer:
    """Runs claimed jobs. ``zoom`` is the typed adapter; ``sessionmaker`` and ``settings`` are
    the bridge's (the reconcile job uses them directly)."""

    def __init__(
        self,
        zoom: ZoomClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        on_duplicate_deleted: Callable[[], None] | None = None,
    ) -> None:
        self.zoom = ZoomApi(zoom)
        self.sessionmaker = sessionmaker
        self.settings = zoom.settings
        self.store = MeetingStore(sessionmaker, zoom.settings, zoom.cipher)
        self.verifier = Verifier(self.zoom, self.store, self.settle_seconds, on_duplicate_deleted)
        self.registrar = Registrar(self.zoom, self.store)

    @property
    def settle_seconds(self) -> float:
        """How long after an unanswered create was sent before it is looked up."""
        return max(self.settings.zoom_create_settle_seconds, self.settings.zoom_http_timeout)

    async def run(self, claimed: jobs.Claimed) -> None:
        with one_job():
            await self._run(claimed)

    async def _run(self, claimed: jobs.Claimed) -> None:
        try:
            if claimed.kind == jobs.SYNC:
                await self._sync(claimed)
            elif claimed.kind == jobs.VERIFY:
                await self.verifier.run(claimed)
            elif claimed.kind == jobs.REGISTRANTS:
                await self.registrar.run(claimed)
            else:
                await self._reconcile(claimed)
        except ZoomDailyLimit as exc:
            await self._park(claimed, exc)
        except ZoomRetryable as exc:
            await self._retryable(claimed, exc)
        except ZoomFatal as exc:
            await self._failed(claimed, str(exc))

    async def _park(self, claimed: jobs.Claimed, exc: ZoomDailyLimit) -> None:
        """R-ZOOM-8: Zoom's daily limit (e.g. 100 meeting creates per user and UTC day) is not
        a failure: the job waits until the time Zoom names (at most
        ``zoom_retry_after_max_seconds``), outside the retry budget, and the meeting says so."""
        now = utcnow()
        until = min(
            exc.until, now + dt.timedelta(seconds=self.settings.zoom_retry_after_max_seconds)
        )
        reason = (
            f"Zoom's daily limit for this Zoom user is reached; tried again at "
            f"{until.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} ({exc})"
        )
        await self.store.park(claimed, max(0.0, (until - now).total_seconds()), reason)
        log.info(
            "zoom_job_parked",
            day_id=str(claimed.day_id),
            kind=claimed.kind,
            until=until.isoformat(),
        )

    async def _retryable(self, claimed: jobs.Claimed, exc: ZoomRetryable) -> None:
        """R-ZOOM-8: back off and try again until the time budget is spent. A Retry-After
        (a QPS 429's, a 503's) is the shortest wait; the retry is an ordinary one."""
        delay = max(exc.min_delay, jobs.backoff(self.settings, claimed.attempts, exc.retry_after))
        if not await self.store.retry(claimed, delay, str(exc)):
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
        log.warning("zoom_job_failed", day_id=str(claimed.day_id), kind=claimed.kind, error=reason)
        await self.store.fail(claimed, reason)

    # ---- sync: the day's meeting ---------------------------------------------------------------

    async def _sync(self, claimed: jobs.Claimed) -> None:
        """Plan, act, store, until the job is done or waits; an action that only changes what
        is stored (a meeting on the day's previous account deleted, a meeting deleted at Zoom
        forgotten) is followed by planning again."""
        while True:
            snap = await self.store.snapshot(claimed.day_id)
            action = plan(snap, utcnow())
            if snap is None or isinstance(action, Nothing):
                await self.store.finish(claimed)
                return
            match action:
                case Fail(reason=reason):
                    raise ZoomFatal(reason)
                case Wait(until=until):
                    delay = max(0.0, (until - utcnow()).total_seconds())
                    log.info("zoom_create_settling", day_id=str(claimed.day_id), delay=delay)
                    reason = f"waiting until {until.isoformat()} for an unanswered create to settle"
                    await self.store.wait(claimed, delay, reason)
                    return
                case Abandon(account_id=account_id, zoom_meeting_id=zoom_id):
                    # the day moved to another Zoom account: its meeting there goes
                    await delete_quietly(self.zoom, account_id, zoom_id)
                    await self.store.forget_meeting(claimed.day_id)
                case Remove():
                    # R-ZOOM-3 no zoom day any more: its meeting goes, and any meeting an
                    # unanswered create made (looked up by its agenda once it settled)
                    if action.zoom_meeting_id is not None:
                        await delete_quietly(self.zoom, action.account_id, action.zoom_meeting_id)
                    if action.unanswered is not None:
                        await remove_found(self.zoom, action.unanswered.account_id, snap.marker)
                    await self.store.save(claimed, snap, deleted=True, uncertain=action.unanswered)
                    return
                case LookUp():
                    meeting = await self._adopt_or_post(snap, action)
                    await self.store.save(claimed, snap, created=meeting, uncertain=action.earlier)
                    return
                case Create():
                    if action.clear_on is not None:  # sent to the day's previous account
                        await remove_found(self.zoom, action.clear_on, snap.marker)
                    meeting = await self._post(snap, action.account_id, action.body, action.earlier)
                    await self.store.save(claimed, snap, created=meeting, uncertain=action.earlier)
                    return
                case Update():
                    try:
                        await self.zoom.update_meeting(
                            action.account_id, action.zoom_meeting_id, action.body
                        )
                    except ZoomNotFound:  # deleted on Zoom's side: create it again
                        await self.store.forget_meeting(claimed.day_id, deleted_at_zoom=True)
                        continue
                    await self.store.save(claimed, snap, updated=True)
                    return
                case TakeBack():
                    try:
                        await self.zoom.update_meeting(
                            action.account_id, action.zoom_meeting_id, action.body
                        )
                        taken = await self.zoom.get_meeting(
                            action.account_id, action.zoom_meeting_id
                        )
                    except ZoomNotFound:  # deleted again meanwhile: create one
                        await self.store.forget_meeting(claimed.day_id, deleted_at_zoom=True)
                        continue
                    log.info("zoom_meeting_taken_back", day_id=str(claimed.day_id))
                    await self.store.save(claimed, snap, created=taken)
                    return

    async def _adopt_or_post(self, snap: Snapshot, action: LookUp) -> Meeting:
        """Adopt the meeting an earlier, unanswered create made (recognised by its agenda),
        patched to the day's version; create one when there is none. Either way, that create
        stays to be verified (a slower one may still appear)."""
        found = await self.zoom.list_meetings(action.account_id, agenda=snap.marker)
        if not found:
            return await self._post(snap, action.account_id, action.body, action.earlier)
        await self.zoom.update_meeting(action.account_id, found[0].id, action.body)
        adopted = await self.zoom.get_meeting(action.account_id, found[0].id)
        log.info("zoom_meeting_adopted", day_id=str(snap.day_id))
        return adopted

    async def _post(
        self, snap: Snapshot, account_id: uuid.UUID, body: MeetingBody, earlier: Marker | None
    ) -> Meeting:
        """POST the meeting, marked first (committed) as possibly made: if its answer is lost,
        the next attempt looks it up once it settled rather than POST again. A create Zoom
        refused, or that was never sent, made nothing: the mark goes back to ``earlier``."""
        sent_at = utcnow()
        settles_at = sent_at + dt.timedelta(seconds=self.settle_seconds)
        await self.store.set_marker(snap.day_id, Marker(account_id, sent_at, settles_at))
        try:
            return await self.zoom.create_meeting(account_id, body)
        except ZoomError as exc:
            if not exc.uncertain:  # refused or never sent: this POST made nothing
                await self.store.set_marker(snap.day_id, earlier)
            elif not exc.in_flight:  # Zoom answered (a 500): whatever it did is done
                await self.store.set_marker(snap.day_id, Marker(account_id, sent_at, utcnow()))
            elif isinstance(exc, ZoomRetryable):  # look it up once it settled, not sooner
                exc.min_delay = max((settles_at - utcnow()).total_seconds(), 0.0)
            raise

    # ---- reconcile: attendance after the meeting ended -------------------------------------

    async def _reconcile(self, claimed: jobs.Claimed) -> None:
        """R-ZOOM-5: after the meeting ended, see :mod:`zoom_bridge.meetings.reconcile`."""
        await reconcile.run(self.zoom.client, self.sessionmaker, self.settings, claimed)
