"""zoom-bridge's tables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from te_shared.db import UTCDateTime, make_metadata
from te_shared.idempotency import IdempotencyRecordMixin
from te_shared.inbox import InboxRecordMixin
from te_shared.outbox import OutboxRecordMixin
from te_shared.replica import CompanyReplicaMixin


class Base(DeclarativeBase):
    metadata = make_metadata()


class OutboxRecord(OutboxRecordMixin, Base):
    pass


class InboxRecord(InboxRecordMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass


class CompanyReplica(CompanyReplicaMixin, Base):
    pass


class ZoomAccount(Base):
    """A connected Zoom account (OAuth user or Server-to-Server app). Tokens are encrypted."""

    __tablename__ = "zoom_accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # oauth | s2s
    role: Mapped[str] = mapped_column(String(20))
    zoom_user_id: Mapped[str] = mapped_column(String(100))
    zoom_account_id: Mapped[str] = mapped_column(String(100), index=True)
    zoom_user_email: Mapped[str] = mapped_column(String(320))
    access_token_enc: Mapped[str | None] = mapped_column(Text())
    refresh_token_enc: Mapped[str | None] = mapped_column(Text())
    s2s_client_id: Mapped[str | None] = mapped_column(String(200))
    s2s_client_secret_enc: Mapped[str | None] = mapped_column(Text())
    #: a Server-to-Server app's own webhook secret token (encrypted), verifying the webhooks
    #: of its Zoom account
    webhook_secret_enc: Mapped[str | None] = mapped_column(Text())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    connected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Zoom refused the refresh token (``invalid_grant``): no call is tried through the
    #: connection until it is connected again (the same Zoom user), which clears it
    needs_reconnect: Mapped[bool] = mapped_column(Boolean(), default=False)
    #: the scopes Zoom granted (space-separated, from the token answer): account-level ones
    #: (``...:admin``) mean an app installed for the whole Zoom account
    scopes: Mapped[str | None] = mapped_column(Text(), nullable=True)


class OAuthState(Base):
    """A pending authorization: single use, bound to the company and the admin."""

    __tablename__ = "zoom_oauth_states"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    admin_user_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ZoomMeeting(Base):
    """The desired and actual Zoom meeting of one zoom day."""

    __tablename__ = "zoom_meetings"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100), index=True)
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    version: Mapped[int] = mapped_column(Integer())
    desired: Mapped[str] = mapped_column(String(10))  # present | absent
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    organizer_user_id: Mapped[str | None] = mapped_column(String(100))
    auto_recording: Mapped[bool] = mapped_column(Boolean(), default=False)
    topic: Mapped[str] = mapped_column(String(300), default="")
    start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[str] = mapped_column(String(20))  # pending | created | failed | deleted
    synced_version: Mapped[int] = mapped_column(Integer(), default=0)
    zoom_meeting_id: Mapped[str | None] = mapped_column(String(40), index=True)
    #: the account the Zoom meeting lives on (the day's account may change later)
    meeting_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    #: set (committed) before a create is sent to this account: while set, Zoom may hold a
    #: meeting whose answer was lost, so look it up first. Cleared when the create is answered
    #: (made or refused) and no earlier one went unanswered, else by the verification job
    create_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    #: when the create that got no answer was sent
    create_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: the lookup-then-create never runs before this (sent + ZOOM_CREATE_SETTLE_SECONDS): Zoom
    #: may still be making the meeting
    create_settles_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    join_url: Mapped[str | None] = mapped_column(Text())
    start_url_enc: Mapped[str | None] = mapped_column(Text())
    error: Mapped[str | None] = mapped_column(Text())
    ended: Mapped[bool] = mapped_column(Boolean(), default=False)
    #: the Zoom meeting takes registrants (created or patched with ``approval_type`` 0, for
    #: the administrator role; R-ZOOM-3)
    registration: Mapped[bool] = mapped_column(Boolean(), default=False)
    #: R-ZOOM-7: the cloud recording files Zoom holds for the meeting (not trashed, not deleted)
    recordings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON())
    #: grows with each change of ``recordings`` (``RecordingsChanged.version``)
    recordings_version: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    #: files that went (trashed or deleted at Zoom): file id -> the webhook's ``event_ts``, so
    #: a notification older than the file's going (a late retry) does not bring it back
    recordings_gone: Mapped[dict[str, int] | None] = mapped_column(JSON())
    #: files in Zoom's trash as they were shown (file id -> the file): Zoom's bulk recovery
    #: names files by id only, and they come back as they were
    recordings_trashed: Mapped[dict[str, dict[str, Any]] | None] = mapped_column(JSON())
    #: files recovered by id (a bulk recovery) before anything here showed them: file id ->
    #: the webhook's ``event_ts``, so that the trash it undid, delivered later, takes nothing
    recordings_came: Mapped[dict[str, int] | None] = mapped_column(JSON())
    #: recorded instances whose whole recording went (Zoom's bulk trash names instances
    #: only): instance uuid -> ``event_ts``, so that their files notified before stay gone
    recordings_instances_gone: Mapped[dict[str, int] | None] = mapped_column(JSON())
    #: the Zoom meeting its host deleted at Zoom while the day was to be held, and its account:
    #: recovered from Zoom's trash before the day has a new one, it is the day's again
    gone_zoom_meeting_id: Mapped[str | None] = mapped_column(String(40), index=True)
    gone_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    #: Zoom's ``event_ts`` of the last ``meeting.deleted`` or ``meeting.recovered`` applied to
    #: the day's meeting: Zoom delivers in no order, and an older one changes nothing
    presence_notified_at: Mapped[int | None] = mapped_column(BigInteger())
    #: the ``seq`` of the last ``Meeting*`` message announced for the day
    announced: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")


class ZoomJob(Base):
    """Durable work towards Zoom: ``sync`` a day's meeting, ``verify`` that an unanswered
    create left no second meeting, keep its ``registrants`` in step with the seat holders, or
    ``reconcile`` its attendance."""

    __tablename__ = "zoom_jobs"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer(), default=0)
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text())
    #: when the retry budget of this desired state runs out (set at the first retryable
    #: failure; a Retry-After wait moves it on, as such a wait does not count)
    retry_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: W3C trace context of the change that armed the job, so Zoom calls join its trace
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSON(), nullable=True)
    #: which pass of a job in several passes runs next (``verify``: 0, then 1)
    step: Mapped[int] = mapped_column(Integer(), default=0)
    #: a worker runs the job until then (set by ``claim``, cleared when it is done with it);
    #: ``arm`` never shortens it, so a day is never run by two workers at once
    leased_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Enrollment(Base):
    """Registration's enrollments, for e-mail matching and access to a day's meeting."""

    __tablename__ = "enrollments"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    #: null while registration's enrollment waits for its person (made for an e-mail nobody
    #: signed in with yet): matched by ``email`` alone until a later version names the user
    user_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(30))
    version: Mapped[int] = mapped_column(Integer())


class MeetingRegistrant(Base):
    """R-ZOOM-3 with the administrator role: a seat holder of the day's session registered for
    its meeting (Zoom's registrant, automatic approval), with their personal join link. A
    participant who joins with that link is matched by ``zoom_registrant_id``, whatever e-mail
    they use in Zoom. Removed (at Zoom, then here) when the seat is lost."""

    __tablename__ = "zoom_registrants"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    #: the Zoom meeting the registration belongs to (a new meeting needs new registrants)
    zoom_meeting_id: Mapped[str] = mapped_column(String(40))
    zoom_registrant_id: Mapped[str] = mapped_column(String(100), index=True)
    #: the personal join link (it admits whoever holds it): encrypted at rest like tokens
    join_url_enc: Mapped[str] = mapped_column(Text())
    email: Mapped[str] = mapped_column(String(320))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WebhookEvent(Base):
    """A verified webhook, stored before it is processed; the digest absorbs duplicates.

    Processing marks it ``processed`` in the transaction of its effect; a failed attempt keeps
    it for a later one (``attempts``, ``next_attempt_at``, ``last_error``) until the budget is
    spent (``failed``). Processed rows are pruned after the retention period."""

    __tablename__ = "zoom_webhook_events"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(100))
    body: Mapped[dict[str, Any]] = mapped_column(JSON())
    #: whose secret verified it (``webhooks.rules.Signer``): the meetings it may act on
    signed_by: Mapped[dict[str, Any] | None] = mapped_column(JSON(), nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    processed: Mapped[bool] = mapped_column(Boolean(), default=False, index=True)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text())
    failed: Mapped[bool] = mapped_column(Boolean(), default=False)


class AttendanceSegment(Base):
    """What Zoom said about one stay of one participant in one instance of a day's meeting.

    A webhook row (``source`` webhook) holds one ``meeting.participant_joined`` or ``_left``:
    its key names the instance, the stay and the event, so a re-delivery is the same row, and
    :func:`zoom_bridge.meetings.attendance.stays` pairs the halves whatever order they came
    in. A report row (``source`` report) is a whole stay from Zoom's participants report; it
    replaces the webhook rows of the instance it covers. Rows stored before instances were
    kept have no ``instance_uuid``."""

    __tablename__ = "attendance_segments"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    participant_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    join_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    leave_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: the meeting instance (Zoom's ``uuid``: a meeting held again is a new instance)
    instance_uuid: Mapped[str | None] = mapped_column(String(100))
    #: the stay within the instance: Zoom's ``user_id`` (numbered per instance), else the
    #: participant's ``participant_uuid``
    stay_id: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(10), default="webhook")  # webhook | report
    participant_uuid: Mapped[str | None] = mapped_column(String(100))
    registrant_id: Mapped[str | None] = mapped_column(String(100))
    #: the participant's Zoom user id (Zoom's ``id``; empty for someone not signed in)
    zoom_user_id: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(300))


class MeetingInstance(Base):
    """One holding of a day's meeting (Zoom's meeting instance, its ``uuid``): when it ended
    (``meeting.ended``) and where its final attendance came from."""

    __tablename__ = "zoom_meeting_instances"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(String(100), primary_key=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: ``report``: Zoom's participants report replaced its webhook rows; ``webhooks``: the
    #: report was unavailable (``report_unavailable_reason``), the webhooks' stays count
    source: Mapped[str | None] = mapped_column(String(10))
    report_unavailable_reason: Mapped[str | None] = mapped_column(Text())
    #: when the day's final attendance was published with this instance in it
    final_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ParticipantMatch(Base):
    """An admin credited a participant no registrant id or e-mail matched (a guest, an unknown
    e-mail) to a platform user of the day's session."""

    __tablename__ = "zoom_participant_matches"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    #: the participant's id in ``GET /v1/days/{id}/participants``
    participant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(100))
    #: the e-mail of the user's enrollment (published with the attendance)
    email: Mapped[str | None] = mapped_column(String(320))
    matched_by: Mapped[str] = mapped_column(String(100))
    matched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RecordingInstance(Base):
    """A meeting instance whose cloud recording files a day holds (R-ZOOM-7): Zoom's bulk
    recording notifications (``recording.batch_trashed`` ...) name instances only."""

    __tablename__ = "zoom_recording_instances"

    instance_uuid: Mapped[str] = mapped_column(String(200), primary_key=True)
    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
