"""Fixtures for registration's tests: one app and database per test module."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registration.app import create_app
from registration.handlers import consumers
from registration.models import OutboxRecord
from registration.settings import RegistrationSettings
from te_shared import contracts as c
from te_testing import messages
from te_testing.api import auth
from te_testing.infra import (
    DatabaseFactory,
    RabbitNamespace,
    TokenFactory,
    delete_namespace,
    running_app,
    settings_for,
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Built:
    event_id: uuid.UUID
    session_ids: list[uuid.UUID]
    day_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class Reg:
    """The running registration app and helpers to drive its read model."""

    app: FastAPI
    client: httpx.AsyncClient
    token: TokenFactory
    ns: RabbitNamespace
    versions: messages.Versions = field(default_factory=messages.Versions)

    def user(self, user: str = "u1", company: str = "acme", email: str | None = None) -> Any:
        return auth(self.token(role="user", company=company, user=user, email=email))

    def admin(self, company: str = "acme", user: str = "admin1") -> Any:
        return auth(self.token(role="admin", company=company, user=user))

    def next_version(self, key: uuid.UUID) -> int:
        return self.versions.next(key)

    async def apply(self, *incoming: c.Message) -> None:
        """Run the handlers as the broker would (one transaction per message)."""
        await messages.handle(self.app, consumers, *incoming)

    async def event(
        self,
        *,
        company: str = "acme",
        dated: bool = True,
        requires_approval: bool = False,
        state: c.EventState = c.EventState.ACTIVE,
        event_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        event_id = event_id or uuid.uuid4()
        await self.apply(
            messages.event_changed(
                company=company,
                event_id=event_id,
                version=self.next_version(event_id),
                state=state,
                dated=dated,
                requires_approval=requires_approval,
            )
        )
        return event_id

    def session_msg(
        self,
        event_id: uuid.UUID,
        *,
        company: str = "acme",
        session_id: uuid.UUID | None = None,
        name: dict[str, str] | None = None,
        registration_end: dt.datetime | str | None = "default",
        limit: int | None = None,
        waitlist: bool = False,
        cls: type[c.SessionData] = c.SessionCreated,
    ) -> c.SessionData:
        session_id = session_id or uuid.uuid4()
        return messages.session_data(
            company=company,
            event_id=event_id,
            session_id=session_id,
            version=self.next_version(session_id),
            name=name,
            registration_end=(
                now() + dt.timedelta(days=1) if registration_end == "default" else registration_end
            ),
            limit=limit,
            waitlist=waitlist,
            cls=cls,
        )

    def day_msg(
        self,
        event_id: uuid.UUID,
        session_id: uuid.UUID,
        *,
        company: str = "acme",
        start: dt.datetime | None = None,
        hours: float = 1,
        day_id: uuid.UUID | None = None,
        zoom_organizer: str | None = None,
        confirmed: bool = False,
        address: str | None = None,
        url: str | None = None,
        cls: type[c.DayData] = c.DayScheduled,
    ) -> c.DayData:
        day_id = day_id or uuid.uuid4()
        extra: dict[str, Any] = {"confirmed_after_session_end": confirmed} if confirmed else {}
        return messages.day_data(
            company=company,
            event_id=event_id,
            session_id=session_id,
            day_id=day_id,
            version=self.next_version(day_id),
            start=start,
            length=dt.timedelta(hours=hours),
            zoom=(
                c.ZoomDaySettings(account_id=uuid.uuid4(), organizer_user_id=zoom_organizer)
                if zoom_organizer
                else None
            ),
            address=address,
            url=url,
            cls=cls,
            **extra,
        )

    async def build(
        self,
        *,
        company: str = "acme",
        sessions: int = 1,
        dated: bool = True,
        requires_approval: bool = False,
        limit: int | None = None,
        waitlist: bool = False,
        access: list[str] | None = None,
        day_start: dt.datetime | None = None,
        registration_end: dt.datetime | str | None = "default",
    ) -> Built:
        """An active event with sessions, one day each, and access for ``access`` users."""
        event_id = await self.event(
            company=company, dated=dated, requires_approval=requires_approval
        )
        built = Built(event_id, [])
        for _ in range(sessions):
            msg = self.session_msg(
                event_id,
                company=company,
                limit=limit,
                waitlist=waitlist,
                registration_end=registration_end if dated else None,
            )
            day = self.day_msg(event_id, msg.session_id, company=company, start=day_start)
            await self.apply(msg, day)
            built.session_ids.append(msg.session_id)
            built.day_ids.append(day.day_id)
        if access:
            r = await self.client.put(
                f"/v1/events/{event_id}/access",
                json={"user_ids": access},
                headers=self.admin(company),
            )
            assert r.status_code == 200, r.text
        return built

    async def sign_up(self, session_id: uuid.UUID, user: str, **kw: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/sessions/{session_id}/enrollments", headers=self.user(user, **kw)
        )

    async def outbox(self, routing_key: str) -> list[dict[str, Any]]:
        return await messages.outbox(self.app, OutboxRecord, routing_key)


@pytest.fixture(scope="module")
async def reg_rabbit(amqp_url: str) -> AsyncIterator[RabbitNamespace]:
    """A namespace per test module, so the messages registration publishes never reach other
    services' tests running in the same session."""
    tag = uuid.uuid4().hex[:8]
    ns = RabbitNamespace(amqp_url, f"te-test-reg-{tag}", f"treg{tag}.")
    yield ns
    await delete_namespace(ns)


@pytest.fixture(scope="module")
async def reg(
    databases: DatabaseFactory, reg_rabbit: RabbitNamespace, token: TokenFactory
) -> AsyncIterator[Reg]:
    rabbit = reg_rabbit
    url = await databases.create("reg")
    settings = settings_for(RegistrationSettings, url, rabbit)
    app = create_app(settings)
    async with running_app(app) as client:
        yield Reg(app=app, client=client, token=token, ns=rabbit)


@pytest.fixture(scope="session")
def reg_class() -> type[Reg]:
    """The helper class, for modules that run their own apps (test modules cannot import
    conftest under --import-mode=importlib)."""
    return Reg
