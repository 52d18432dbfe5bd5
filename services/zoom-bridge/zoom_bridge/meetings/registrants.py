"""The ``registrants`` job (R-ZOOM-3): with the administrator role, each seat holder of the
day's session is registered for the day's meeting (automatic approval; Zoom e-mails them their
personal link) and loses the registration with the seat.

Armed when an enrollment of the session changes, when the day's meeting is created (or created
again: a new meeting needs new registrants) and when its account's role changes or the account
is connected again. Each run compares the seat holders with the registrations
(:func:`~zoom_bridge.meetings.plan.plan_registrants`) and does the difference, one Zoom call
and one committed row at a time: a run cut short (a 429, a restart) keeps what it did, and the
next run does the rest. Zoom's limits are met like any other job's: a QPS 429 is retried with
backoff, the daily limit parks the job."""

from __future__ import annotations

import contextlib

from te_shared.logging import get_logger
from zoom_bridge.meetings import jobs
from zoom_bridge.meetings.plan import first_name_of, plan_registrants, registration_settings
from zoom_bridge.meetings.store import MeetingStore
from zoom_bridge.zoom.api import ZoomApi
from zoom_bridge.zoom.client import ZoomFatal, ZoomNotConnected, ZoomNotFound, ZoomRetryable

log = get_logger(__name__)

#: Zoom's code for a meeting that does not exist (any more)
MEETING_NOT_FOUND = 3001


class Registrar:
    def __init__(self, zoom: ZoomApi, store: MeetingStore) -> None:
        self.zoom = zoom
        self.store = store

    async def run(self, claimed: jobs.Claimed) -> None:
        day_id = claimed.day_id
        snap = await self.store.registrant_snapshot(day_id)
        todo = plan_registrants(snap) if snap is not None else None
        if snap is None or todo is None or todo.empty:
            await self.store.finish(claimed)
            return
        added = 0
        if todo.forget:
            await self.store.drop_registrants(day_id, todo.forget)
        account_id, zoom_id = snap.account_id, snap.zoom_meeting_id
        if account_id is None or zoom_id is None:
            await self.store.finish(claimed)
            return
        try:
            if todo.registration is True:
                await self.zoom.update_meeting(
                    account_id, zoom_id, {"settings": registration_settings(True)}
                )
                await self.store.set_registration(day_id, zoom_id, True)
            for gone in todo.remove:
                with contextlib.suppress(ZoomNotFound):  # removed already, or meeting gone
                    await self.zoom.remove_registrant(account_id, zoom_id, gone.registrant_id)
                await self.store.drop_registrants(day_id, (gone,))
            if todo.registration is False:
                await self.zoom.update_meeting(
                    account_id, zoom_id, {"settings": registration_settings(False)}
                )
                await self.store.set_registration(day_id, zoom_id, False)
            for seat in todo.add:
                try:
                    made = await self.zoom.add_registrant(
                        account_id, zoom_id, email=seat.email, first_name=first_name_of(seat.email)
                    )
                except ZoomNotFound as exc:
                    if exc.code == MEETING_NOT_FOUND:
                        raise
                    # Zoom says the meeting takes no registrants: switch it on, then retry
                    await self.store.set_registration(day_id, zoom_id, False)
                    raise ZoomRetryable(f"registration was off at Zoom: {exc}", 404) from exc
                except ZoomNotConnected:
                    raise
                except ZoomFatal as exc:  # this person only (e.g. an e-mail Zoom refuses)
                    log.warning(
                        "zoom_registrant_refused",
                        day_id=str(day_id),
                        enrollment_id=str(seat.enrollment_id),
                        status=exc.status,
                        code=exc.code,
                    )
                    continue
                if await self.store.save_registrant(day_id, seat, zoom_id, made):
                    added += 1
        except ZoomNotFound as exc:
            if exc.code != MEETING_NOT_FOUND:
                raise
            # the meeting is gone at Zoom: forgotten, the sync makes a new one (R-ZOOM-3) and
            # arms this job again for it
            log.warning("zoom_registrants_meeting_gone", day_id=str(day_id))
            await self.store.meeting_gone(day_id, zoom_id)
        await self.store.finish(claimed)
        log.info(
            "zoom_registrants_synced",
            day_id=str(day_id),
            removed=len(todo.remove),
            added=added,
        )
