"""registration's tables."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from te_shared.db import make_metadata
from te_shared.inbox import InboxRecordMixin
from te_shared.outbox import OutboxRecordMixin


class Base(DeclarativeBase):
    metadata = make_metadata()


class OutboxRecord(OutboxRecordMixin, Base):
    pass


class InboxRecord(InboxRecordMixin, Base):
    pass


class CompanyReplica(Base):
    """The company settings this service needs, as catalog last announced them."""

    __tablename__ = "company_replica"

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    zoom_enabled: Mapped[bool] = mapped_column(Boolean())
    training_module_enabled: Mapped[bool] = mapped_column(Boolean())
    version: Mapped[int] = mapped_column(Integer())
