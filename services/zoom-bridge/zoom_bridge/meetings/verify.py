"""The ``verify`` job: after the day's meeting was stored (or deleted) following a create whose
answer was lost, Zoom may have made that meeting later than any lookup could see. A pass lists
the account's meetings with the day's agenda and deletes every one that is not the stored
meeting; after the last pass the mark is cleared. While a sync of the day is pending (it may be
creating the meeting right now) the pass waits: the sync owns the day's meetings."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from te_shared.logging import get_logger
from zoom_bridge.meetings import jobs
from zoom_bridge.meetings.plan import agenda_of
from zoom_bridge.meetings.store import MeetingStore
from zoom_bridge.zoom.api import ZoomApi
from zoom_bridge.zoom.client import ZoomNotConnected, ZoomNotFound

log = get_logger(__name__)


async def delete_quietly(zoom: ZoomApi, account_id: uuid.UUID | None, zoom_meeting_id: str) -> None:
    """Delete on Zoom; already gone (404) is done, and so is an account no longer connected
    (nothing can be deleted through it)."""
    if account_id is None:
        return
    try:
        await zoom.delete_meeting(account_id, zoom_meeting_id)
    except ZoomNotFound:
        pass
    except ZoomNotConnected:
        log.warning("zoom_meeting_left_on_disconnected_account", account_id=str(account_id))


async def remove_found(zoom: ZoomApi, account_id: uuid.UUID, agenda: str) -> None:
    """Delete the meetings with the day's agenda on ``account_id``: ones a create whose answer
    was lost made."""
    try:
        found = await zoom.list_meetings(account_id, agenda=agenda)
    except ZoomNotConnected:
        log.warning("zoom_meeting_left_on_disconnected_account", account_id=str(account_id))
        return
    for item in found:
        await delete_quietly(zoom, account_id, item.id)


class Verifier:
    def __init__(
        self,
        zoom: ZoomApi,
        store: MeetingStore,
        settle_seconds: float,
        on_duplicate_deleted: Callable[[], None] | None = None,
    ) -> None:
        self.zoom = zoom
        self.store = store
        self.settle_seconds = settle_seconds
        self.on_duplicate_deleted = on_duplicate_deleted

    async def run(self, claimed: jobs.Claimed) -> None:
        settings = self.store.settings
        state = await self.store.verify_state(claimed.day_id)
        unanswered, keep = state.unanswered, state.keep
        if unanswered is None:
            await self.store.finish(claimed)
            return
        if state.syncing:
            await self.store.wait(claimed, self.settle_seconds, "a sync of the day is pending")
            return
        try:
            found = await self.zoom.list_meetings(
                unanswered.account_id, agenda=agenda_of(claimed.day_id)
            )
        except ZoomNotConnected:  # nothing can be listed or deleted there any more
            found = []
        extra = [m.id for m in found if m.id != keep]
        if extra:
            again = await self.store.verify_state(claimed.day_id)
            if again.syncing or again.unanswered != unanswered or again.keep != keep:
                # the day moved on meanwhile
                await self.store.wait(
                    claimed, self.settle_seconds, "the day changed while verifying"
                )
                return
            for zoom_id in extra:
                await delete_quietly(self.zoom, unanswered.account_id, zoom_id)
                log.warning(
                    "zoom_duplicate_meeting_deleted",
                    day_id=str(claimed.day_id),
                    zoom_meeting_id=zoom_id,
                    kept=keep,
                )
                if self.on_duplicate_deleted is not None:
                    self.on_duplicate_deleted()
        last = claimed.step >= 1 or settings.zoom_create_verify_again_seconds <= 0
        again_in = None if last else settings.zoom_create_verify_again_seconds
        await self.store.verified(claimed, unanswered, again_in=again_in)
        if last:
            log.info("zoom_create_verified", day_id=str(claimed.day_id), deleted=len(extra))
