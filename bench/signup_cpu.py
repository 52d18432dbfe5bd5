"""Sign-up CPU: the registration app's own CPU per request, in process, one request at a time.

The storm's ratios move with baselines that share the two cores with the load generator and
PostgreSQL (``/health/live`` ran at 3,400-6,500 req/s over one day here); this scenario takes
those out. The app runs in this process (its lifespan, a fresh PostgreSQL database, a RabbitMQ
namespace of its own); each request is an ASGI call, awaited before the next, and the process's
CPU clock (``time.process_time``) is read around batches of 100. The smallest batch is kept:
neighbours on a shared host only ever add to it.

Figures: a seat-taking sign-up (the first 100 of a session with 100 seats) and a refused one
(the session full: nine in ten of a storm), each by a user new to the service (a token never
seen, an e-mail to remember). Baseline: ``GET /health/live`` through the same middleware.

And the stack's floor for a refused sign-up (:func:`_floor`): a bare ASGI callable that does
what the refused sign-up must (checks the token with PyJWT as the service does, runs the
fast path's own statement, compiled once, on a pool of the fast path's kind over the same
database, answers a 409 problem) and nothing else: no framework, no middleware, no ORM
session. What a refused sign-up costs above it is what the service's layers cost.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import jwt

from bench.common import AMQP_URL, POSTGRES_URL, Result
from registration.app import create_app
from registration.enrollments.fast_path import FIRST_FACTS
from registration.handlers import consumers
from registration.settings import RegistrationSettings
from te_shared.db import driver_pool
from te_testing import messages
from te_testing.infra import (
    DatabaseFactory,
    RabbitNamespace,
    delete_namespace,
    dev_token,
    running_app,
    settings_for,
)

SEATS = 200
REFUSED = 1500
FLOOR = 1500  # refused sign-ups through the floor, by users of their own
BATCH = 100
COMPANY = "bench-cpu"

Call = Callable[[], Awaitable[int]]


def _caller(app: Any, method: str, path: str, token: str | None = None) -> Call:
    headers = [(b"host", b"bench")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("bench", 80),
    }

    async def call() -> int:
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))

        await app(dict(scope), receive, send)
        return status[0]

    return call


ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _floor(pool: asyncpg.Pool, secret: str, audience: str) -> ASGI:
    """A refused sign-up with nothing but what it must do (see the module's docstring)."""

    async def app(scope: dict[str, Any], _receive: Any, send: Any) -> None:
        authorization = dict(scope["headers"])[b"authorization"].decode()
        claims = jwt.decode(
            authorization.removeprefix("Bearer "),
            secret,
            algorithms=["HS256"],
            audience=audience,
            leeway=10,
            options={"require": ["exp", "sub", "aud"]},
        )
        company, user = claims["company_id"], claims["sub"]
        session_id = uuid.UUID(scope["path"].split("/")[3])
        values = {
            "company_id": company,
            "email": claims["email"].lower(),
            "user_id": user,
            "session_id": session_id,
        }
        async with pool.acquire() as connection:
            facts = await connection.fetchrow(FIRST_FACTS.sql, *FIRST_FACTS.arguments(values))
        assert facts is not None
        assert facts["taken"] >= facts["participant_limit"]  # full: the refused sign-up's read
        body = json.dumps(
            {
                "type": "urn:problem:session_full",
                "title": "Conflict",
                "status": 409,
                "detail": "The session has no free seat.",
                "instance": scope["path"],
                "code": "session_full",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 409,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def _cpu_per_call(calls: list[Call], expected: int) -> float:
    """Microseconds of this process's CPU per call, the smallest batch's."""
    batches: list[float] = []
    for start in range(0, len(calls), BATCH):
        batch = calls[start : start + BATCH]
        began = time.process_time()
        for call in batch:
            status = await call()
            assert status == expected, status
        batches.append((time.process_time() - began) / len(batch) * 1e6)
    return min(batches)


async def run() -> list[Result]:
    logs = Path(tempfile.mkdtemp(prefix="bench-signup-cpu-"))
    databases = DatabaseFactory(POSTGRES_URL, logs, [])
    tag = uuid.uuid4().hex[:8]
    rabbit = RabbitNamespace(AMQP_URL, f"te-bench-cpu-{tag}", f"bc{tag}.")
    database = await databases.create("cpu")
    settings = settings_for(RegistrationSettings, database, rabbit)
    app = create_app(settings)
    pool = await driver_pool(database, 1)
    assert pool is not None
    try:
        async with running_app(app) as client:
            event = messages.event_changed(company=COMPANY)
            opened = messages.session_data(
                company=COMPANY,
                event_id=event.event_id,
                registration_end=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
                limit=SEATS,
            )
            await messages.handle(app, consumers, event, opened)
            users = [f"cpu-{tag}-{n}" for n in range(SEATS + REFUSED + FLOOR)]
            admin = dev_token("admin", COMPANY, "bench-admin", ttl_seconds=3600)
            granted = await client.put(
                f"/v1/events/{event.event_id}/access",
                json={"user_ids": users},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert granted.status_code == 200, granted.text
            path = f"/v1/sessions/{opened.session_id}/enrollments"

            def signing_up(target: Any, who: list[str]) -> list[Call]:
                return [
                    _caller(
                        target,
                        "POST",
                        path,
                        dev_token("user", COMPANY, user, f"{user}@bench.io", ttl_seconds=3600),
                    )
                    for user in who
                ]

            sign_ups = signing_up(app, users[: SEATS + REFUSED])
            floor = _floor(pool, settings.jwt_secret.get_secret_value(), settings.jwt_audience)
            floor_sign_ups = signing_up(floor, users[SEATS + REFUSED :])
            health = [_caller(app, "GET", "/health/live") for _ in range(REFUSED)]
            await _cpu_per_call(health[:BATCH], 200)  # the first calls of each path warm up
            seat = await _cpu_per_call(sign_ups[:SEATS], 201)
            refused = await _cpu_per_call(sign_ups[SEATS:], 409)
            bare = await _cpu_per_call(floor_sign_ups, 409)
            live = await _cpu_per_call(health, 200)
    finally:
        await pool.close()
        await delete_namespace(rabbit)
        await databases.drop_all()
    name = "sign-up CPU (in process)"
    baseline = "GET /health/live CPU (in process)"
    return [
        Result(
            name,
            "refused sign-up (session full), new user",
            refused,
            "us",
            baseline,
            live,
            key="signup.cpu_refused_vs_health",
        ),
        Result(name, "seat-taking sign-up, new user", seat, "us", baseline, live),
        Result(
            name,
            "refused sign-up, new user",
            refused,
            "us",
            "the same without framework, middleware or ORM (the stack's floor)",
            bare,
            key="signup.cpu_refused_vs_floor",
        ),
    ]
