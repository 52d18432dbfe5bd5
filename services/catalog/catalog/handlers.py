"""Messages catalog consumes (meeting state, recordings and accounts from the zoom bridge;
enrollments from registration).

Idempotent through the inbox; stale meeting states are ignored: a state is applied only when its
``version`` (the day version it reflects) is at least the one already shown. Messages for days that
no longer exist (or of another company) are dropped.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.company.service import get_settings
from catalog.models import Day, EnrollmentSeat, ZoomAccountReplica
from catalog.validation import link_refusal
from te_shared import contracts as c
from te_shared import rules
from te_shared.inbox import Consumers
from te_shared.logging import get_logger
from te_shared.replica import Newest, keep_newest
from te_shared.topology import CATALOG

consumers = Consumers(CATALOG)
log = get_logger(__name__)


async def _day(
    session: AsyncSession, msg: c.MeetingData | c.RecordingAvailable | c.RecordingsChanged
) -> Day | None:
    return (
        await session.scalars(
            select(Day)
            .where(Day.id == msg.day_id, Day.company_id == msg.company_id)
            .with_for_update()
        )
    ).one_or_none()


def _meeting_update(msg: c.MeetingData) -> tuple[Any, dict[str, Any]]:
    """One conditional ``UPDATE`` (no read first: it is on the path from a zoom day to its
    join link, and with the inbox record it is the message's one statement): the state is
    applied to the company's zoom day unless a newer one is shown: a newer day version, or a
    later announcement of the same one (``seq``: each kind of message comes on a queue of its
    own, so a meeting deleted at Zoom and made again may be consumed in either order)."""
    values: dict[str, Any] = {
        "meeting_version": msg.version,
        "meeting_seq": msg.seq,
        "meeting_status": msg.state.value,
        "meeting_error": _error_of(msg),
        "meeting_join_url": rules.meeting_join_link(msg.state, msg.join_url),
    }
    if msg.zoom_meeting_id:
        values["meeting_zoom_id"] = msg.zoom_meeting_id
    return (
        _meeting_statement(frozenset(values)),
        {**values, "day": msg.day_id, "company": msg.company_id},
    )


@functools.cache
def _meeting_statement(columns: frozenset[str]) -> Any:
    """:func:`_meeting_update`'s ``UPDATE`` of these ``columns``, built once for each set of
    them (the day's keys and every value bound): building it for every message cost more CPU
    than running it."""
    version: Any = bindparam("meeting_version")
    seq: Any = bindparam("meeting_seq")
    return (
        update(Day)
        .where(
            Day.id == bindparam("day"),
            Day.company_id == bindparam("company"),
            Day.format == c.DayFormat.ZOOM.value,
            or_(
                Day.meeting_version < version,
                and_(Day.meeting_version == version, Day.meeting_seq <= seq),
            ),
        )
        .values({name: bindparam(name) for name in sorted(columns)})
        .execution_options(synchronize_session=False)
    )


def _error_of(msg: c.MeetingData) -> str | None:
    """What the day shows besides its meeting's state: why Zoom refused it, or (R-ZOOM-8) why
    it has no meeting yet and when the bridge tries again."""
    if isinstance(msg, c.MeetingFailed):
        return msg.error
    if isinstance(msg, c.MeetingPending):
        return msg.reason
    return None


# each meeting state is one statement: with its inbox record, one round trip (te_shared.inbox)
for _state in c.MEETING_STATES:
    consumers.statement(_state)(_meeting_update)


@consumers.handler(c.RecordingsChanged)
async def on_recordings_changed(session: AsyncSession, msg: c.RecordingsChanged) -> None:
    """R-ZOOM-7: the day's recording files at Zoom, whole: what is no longer listed (trashed
    or deleted at Zoom, its links lead nowhere) goes; what is listed stays if it was attached,
    and is attached while the module is enabled for an administrator-role day (catalog owns
    the training module, so it decides; attached ones stay when it is disabled later). Only
    the newest version counts: an older one delivered late changes nothing. Only plain
    http(s) links (R-DAY-2) are ever kept, as a second line behind the bridge's rule."""
    day = await _day(session, msg)
    if day is None or msg.version <= day.recordings_version:
        return
    settings = await get_settings(session, msg.company_id)
    attachable = rules.cloud_recording(day.zoom_account_role, settings.training_module_enabled)
    attached = {r.get("play_url") for r in day.recordings or []}
    files = [r.model_dump(mode="json") for r in msg.recordings if link_refusal(r.play_url) is None]
    day.recordings = [r for r in files if r["play_url"] in attached or attachable]
    day.recordings_version = msg.version


@consumers.handler(c.RecordingAvailable)
async def on_recording_available(session: AsyncSession, msg: c.RecordingAvailable) -> None:
    """R-ZOOM-7, from a bridge older than ``RecordingsChanged`` (one queued before the
    upgrade): new files are attached to an administrator-role day while the module is
    enabled, unless the day already shows a ``RecordingsChanged``, which says it all. Only
    plain http(s) links (R-DAY-2) are ever kept."""
    day = await _day(session, msg)
    if day is None or day.recordings_version > 0:
        return
    settings = await get_settings(session, msg.company_id)
    if not rules.cloud_recording(day.zoom_account_role, settings.training_module_enabled):
        log.info("recording_not_attached", day_id=str(day.id))
        return
    files = [r.model_dump(mode="json") for r in msg.recordings if link_refusal(r.play_url) is None]
    known = {(r.get("file_type"), r.get("play_url")) for r in day.recordings or []}
    new = [r for r in files if (r["file_type"], r["play_url"]) not in known]
    if new:
        day.recordings = [*(day.recordings or []), *new]


@keep_newest(consumers, c.EnrollmentChanged, EnrollmentSeat)
def on_enrollment_changed(msg: c.EnrollmentChanged) -> Newest:
    """Seats taken per session (R-SES-8, R-SES-9); stale versions are ignored."""
    return Newest(
        key={"enrollment_id": msg.enrollment_id},
        version=msg.version,
        values={
            "company_id": msg.company_id,
            "session_id": msg.session_id,
            "status": msg.status.value,
        },
    )


@keep_newest(consumers, c.ZoomAccountChanged, ZoomAccountReplica)
def on_zoom_account_changed(msg: c.ZoomAccountChanged) -> Newest:
    """R-DAY-9: the company's Zoom accounts, with their role and whether they need
    reconnecting; stale versions are ignored. Days already using the account are not rewritten
    (see the README)."""
    return Newest(
        key={"account_id": msg.account_id},
        version=msg.version,
        values={
            "company_id": msg.company_id,
            "role": msg.role.value,
            "connected": msg.connected,
            "needs_reconnect": msg.needs_reconnect,
        },
    )
