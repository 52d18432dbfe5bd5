"""Catalog's tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from te_shared.db import UTCDateTime, make_metadata, utcnow
from te_shared.inbox import InboxRecordMixin
from te_shared.outbox import OutboxRecordMixin


class Base(DeclarativeBase):
    metadata = make_metadata()


class OutboxRecord(OutboxRecordMixin, Base):
    pass


class InboxRecord(InboxRecordMixin, Base):
    pass


class CompanySettings(Base):
    """R-CO-1: one row per company; absent means the defaults."""

    __tablename__ = "company_settings"

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    locales: Mapped[list[str]] = mapped_column(JSON())
    zoom_enabled: Mapped[bool] = mapped_column(Boolean())
    training_module_enabled: Mapped[bool] = mapped_column(Boolean())
    version: Mapped[int] = mapped_column(Integer(), default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
