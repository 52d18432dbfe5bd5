"""Fixtures for catalog's tests: one app and database per test module, one company per test."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.app import create_app
from catalog.handlers import consumers
from catalog.models import OutboxRecord
from catalog.settings import CatalogSettings
from te_shared import contracts as c
from te_testing import messages
from te_testing.api import auth
from te_testing.infra import (
    DatabaseFactory,
    RabbitNamespace,
    TokenFactory,
    running_app,
    settings_for,
)


def iso(value: dt.datetime) -> str:
    return value.isoformat()


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Cat:
    app: FastAPI
    client: httpx.AsyncClient
    token: TokenFactory

    def admin(self, company: str) -> dict[str, str]:
        return auth(self.token(role="admin", company=company, user="admin1"))

    def user(self, company: str) -> dict[str, str]:
        return auth(self.token(role="user", company=company, user="user1"))

    async def company(self, **settings: Any) -> str:
        """A fresh company, with settings when given."""
        company = f"co-{uuid.uuid4().hex[:10]}"
        if settings:
            body = {"timezone": "Europe/Moscow", "locales": ["en"], **settings}
            r = await self.client.put(
                "/v1/company/settings", json=body, headers=self.admin(company)
            )
            assert r.status_code == 200, r.text
        return company

    async def event(self, company: str, **body: Any) -> dict[str, Any]:
        r = await self.client.post(
            "/v1/events", json={"title": "Python", **body}, headers=self.admin(company)
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def session(self, company: str, event_id: str, **body: Any) -> dict[str, Any]:
        body.setdefault("name", f"S {uuid.uuid4().hex[:6]}")
        r = await self.client.post(
            f"/v1/events/{event_id}/sessions", json=body, headers=self.admin(company)
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def post_day(self, company: str, session_id: str, **body: Any) -> httpx.Response:
        body.setdefault("format", "offline")
        if body["format"] == "offline":
            body.setdefault("address", "Main st. 1")
        params = {"confirm": "true"} if body.pop("confirm", False) else None
        return await self.client.post(
            f"/v1/sessions/{session_id}/days", json=body, params=params, headers=self.admin(company)
        )

    async def day(self, company: str, session_id: str, **body: Any) -> dict[str, Any]:
        r = await self.post_day(company, session_id, **body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def outbox(self, routing_key: str, **match: Any) -> list[dict[str, Any]]:
        payloads = await messages.outbox(self.app, OutboxRecord, routing_key)
        return [p for p in payloads if all(p.get(k) == v for k, v in match.items())]

    async def zoom_account(
        self,
        company: str,
        role: str = "administrator",
        *,
        connected: bool = True,
        account_id: str | None = None,
        needs_reconnect: bool = False,
    ) -> str:
        """The zoom bridge announces a Zoom account of ``company`` (R-DAY-9), as its
        ``ZoomAccountChanged`` would reach catalog; returns the account id. Announcing an
        existing ``account_id`` again changes it (a newer version)."""
        account = messages.zoom_account_changed(
            company=company,
            account_id=uuid.UUID(account_id) if account_id else None,
            role=role,
            connected=connected,
            needs_reconnect=needs_reconnect,
            version=time.time_ns() // 1000,
        )
        await self.apply(account)
        return str(account.account_id)

    async def zoom(self, company: str, role: str = "administrator", **kw: Any) -> dict[str, Any]:
        """A zoom day's ``zoom`` body on a freshly announced account of ``company``."""
        account_id = await self.zoom_account(company, role)
        return {"account_id": account_id, "organizer_user_id": "org-1", **kw}

    async def apply(self, *incoming: c.Message) -> None:
        """Run the handlers as the broker would (one transaction per message)."""
        await messages.handle(self.app, consumers, *incoming)


@pytest.fixture(scope="module")
async def cat(
    databases: DatabaseFactory, rabbit: RabbitNamespace, token: TokenFactory
) -> AsyncIterator[Cat]:
    url = await databases.create("catalog")
    app = create_app(settings_for(CatalogSettings, url, rabbit))
    async with running_app(app) as client:
        yield Cat(app, client, token)


@pytest.fixture
def pin_now(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``pin_now(datetime)`` fixes catalog's clock."""

    def pin(value: dt.datetime) -> None:
        monkeypatch.setattr("catalog.clock.now", lambda: value)

    return pin
