"""Zoom webhooks (R-ZOOM-4): verification, storing (duplicates absorbed), then processing."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from sqlalchemy import ColumnElement, delete, false, func, or_, select, union
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_shared.db import is_postgres, utcnow
from te_shared.logging import get_logger
from te_shared.outbox import add_message
from te_shared.rules import cloud_recording, training_module
from zoom_bridge import metrics
from zoom_bridge.accounts.service import deauthorize
from zoom_bridge.crypto import TokenCipher
from zoom_bridge.meetings import attendance, jobs, plan, store
from zoom_bridge.models import (
    CompanyReplica,
    OutboxRecord,
    RecordingInstance,
    WebhookEvent,
    ZoomAccount,
    ZoomMeeting,
)
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.webhooks import rules

log = get_logger(__name__)

MEETING_DELETED = "meeting.deleted"
MEETING_UPDATED = "meeting.updated"
MEETING_RECOVERED = "meeting.recovered"
#: out of Zoom's trash for good (its host's "Delete permanently", or Zoom after 7 days)
MEETING_PURGED = "meeting.permanently_deleted"
#: a registration ended at Zoom: cancelled by the host or the registrant, or denied by the host
REGISTRATION_ENDED = frozenset({"meeting.registration_cancelled", "meeting.registration_denied"})

#: Events the bridge acts on; anything else is acknowledged and ignored. Among the ignored:
#: the waiting-room events (``meeting.participant_joined_waiting_room``, ``_admitted``,
#: ``_left_waiting_room``): waiting is never attendance, and an admitted participant's
#: ``meeting.participant_joined`` follows.
HANDLED = frozenset(
    {
        *attendance.STAY_HALVES,
        "meeting.ended",
        MEETING_DELETED,
        MEETING_RECOVERED,
        MEETING_PURGED,
        MEETING_UPDATED,
        *REGISTRATION_ENDED,
        *rules.RECORDING_CAME,
        *rules.RECORDING_WENT,
        *rules.BATCHED,
        "app_deauthorized",
    }
)
URL_VALIDATION = "endpoint.url_validation"


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt at a stored webhook (a metrics label pair)."""

    event: str
    result: str  # metrics.PROCESSED | FAILED | GIVEN_UP


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def recording_origins(settings: ZoomBridgeSettings) -> list[str]:
    """Origins besides Zoom's hosts that recording links may point at: those of the Zoom this
    bridge is configured to talk to (the simulator in a local run; zoom.us in production,
    which the hosts already cover)."""
    urls = (
        settings.zoom_api_base_url,
        settings.zoom_oauth_base_url,
        settings.zoom_authorize_base_url,
    )
    return [o for o in (_origin(u) for u in urls) if o is not None]


async def connection_secrets(
    session: AsyncSession, cipher: TokenCipher, hint: str | None
) -> list[rules.Candidate]:
    """The Server-to-Server connections' own secret tokens for the Zoom account a body names
    (every connection's when it names none, as in a URL validation), read and decrypted. Each
    keeps whose it is: a webhook acts only on the meetings of its signer."""
    stmt = select(ZoomAccount.id, ZoomAccount.webhook_secret_enc).where(
        ZoomAccount.kind == "s2s", ZoomAccount.webhook_secret_enc.is_not(None)
    )
    if hint is not None:
        stmt = stmt.where(ZoomAccount.zoom_account_id == hint)
    found: list[rules.Candidate] = []
    for account_id, enc in (await session.execute(stmt)).all():
        try:
            found.append(rules.Candidate(cipher.decrypt(str(enc)), account_id))
        except InvalidToken:  # encrypted under another key: that connection must be redone
            log.warning("zoom_webhook_secret_unreadable", account_id=str(account_id))
    return found


def signing_secret(candidates: list[rules.Candidate], signer: rules.Signer) -> str:
    """The secret token of ``signer`` (to answer a URL validation as that app would)."""
    for candidate in candidates:
        if (candidate.account_id is None and signer.app) or (
            candidate.account_id in signer.account_ids
        ):
            return candidate.secret
    raise LookupError("the signer is not among the candidates")


def url_validation(secret: str, plain: str) -> dict[str, str]:
    encrypted = hmac.new(secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
    return {"plainToken": plain, "encryptedToken": encrypted}


def digest(body: dict[str, Any], signer: rules.Signer) -> str:
    """Identity of a notification: its signer, event and payload, and for a change whose
    payload carries no time of its own (:data:`rules.TIMELESS_CHANGES`) its ``event_ts`` too:
    a file trashed again after its recovery is notified with the first trash's payload, and is
    a change of its own. A retry re-sends the request as it was (``event_ts`` included), and a
    notification Zoom sends twice for one change (a second ``meeting.participant_joined``)
    carries the same payload: both are absorbed. The signer is part of it, so a body someone
    else signed first can never make Zoom's own delivery of it a "duplicate"."""
    identity: dict[str, Any] = {
        "signer": signer.as_json(),
        "event": body.get("event"),
        "payload": body.get("payload"),
    }
    if body.get("event") in rules.TIMELESS_CHANGES:
        identity["event_ts"] = body.get("event_ts")
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Received:
    """A verified webhook to store: its body, whose secret verified it, when it came."""

    body: dict[str, Any]
    signer: rules.Signer
    received_at: dt.datetime

    @property
    def digest(self) -> str:
        return digest(self.body, self.signer)


async def store_many(session: AsyncSession, received: list[Received]) -> list[bool]:
    """Store verified webhooks with one statement; for each, whether it was new (``False``: a
    duplicate of one stored before, or of an earlier one in the list)."""
    digests = [item.digest for item in received]
    rows: dict[str, dict[str, Any]] = {}
    for item, key in zip(received, digests, strict=True):
        rows.setdefault(
            key,
            {
                "digest": key,
                "event": str(item.body.get("event")),
                "body": item.body,
                "signed_by": item.signer.as_json(),
                "received_at": item.received_at,
                "processed": False,
                "attempts": 0,
                "next_attempt_at": item.received_at,
                "failed": False,
            },
        )
    insert = pg_insert if is_postgres(session) else sqlite_insert
    # the rows as parameters of the table's (Core) insert, which SQLAlchemy renders as batched
    # multi-row VALUES from one template ("insertmanyvalues"): one statement text for every
    # batch size, not a clause object per value (building those was 45% of the write)
    table: Any = WebhookEvent.__table__
    stmt = insert(table).on_conflict_do_nothing(index_elements=["digest"])
    result = await session.execute(stmt.returning(table.c.digest), list(rows.values()))
    new = set(result.scalars().all())
    answers = []
    for key in digests:
        answers.append(key in new)
        new.discard(key)  # a second copy in the same list is a duplicate
    return answers


#: a day's meeting and the Zoom account it lives on (the day's, unless made on an earlier one)
_HELD_ON = ZoomAccount.id == func.coalesce(ZoomMeeting.meeting_account_id, ZoomMeeting.account_id)


async def _meeting(
    session: AsyncSession, obj: dict[str, Any], signer: rules.Signer
) -> ZoomMeeting | None:
    """The meeting a webhook names, among those its signer covers only: the OAuth app's
    secret covers meetings on OAuth connections, a Server-to-Server connection's secret that
    connection's meetings. A Zoom meeting id alone never crosses companies. Within a batch,
    found once per meeting and signer (a storm's webhooks name few meetings)."""
    zoom_id = str(obj.get("id") or "")
    if not zoom_id:
        return None
    batch = _batch.get()
    memo = (zoom_id, signer)
    if batch is not None and memo in batch.meetings:
        return batch.meetings[memo]
    stmt = (
        select(ZoomMeeting)
        .join(ZoomAccount, _HELD_ON)
        .where(ZoomMeeting.zoom_meeting_id == zoom_id, _covered(signer))
    )
    found = (await session.execute(stmt)).scalars().first()
    if batch is not None:
        batch.meetings[memo] = found
    return found


def _covered(signer: rules.Signer) -> ColumnElement[bool]:
    """The Zoom accounts whose meetings ``signer``'s webhooks may name (:func:`_meeting`)."""
    covered = []
    if signer.app:
        covered.append(ZoomAccount.kind == "oauth")
    if signer.account_ids:
        covered.append(ZoomAccount.id.in_(signer.account_ids))
    return or_(false(), *covered)


async def _gone_meeting(
    session: AsyncSession, zoom_id: str, signer: rules.Signer
) -> ZoomMeeting | None:
    """The day whose meeting ``zoom_id`` was until its host deleted it at Zoom, among those
    ``signer`` covers (as :func:`_meeting`)."""
    stmt = (
        select(ZoomMeeting)
        .join(ZoomAccount, ZoomAccount.id == ZoomMeeting.gone_account_id)
        .where(ZoomMeeting.gone_zoom_meeting_id == zoom_id, _covered(signer))
    )
    return (await session.execute(stmt)).scalars().first()


@dataclass
class _Batch:
    """What a batch of webhooks shares: the joins and leaves it recorded, by day (their
    attendance is published once, at the end), and the meetings it found."""

    touched: dict[uuid.UUID, tuple[ZoomMeeting, set[str]]] = field(default_factory=dict)
    meetings: dict[tuple[str, rules.Signer], ZoomMeeting | None] = field(default_factory=dict)
    #: halves of stays not written yet: one insert for all of them (:meth:`write`), before
    #: anything else is done (an event of another kind, the end of the batch)
    segments: list[dict[str, Any]] = field(default_factory=list)
    #: False when each webhook runs in a savepoint of its own: its rows are written with it
    defer: bool = True

    async def write(self, session: AsyncSession) -> None:
        rows, self.segments = self.segments, []
        await attendance.record_many(session, rows)


_batch: ContextVar[_Batch | None] = ContextVar("zoom_webhook_batch", default=None)


async def process_batch(
    session: AsyncSession, settings: ZoomBridgeSettings, limit: int
) -> list[Outcome]:
    """Process up to ``limit`` due stored webhooks in one transaction (claimed ``FOR UPDATE
    SKIP LOCKED``, so other workers and replicas take other ones), in the order they came; the
    attendance their joins and leaves change is added up and published once per day at the
    end, not once per webhook. The batch runs in one savepoint; when one of its webhooks
    fails (say the database hiccups), the batch is rolled back to it and run again with each
    webhook in a savepoint of its own: the failed one is kept for a later attempt with
    backoff, and after ``zoom_webhook_max_attempts`` given up, kept with its error and logged,
    so it never blocks the ones behind it. The effects, the ``processed`` marks and the
    messages commit together."""
    now = utcnow()
    stmt = (
        select(WebhookEvent)
        .where(
            WebhookEvent.processed.is_(False),
            WebhookEvent.failed.is_(False),
            WebhookEvent.next_attempt_at <= now,
        )
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.received_at)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    events = list((await session.execute(stmt)).scalars())
    if not events:
        return []
    if is_postgres(session):
        await _lock_named_meetings(session, events)
    digests = [e.digest for e in events]
    try:
        async with session.begin_nested():  # the common case: one savepoint for the batch
            outcomes, batch = await _run(session, events, settings)
    except Exception as exc:
        # rolled back to before the batch: read the webhooks again (their rows were expired)
        # and run each in a savepoint of its own, so the failure stays with the one it belongs
        # to; the one that failed is not run again now, its failure counts as its attempt
        again = select(WebhookEvent).where(WebhookEvent.digest.in_(digests))
        await session.execute(again.execution_options(populate_existing=True))
        failed = {exc.index: exc.error} if isinstance(exc, _Failed) else {}
        outcomes, batch = await _run(session, events, settings, failed=failed)
    for _, (meeting, keys) in sorted(batch.touched.items(), key=lambda item: str(item[0])):
        await attendance.publish_touching(session, meeting, keys)  # days in order: see hold_day
    return outcomes


async def _lock_named_meetings(session: AsyncSession, events: list[WebhookEvent]) -> None:
    """Lock the meetings a batch's webhooks name, all at once and in day order, before any
    webhook is handled (PostgreSQL).

    A batch locks a day's meeting row where a webhook changes the meeting (ended, updated,
    deleted, recovered, its recordings) and where it publishes the day's attendance, at the
    end. Taken in the webhooks' order, two workers' batches naming two meetings in opposite
    orders each held one and waited for the other: PostgreSQL aborted one as a deadlock after
    a second, and its whole batch was tried again later. Taken here in one order, every later
    lock of these rows is one the transaction holds already. A webhook names a day's meeting by
    its Zoom id (its current one, or the one deleted at Zoom it remembers) or, in a bulk
    recording notification, by instances; each is looked for among the meetings its signer
    covers, as the handlers find them. A bulk notification naming more instances than one
    lookup takes is left to lock its days in their order (:func:`_recordings_in_bulk`)."""
    ids: dict[rules.Signer, set[str]] = {}
    instances: dict[rules.Signer, set[str]] = {}
    for event in events:
        payload = event.body.get("payload")
        obj = payload.get("object") if isinstance(payload, dict) else None
        if not isinstance(obj, dict):
            continue
        signer = rules.Signer.from_json(event.signed_by)
        if event.event in rules.BATCHED:
            named = instances.setdefault(signer, set())
            named.update(uuid for uuid, _ in rules.bulk_recordings(event.event, obj))
        elif zoom_id := str(obj.get("id") or ""):
            ids.setdefault(signer, set()).add(zoom_id)
    days: list[Any] = []
    for signer, named in ids.items():
        listed = sorted(named)
        days.append(
            select(ZoomMeeting.day_id)
            .join(ZoomAccount, _HELD_ON)
            .where(ZoomMeeting.zoom_meeting_id.in_(listed), _covered(signer))
        )
        days.append(
            select(ZoomMeeting.day_id)
            .join(ZoomAccount, ZoomAccount.id == ZoomMeeting.gone_account_id)
            .where(ZoomMeeting.gone_zoom_meeting_id.in_(listed), _covered(signer))
        )
    for signer, named in instances.items():
        if 0 < len(named) <= INSTANCES_PER_LOOKUP:
            days.append(
                select(RecordingInstance.day_id)
                .join(ZoomMeeting, ZoomMeeting.day_id == RecordingInstance.day_id)
                .join(ZoomAccount, _HELD_ON)
                .where(RecordingInstance.instance_uuid.in_(sorted(named)), _covered(signer))
            )
    if not days:
        return
    await session.execute(
        select(ZoomMeeting.day_id)
        .where(ZoomMeeting.day_id.in_(union(*days)))
        .order_by(ZoomMeeting.day_id)
        .with_for_update()
    )


class _Failed(Exception):
    """The webhook at ``index`` of a batch failed with ``error``."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


async def _run(
    session: AsyncSession,
    events: list[WebhookEvent],
    settings: ZoomBridgeSettings,
    *,
    failed: dict[int, Exception] | None = None,
) -> tuple[list[Outcome], _Batch]:
    """Handle ``events`` in order: together (a failure leaves the whole batch, as
    :class:`_Failed`), or, given the failures of a first run (``failed``), each in a savepoint
    of its own, the ones that failed recorded as failed attempts."""
    batch = _Batch(defer=failed is None)
    token = _batch.set(batch)
    try:
        outcomes = []
        for index, event in enumerate(events):
            if index % 10 == 9:
                await asyncio.sleep(0)  # requests waiting on the event loop get their turn
            if failed is None:
                try:
                    await _handle(session, event, settings)
                except Exception as exc:
                    raise _Failed(index, exc) from exc
                outcomes.append(_processed(event))
            elif index in failed:
                outcomes.append(_attempt_failed(event, failed[index], settings))
            else:
                outcomes.append(await _process(session, event, settings))
        # the batch's halves of stays, one insert (a failure here: each runs on its own)
        await batch.write(session)
        return outcomes, batch
    finally:
        _batch.reset(token)


async def _process(
    session: AsyncSession, event: WebhookEvent, settings: ZoomBridgeSettings
) -> Outcome:
    try:
        async with session.begin_nested():
            await _handle(session, event, settings)
    except Exception as exc:
        await session.refresh(event)
        return _attempt_failed(event, exc, settings)
    return _processed(event)


def _attempt_failed(event: WebhookEvent, exc: Exception, settings: ZoomBridgeSettings) -> Outcome:
    """A failed attempt: kept for a later one with backoff, or given up when the attempts
    are spent."""
    label = metrics.event_label(event.event, HANDLED)
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


def _processed(event: WebhookEvent) -> Outcome:
    event.attempts += 1
    event.processed = True
    event.processed_at = utcnow()
    return Outcome(metrics.event_label(event.event, HANDLED), metrics.PROCESSED)


async def prune(session: AsyncSession, retention_days: float) -> int:
    """Forget processed webhooks older than the retention period (failed ones stay)."""
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    result = await session.execute(
        delete(WebhookEvent).where(
            WebhookEvent.processed.is_(True), WebhookEvent.processed_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _handle(session: AsyncSession, event: WebhookEvent, settings: ZoomBridgeSettings) -> None:
    payload: dict[str, Any] = event.body.get("payload") or {}
    obj = payload.get("object")
    obj = obj if isinstance(obj, dict) else {}
    signer = rules.Signer.from_json(event.signed_by)
    batch = _batch.get()
    if batch is not None and event.event not in attendance.STAY_HALVES:
        await batch.write(session)  # what came before is written before anything else is done
    if event.event == "app_deauthorized":
        removed = await deauthorize(
            session,
            str(payload.get("user_id", "")),
            str(payload.get("account_id", "")),
            oauth=signer.app,
            connections=signer.account_ids,
        )
        log.info("zoom_deauthorized", removed=removed)
        if batch is not None:
            batch.meetings.clear()  # meetings found before may be gone with the connection
        return
    if event.event in rules.BATCHED:
        await _recordings_in_bulk(session, event, obj, signer)
        return
    meeting = await _meeting(session, obj, signer)
    if event.event == MEETING_RECOVERED:
        await _recovered_at_zoom(session, meeting, str(obj.get("id") or ""), signer, event)
        if batch is not None:
            batch.meetings.clear()  # the meeting taken back is found by its id from now on
        return
    if event.event == MEETING_PURGED:
        await _purged_at_zoom(session, meeting, str(obj.get("id") or ""), signer, event)
        if batch is not None:
            batch.meetings.clear()  # a meeting found before may be forgotten now
        return
    if meeting is None:
        log.info("zoom_webhook_unknown_meeting", zoom_event=event.event)
        return
    if event.event in attendance.STAY_HALVES:
        stay = attendance.read_event(event.event, obj)
        if stay is None:
            log.info("zoom_webhook_no_stay", zoom_event=event.event, day_id=str(meeting.day_id))
            return
        if batch is None:
            key = await attendance.record(session, meeting, stay)
            await attendance.publish(session, meeting, touching=key)
            return
        if batch.defer:  # written with the batch's others, in one insert
            batch.segments.append(attendance.segment_row(meeting, stay))
            key = stay.key
        else:
            key = await attendance.record(session, meeting, stay)
        # published once for the whole batch (process_batch)
        batch.touched.setdefault(meeting.day_id, (meeting, set()))[1].add(key)
    elif event.event == "meeting.ended":
        meeting.ended = True
        instance = attendance.text_value(obj.get("uuid"))
        await attendance.ended(
            session, meeting, instance, attendance.parse_time(obj.get("end_time"))
        )
        # the day's final attendance: from Zoom's report with the administrator role, from
        # the webhooks' joins with the participant role (reconcile.run)
        await jobs.arm(
            session, meeting.day_id, jobs.RECONCILE, delay=settings.zoom_reconcile_delay_seconds
        )
    elif event.event == MEETING_DELETED:
        await _deleted_at_zoom(session, meeting, _event_ts(event), str(obj.get("id") or ""))
        if batch is not None:
            batch.meetings.clear()  # the meeting found before is forgotten now
    elif event.event == MEETING_UPDATED:
        await _updated_at_zoom(session, meeting, obj)
    elif event.event in REGISTRATION_ENDED:
        await _registration_ended_at_zoom(session, meeting, event.event, obj)
    elif event.event in rules.RECORDING_CAME | rules.RECORDING_WENT:
        await _recording(session, meeting, event, obj, settings)


def _kept_by_the_bridge(meeting: ZoomMeeting) -> bool:
    """Whether a change made at Zoom to the day's stored meeting (moved, a registration
    ended) is undone: the meeting is made and wanted (one being deleted or made belongs to
    its sync and registrants job) and still to be held (:func:`plan.still_to_be_held`)."""
    if meeting.desired != "present" or meeting.status != c.MeetingStatus.CREATED.value:
        return False
    return plan.still_to_be_held(meeting.ended, meeting.end, utcnow())


async def _updated_at_zoom(
    session: AsyncSession, meeting: ZoomMeeting, changed: dict[str, Any]
) -> None:
    """``meeting.updated`` for a day's stored meeting: when the change moved what the bridge
    holds the meeting to (:func:`plan.drifted`: its time, topic, agenda, recording or
    registration) while the day is still to be held, the day's sync patches it back (the day's
    time is the one users see, and Zoom mails registrants the meeting's). The bridge's own
    patches notify too and move nothing, so they change nothing (no ping-pong)."""
    await store.lock(session, meeting)  # a job of the day's may be storing what Zoom did
    if meeting.zoom_meeting_id != str(changed.get("id") or ""):
        return  # a job stored another meeting for the day meanwhile
    if not _kept_by_the_bridge(meeting):
        return
    snap = await store.read_snapshot(session, meeting.day_id)
    wanted = plan.meeting_body(snap) if snap is not None else None
    if wanted is None:
        return
    moved = plan.drifted(wanted, changed)
    if not moved:
        return
    log.warning("zoom_meeting_changed_at_zoom", day_id=str(meeting.day_id), fields=list(moved))
    meeting.synced_version = 0  # Zoom no longer holds any version of the day: patch it
    await jobs.arm(session, meeting.day_id, jobs.SYNC)


async def _registration_ended_at_zoom(
    session: AsyncSession, meeting: ZoomMeeting, kind: str, obj: dict[str, Any]
) -> None:
    """``meeting.registration_cancelled`` or ``_denied`` for a stored registration of the day's
    meeting: the host ended it in Zoom's web portal, or the registrant with the link of Zoom's
    confirmation e-mail, and the seat holder's personal link admits nobody. While the day is
    still to be held, the registration is made again (R-ZOOM-3: every seat holder has a
    personal link; the platform's enrollment says who holds a seat, and taking someone out is
    cancelling it there), as a meeting deleted or moved at Zoom is. The bridge's own removals
    notify too and name a registration no longer stored: nothing is done. A meeting held, or
    whose day is over, keeps its registrations: its joins were matched by them."""
    if not _kept_by_the_bridge(meeting):
        return
    registrant = obj.get("registrant")
    registrant_id = attendance.text_value(
        registrant.get("id") if isinstance(registrant, dict) else None
    )
    if registrant_id and await store.forget_registration(session, meeting, registrant_id):
        log.warning("zoom_registration_ended_at_zoom", day_id=str(meeting.day_id), zoom_event=kind)


async def _deleted_at_zoom(
    session: AsyncSession, meeting: ZoomMeeting, at: int, zoom_id: str
) -> None:
    """``meeting.deleted`` for a day's stored meeting: someone deleted it at Zoom (its host, in
    Zoom's web portal), and the day's join link leads nowhere. While the day is still to be
    held it is forgotten and the day's sync makes a new one (R-ZOOM-3), announced as any new
    meeting is; a meeting held, or whose day is over, stays as stored. The bridge's own
    deletions notify too: the day no longer wants a meeting (it was deleted, or is no zoom
    day), or the deleted meeting is no longer the stored one (a duplicate, a day moved to
    another account), and nothing is done. A deletion sent before a recovery already applied
    (Zoom delivers in no order) changes nothing: the meeting is back. The day's row is read
    again locked first: a job may just have stored another meeting for the day (the deleted
    one was the day's until then), and that one was not deleted."""
    await store.lock(session, meeting)  # a job of the day's may be storing what Zoom did
    if meeting.zoom_meeting_id != zoom_id:
        log.info("zoom_meeting_deleted_no_longer_the_days", day_id=str(meeting.day_id))
        return
    if not rules.notified_after(at, meeting.presence_notified_at):
        log.info("zoom_meeting_deleted_before_recovered", day_id=str(meeting.day_id))
        return
    meeting.presence_notified_at = at
    if meeting.desired != "present":
        return
    if not plan.still_to_be_held(meeting.ended, meeting.end, utcnow()):
        log.info("zoom_meeting_deleted_at_zoom_kept", day_id=str(meeting.day_id))
        return
    log.warning("zoom_meeting_deleted_at_zoom", day_id=str(meeting.day_id))
    await store.forget_gone(session, meeting)


async def _recovered_at_zoom(
    session: AsyncSession,
    current: ZoomMeeting | None,
    zoom_id: str,
    signer: rules.Signer,
    event: WebhookEvent,
) -> None:
    """``meeting.recovered`` for a meeting its host deleted at Zoom and took back out of Zoom's
    trash (a deletion by mistake, undone). While its day has no other meeting, made or being
    made (its sync still waits: Zoom's daily limit, an outage), the day takes it back
    (:func:`plan.takes_back`): the links people had work again and no second meeting is
    made. Otherwise it is not the day's meeting any more (the day has its new one, or wants
    none) and is left as its host recovered it: removing what someone chose to recover is not
    the bridge's to do; a warning names the day.

    Zoom's ``event_ts`` orders a recovery and the deletions of the same meeting: one delivered
    before the deletion it undid (``current``: the day still holds the meeting) is recorded, so
    that deletion changes nothing when it comes; one older than the deletion last applied
    changes nothing."""
    at = _event_ts(event)
    if current is not None:
        await store.lock(session, current)
        if current.zoom_meeting_id == zoom_id:
            if rules.notified_after(at, current.presence_notified_at):
                current.presence_notified_at = at
            return
        # a job forgot it meanwhile (it found it deleted at Zoom): it is the day's gone one
    meeting = await _gone_meeting(session, zoom_id, signer) if zoom_id else None
    if meeting is None:
        log.info("zoom_webhook_unknown_meeting", zoom_event=MEETING_RECOVERED)
        return
    await store.lock(session, meeting)
    if meeting.gone_zoom_meeting_id != zoom_id:
        return  # no longer remembered as the day's (taken back, or purged, meanwhile)
    if not rules.notified_after(at, meeting.presence_notified_at):
        log.info("zoom_meeting_recovered_before_deleted", day_id=str(meeting.day_id))
        return
    if not plan.takes_back(
        desired=meeting.desired,
        has_meeting=meeting.zoom_meeting_id is not None,
        creating=meeting.create_account_id is not None,
        account_id=meeting.account_id,
        gone_account_id=meeting.gone_account_id,
        ended=meeting.ended,
        end=meeting.end,
        now=utcnow(),
    ):
        log.warning("zoom_meeting_recovered_not_taken_back", day_id=str(meeting.day_id))
        return
    log.info("zoom_meeting_recovered_taken_back", day_id=str(meeting.day_id))
    meeting.presence_notified_at = at
    await store.take_back(session, meeting)


async def _purged_at_zoom(
    session: AsyncSession,
    current: ZoomMeeting | None,
    zoom_id: str,
    signer: rules.Signer,
    event: WebhookEvent,
) -> None:
    """``meeting.permanently_deleted``: the meeting left Zoom's trash for good, and nothing can
    bring it back. A day whose meeting it still is learns here that it is gone, as from
    ``meeting.deleted`` (whose notice was lost, or is still to come: Zoom retries for hours);
    a day that remembers it as gone forgets it, since no recovery can come for it any more."""
    if current is not None:
        await _deleted_at_zoom(session, current, _event_ts(event), zoom_id)
    meeting = current or (await _gone_meeting(session, zoom_id, signer) if zoom_id else None)
    if meeting is None:
        log.info("zoom_webhook_unknown_meeting", zoom_event=MEETING_PURGED)
        return
    if current is None:
        await store.lock(session, meeting)
    if meeting.gone_zoom_meeting_id == zoom_id:
        meeting.gone_zoom_meeting_id = meeting.gone_account_id = None
        log.info("zoom_meeting_purged_at_zoom", day_id=str(meeting.day_id))


def safe_recording_link(url: object, settings: ZoomBridgeSettings) -> bool:
    """R-ZOOM-7: an ``https`` link on Zoom's own hosts (or the configured Zoom's origin)."""
    return rules.is_zoom_link(
        url, hosts=settings.zoom_recording_hosts, origins=recording_origins(settings)
    )


async def _recording(
    session: AsyncSession,
    meeting: ZoomMeeting,
    event: WebhookEvent,
    obj: dict[str, Any],
    settings: ZoomBridgeSettings,
) -> None:
    """R-ZOOM-7: a day's cloud recording files, as Zoom notifies them.

    Files that come (``recording.completed``, ``.recovered``) are attached for the
    administrator role while the training module is enabled (as catalog announced it; its
    default while catalog never did, so a company that never saved settings loses no
    recording); a file whose link is not an https link on Zoom's own hosts is never stored.
    Each file is typed (``kind``: video, audio, chat, transcript, ...) and its play link
    carries the recording's passcode (``?pwd=``), or it would ask for it.

    Files that go (``recording.trashed`` by a host or the account's retention policy,
    ``recording.deleted``) lead nowhere any more and are taken off the day, whatever the role
    and module. Zoom's ``event_ts`` orders them (:func:`rules.recordings_after`). Each change
    of the files is announced whole (``RecordingsChanged``, a version higher each time)."""
    raw = obj.get("recording_files")
    given = [
        {**f, "id": key}
        for f in (raw if isinstance(raw, list) else [])
        if isinstance(f, dict) and (key := attendance.text_value(f.get("id"), 200)) is not None
    ]
    instance = attendance.text_value(obj.get("uuid"), 200)
    if event.event in rules.RECORDING_CAME:
        company = await session.get(CompanyReplica, meeting.company_id)
        training = training_module(company.training_module_enabled if company else None)
        if not cloud_recording(await attendance.role_of(session, meeting), training):
            log.info("zoom_recording_not_attached", day_id=str(meeting.day_id))
            return
        unsafe = [f for f in given if not safe_recording_link(f.get("play_url"), settings)]
        if unsafe:
            log.warning(
                "zoom_recording_link_refused", day_id=str(meeting.day_id), files=len(unsafe)
            )
        passcode = attendance.text_value(obj.get("recording_play_passcode"), 200)
        listed: list[dict[str, Any]] = [
            {
                "id": str(f["id"]),
                "file_type": str(f.get("file_type", "")),
                "recording_type": str(f.get("recording_type", "")),
                "kind": c.recording_kind(f.get("file_type"), f.get("recording_type")).value,
                "play_url": rules.play_link(str(f["play_url"]), passcode),
                "recording_start": f.get("recording_start"),
                "recording_end": f.get("recording_end"),
                "instance": attendance.text_value(f.get("meeting_id"), 200) or instance,
            }
            for f in given
            if f not in unsafe
        ]
        if not listed:
            return
    else:
        listed = [{"id": str(f["id"])} for f in given]
    await _apply_recordings(
        session, meeting, event.event, _event_ts(event), listed, instance, str(obj.get("id"))
    )


#: meeting instances looked up in one statement (a bulk notification may name many)
INSTANCES_PER_LOOKUP = 500


async def _recordings_in_bulk(
    session: AsyncSession, event: WebhookEvent, obj: dict[str, Any], signer: rules.Signer
) -> None:
    """R-ZOOM-7: a host trashed, recovered or deleted several meetings' recordings at once in
    Zoom's web portal (``recording.batch_trashed``, ``.batch_recovered``, ``.batch_deleted``).
    The notification names meeting instances (and file ids), no meeting ids: each instance is
    found among the days' held instances its signer covers, and its files change as the single
    event would change them (:data:`rules.BATCHED`); recovered files come back as they were
    when trashed. Days in order, so two workers lock them in the same order."""
    single = rules.BATCHED[event.event]
    named = dict(rules.bulk_recordings(event.event, obj))
    uuids = list(named)
    found: list[tuple[ZoomMeeting, str]] = []
    for start in range(0, len(uuids), INSTANCES_PER_LOOKUP):
        chunk = uuids[start : start + INSTANCES_PER_LOOKUP]
        stmt = (
            select(ZoomMeeting, RecordingInstance.instance_uuid)
            .join(RecordingInstance, RecordingInstance.day_id == ZoomMeeting.day_id)
            .join(ZoomAccount, _HELD_ON)
            .where(RecordingInstance.instance_uuid.in_(chunk), _covered(signer))
        )
        found.extend((row[0], row[1]) for row in await session.execute(stmt))
    if len(found) < len(uuids):
        log.info(
            "zoom_webhook_unknown_instances", zoom_event=event.event, count=len(uuids) - len(found)
        )
    at = _event_ts(event)
    for meeting, instance in sorted(found, key=lambda pair: (str(pair[0].day_id), pair[1])):
        listed = [{"id": key} for key in named[instance]]
        await _apply_recordings(
            session, meeting, single, at, listed, instance, meeting.zoom_meeting_id or ""
        )


async def _remember_instances(
    session: AsyncSession, day_id: uuid.UUID, files: Sequence[dict[str, Any]]
) -> None:
    instances = sorted({f["instance"] for f in files if isinstance(f.get("instance"), str)})
    if not instances:
        return
    insert = pg_insert if is_postgres(session) else sqlite_insert
    table: Any = RecordingInstance.__table__
    rows = [{"instance_uuid": i, "day_id": day_id} for i in instances if 0 < len(i) <= 200]
    await session.execute(insert(table).values(rows).on_conflict_do_nothing())


def _event_ts(event: WebhookEvent) -> int:
    sent_at = event.body.get("event_ts")
    return sent_at if isinstance(sent_at, int) and not isinstance(sent_at, bool) else 0


async def _apply_recordings(
    session: AsyncSession,
    meeting: ZoomMeeting,
    event: str,
    at: int,
    listed: list[dict[str, Any]],
    instance: str | None,
    zoom_id: str,
) -> None:
    """One recording notification's change of the day's files (:func:`rules.recordings_after`),
    announced when the files shown changed."""
    # one change of the day's recordings at a time (two workers, two notifications): the row
    # is read again, locked; what this batch changed on it is written first, or the read
    # would drop it (a meeting.ended, or another recording change, before this one)
    await store.lock(session, meeting)
    before = rules.Recordings(
        tuple(meeting.recordings or []),
        dict(meeting.recordings_gone or {}),
        dict(meeting.recordings_trashed or {}),
        dict(meeting.recordings_came or {}),
        dict(meeting.recordings_instances_gone or {}),
    )
    after = rules.recordings_after(before, event, at, listed, instance)
    if after is None:
        return
    meeting.recordings = list(after.files)
    meeting.recordings_gone = dict(after.gone)
    meeting.recordings_trashed = dict(after.trashed)
    meeting.recordings_came = dict(after.came)
    meeting.recordings_instances_gone = dict(after.instances_gone)
    if not rules.files_changed(before, after):
        return  # a redelivery: its instances were remembered with its files
    if event in rules.RECORDING_CAME:  # the instances a bulk notification may name later
        await _remember_instances(session, meeting.day_id, after.files)
    meeting.recordings_version = (meeting.recordings_version or 0) + 1
    if event in rules.RECORDING_WENT:
        log.warning("zoom_recording_gone_at_zoom", day_id=str(meeting.day_id), zoom_event=event)
    add_message(
        session,
        OutboxRecord,
        c.RecordingsChanged(
            company_id=meeting.company_id,
            day_id=meeting.day_id,
            session_id=meeting.session_id,
            event_id=meeting.event_id,
            zoom_meeting_id=meeting.zoom_meeting_id or zoom_id,
            version=meeting.recordings_version,
            recordings=[
                c.RecordingFile(
                    file_type=r["file_type"],
                    play_url=r["play_url"],
                    kind=c.RecordingKind(r["kind"]),
                    recording_start=attendance.parse_time(r.get("recording_start")),
                    recording_end=attendance.parse_time(r.get("recording_end")),
                )
                for r in after.files
            ],
        ),
    )
