"""The outbox and inbox tables alone, as every service has them, for the tests and benchmarks of
te_shared's messaging (relay, consumers, dead-lettering) on a database of their own. A test may
declare more tables on :class:`Base`; ``Base.metadata.create_all`` creates them all."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from te_shared.db import make_metadata
from te_shared.inbox import InboxRecordMixin
from te_shared.outbox import OutboxRecordMixin


class Base(DeclarativeBase):
    metadata = make_metadata()


class Outbox(OutboxRecordMixin, Base):
    pass


class Inbox(InboxRecordMixin, Base):
    pass
