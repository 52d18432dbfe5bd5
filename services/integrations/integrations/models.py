"""integrations' tables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from integrations.crypto import EncryptedBytes
from te_shared.db import UTCDateTime, make_metadata
from te_shared.idempotency import IdempotencyRecordMixin
from te_shared.inbox import InboxRecordMixin
from te_shared.outbox import OutboxRecordMixin

#: states of a delivery
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"  # given up: every attempt of the schedule failed
DISCARDED = "discarded"  # its endpoint was disabled (410 Gone, or an admin) before delivery
STATES = (PENDING, DELIVERED, FAILED, DISCARDED)


class Base(DeclarativeBase):
    metadata = make_metadata()


class OutboxRecord(OutboxRecordMixin, Base):
    pass


class InboxRecord(InboxRecordMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    #: the answer replayed to a retried create or rotation holds the secret: encrypted
    body: Mapped[bytes | None] = mapped_column(EncryptedBytes(), nullable=True)


class WebhookEndpoint(Base):
    """A company's receiver of outbound webhooks."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100), index=True)
    url: Mapped[str] = mapped_column(Text())
    description: Mapped[str | None] = mapped_column(Text(), nullable=True)
    #: event types (``enrollment.changed``, ...) or ``["*"]``
    events: Mapped[list[str]] = mapped_column(JSON())
    #: the signing secret (``whsec_...``), Fernet-encrypted
    secret_enc: Mapped[str] = mapped_column(Text())
    #: secrets rotated out that still sign until they expire: ``[{secret_enc, expires_at}]``
    previous_secrets: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list)
    enabled: Mapped[bool] = mapped_column(Boolean(), default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text(), nullable=True)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    secret_rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


PENDING_FILTER = "state = 'pending'"


class WebhookDelivery(Base):
    """One message for one endpoint: the durable delivery queue. Its ``body`` is built once,
    when the message is consumed, so every attempt sends (and signs) the same bytes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # named as migration 0001 named it (the naming convention would add the second column)
        UniqueConstraint("endpoint_id", "message_id", name="uq_webhook_deliveries_endpoint_id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text(PENDING_FILTER),
            sqlite_where=text(PENDING_FILTER),
        ),
        Index(
            "ix_webhook_deliveries_subject",
            "endpoint_id",
            "subject",
            "subject_version",
            postgresql_where=text(PENDING_FILTER),
            sqlite_where=text(PENDING_FILTER),
        ),
        Index("ix_webhook_deliveries_log", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_finished", "finished_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    company_id: Mapped[str] = mapped_column(String(100))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    #: Standard Webhooks' ``webhook-id``: the same for every attempt
    webhook_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(50))
    #: the aggregate the message is about (``enrollment:<id>``): deliveries of one subject to
    #: one endpoint go out one at a time, in (``subject_version``, ``occurred_at``, ``id``) order
    subject: Mapped[str] = mapped_column(String(200))
    subject_version: Mapped[int] = mapped_column(BigInteger())
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text())
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    #: attempts made before the current retry schedule started (an admin's recovery starts a
    #: new one; the log keeps numbering attempts on)
    schedule_from: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    first_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    leased_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: set when claimed: only the holder of the lease records the outcome
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text(), nullable=True)


class WebhookAttempt(Base):
    """One try at a delivery: when, how long, the answer's status and a short excerpt."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[int] = mapped_column(BigInteger(), index=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    attempt: Mapped[int] = mapped_column(Integer())
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer())
    status_code: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text(), nullable=True)
    response_excerpt: Mapped[str | None] = mapped_column(Text(), nullable=True)
