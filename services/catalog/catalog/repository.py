"""The base of the features' repositories: rows of one company, loaded by id.

Each feature has its own repository (``events/repository.py`` ...), built with
``XRepository.from_session(session)``, whose methods take domain arguments; services never
build queries themselves."""

from __future__ import annotations

import uuid
from typing import ClassVar, Generic, Self, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Base
from te_shared.errors import NotFound

M = TypeVar("M", bound=Base)


class TenantRepository(Generic[M]):
    """Rows of ``model`` scoped to a company: another company's id is a 404, as one that
    exists nowhere (tenant isolation)."""

    model: ClassVar[type[Base]]
    #: how a missing row is named in the 404 ("event", "session", "day")
    what: ClassVar[str] = "resource"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)

    async def get(self, company_id: str, row_id: uuid.UUID, *, lock: bool = False) -> M:
        """The row ``row_id`` of ``company_id``; with ``lock``, ``FOR UPDATE`` and read again
        under the lock (the identity map may hold values read before it)."""
        model = self.model
        stmt = select(model).where(
            model.id == row_id,  # type: ignore[attr-defined]
            model.company_id == company_id,  # type: ignore[attr-defined]
        )
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        row = (await self.session.scalars(stmt)).one_or_none()
        if row is None:
            raise NotFound(f"The {self.what} {row_id} does not exist.")
        found: M = row  # type: ignore[assignment]
        return found
