"""Fixtures: the simulator behind httpx's ASGITransport, and an in-test webhook receiver."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from zoom_sim.app import create_app
from zoom_sim.settings import Settings
from zoom_sim.webhooks import sign

SECRET = "test-webhook-secret"
CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
REDIRECT_URI = "http://bridge.test/v1/zoom/oauth/callback"
BRIDGE_URL = "http://bridge.test/v1/zoom/webhooks"


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]
    signature_ok: bool


@dataclass
class Receiver:
    """Plays the bridge: checks signatures, answers url_validation, records everything."""

    secret: str = SECRET
    status: int = 200
    #: answers for the next requests, in order (then ``status``); None: refuse the connection
    script: list[int | None] = field(default_factory=list)
    #: seconds to wait before answering (to miss Zoom's deadline)
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        status = self.script.pop(0) if self.script else self.status
        if status is None:
            raise httpx.ConnectError("connection refused", request=request)
        raw = request.content
        ts = request.headers.get("x-zm-request-timestamp", "")
        expected = sign(self.secret, ts, raw)
        ok = hmac.compare_digest(expected, request.headers.get("x-zm-signature", ""))
        body = json.loads(raw)
        self.received.append(Received(dict(request.headers), raw, body, ok))
        if self.delay_s:  # received, but answered late
            await asyncio.sleep(self.delay_s)
        if not ok:
            return httpx.Response(401, json={"detail": "bad signature"})
        if body["event"] == "endpoint.url_validation":
            plain = body["payload"]["plainToken"]
            enc = hmac.new(self.secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
            return httpx.Response(200, json={"plainToken": plain, "encryptedToken": enc})
        return httpx.Response(status, json={"ok": True})

    def events(self) -> list[str]:
        return [r.body["event"] for r in self.received]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_url": BRIDGE_URL,
        "webhook_secret": SECRET,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "public_url": "http://zoom-sim.test",
        "account_id": "acctTEST",
    }
    values.update(overrides)
    return Settings(**values)


class SimKit:
    """What the tests use: the sim client, the receiver and a few flows."""

    SECRET = SECRET
    CLIENT_ID = CLIENT_ID
    CLIENT_SECRET = CLIENT_SECRET
    REDIRECT_URI = REDIRECT_URI
    BRIDGE_URL = BRIDGE_URL

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, receiver: Receiver) -> None:
        self.app = app
        self.client = client
        self.receiver = receiver

    @staticmethod
    def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict[str, str]:
        token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def authorize_code(self, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "state": "st-1",
            **extra,
        }
        r = await self.client.get("/oauth/authorize", params=params)
        assert r.status_code == 302, r.text
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query["state"] == ["st-1"]
        return query["code"][0]

    async def connect(self, **extra: str) -> dict[str, Any]:
        """Full authorization-code flow; returns the token response."""
        code = await self.authorize_code(**extra)
        r = await self.client.post(
            "/oauth/token",
            headers=self.basic(),
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        )
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    async def auth(self, **extra: str) -> dict[str, str]:
        return self.bearer((await self.connect(**extra))["access_token"])

    async def create_meeting(self, auth: dict[str, str], **body: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "topic": "Day 1",
            "type": 2,
            "start_time": "2030-03-01T09:00:00Z",
            "duration": 90,
            "timezone": "Europe/Berlin",
            "settings": {"auto_recording": "cloud"},
        }
        payload.update(body)
        r = await self.client.post("/v2/users/me/meetings", headers=auth, json=payload)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data


@contextlib.asynccontextmanager
async def sim_kit(receiver: Receiver | None = None, **overrides: Any) -> AsyncIterator[SimKit]:
    """A simulator with its own settings (``overrides``) whose webhooks go to ``receiver``."""
    receiver = receiver or Receiver()
    app = create_app(
        make_settings(**overrides), http_transport=httpx.MockTransport(receiver.handle)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://zoom-sim.test") as c:
        try:
            yield SimKit(app, c, receiver)
        finally:
            await app.state.webhooks.cancel_all()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def new_sim() -> Any:
    """``async with new_sim(receiver, **settings) as kit``: a simulator of its own settings."""
    return sim_kit


@pytest.fixture
def sim_app(receiver: Receiver) -> FastAPI:
    return create_app(make_settings(), http_transport=httpx.MockTransport(receiver.handle))


@pytest.fixture
async def kit(sim_app: FastAPI, receiver: Receiver) -> AsyncIterator[SimKit]:
    transport = httpx.ASGITransport(app=sim_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://zoom-sim.test") as c:
        try:
            yield SimKit(sim_app, c, receiver)
        finally:
            # ASGITransport runs no lifespan: stop the deliveries (retries) still under way
            await sim_app.state.webhooks.cancel_all()
