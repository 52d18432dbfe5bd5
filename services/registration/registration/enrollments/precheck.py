"""The sign-up pre-check (R-ENR-3): a sign-up the service refuses, answered before the route's
dependencies are solved and before an ORM session exists.

When a popular training opens, nine in ten sign-ups are refused (the session is full). Each
paid for the whole stack to learn that: FastAPI's dependency solving, a session, SQLAlchemy's
execution of two statements. The pre-check runs the same two statements (compiled once from
the route's own, :class:`~te_shared.db.DriverStatement`) on a small asyncpg pool of its own,
decides with the route's own :func:`.service.decide`, and raises the route's own problem.

It only ever answers what the route would, and otherwise stays out of the way: a sign-up that
may take a seat, a replay, ``already_enrolled`` (its problem names the live enrollment),
something waiting for the caller's e-mail (the route binds it in one transaction) and any
database error go on to the route, which decides again from scratch. The e-mail remembered
here ran alone (autocommit), as on the route.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any, cast

import asyncpg
from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import select, true

from registration.binding import WAITING_AND_REMEMBERING, Waiting, settled, unseen
from registration.enrollments import rules
from registration.enrollments.service import SIGN_UP_FACTS, decide, facts_params, refuse
from registration.settings import RegistrationSettings
from te_shared.auth import principal_of
from te_shared.db import DriverStatement, driver_pool, utcnow
from te_shared.service import Runtime, get_runtime

#: the pool, in the runtime's extras (absent on SQLite or when turned off)
POOL = "signup_precheck_pool"
#: seconds to wait for one of the pool's connections before leaving the sign-up to the route
ACQUIRE_TIMEOUT = 1.0

FACTS = DriverStatement.of(SIGN_UP_FACTS)


def _first_sign_up_facts() -> DriverStatement:
    """For a caller not seen yet: what waits for the e-mail (remembering it when nothing does)
    and the sign-up's facts, in one statement (one round trip, not two). The facts are read
    from the statement's snapshot, so what the remembering writes changes none of them."""
    waiting = WAITING_AND_REMEMBERING.subquery("waiting_for")
    facts = SIGN_UP_FACTS.subquery("facts")
    return DriverStatement.of(select(waiting, facts).select_from(waiting.outerjoin(facts, true())))


FIRST_FACTS = _first_sign_up_facts()

#: the errors after which the route decides instead (it meets the same database, and answers
#: 503 with Retry-After when the database is away)
_LEAVE_TO_ROUTE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def open_pool(runtime: Runtime) -> None:
    """Startup hook: the pre-check's pool (PostgreSQL, and the setting above 0)."""
    settings = cast(RegistrationSettings, runtime.settings)
    pool = await driver_pool(settings.database_url, settings.signup_precheck_connections)
    if pool is not None:
        runtime.extras[POOL] = pool


async def close_pool(runtime: Runtime) -> None:
    """Shutdown hook."""
    pool = runtime.extras.pop(POOL, None)
    if isinstance(pool, asyncpg.Pool):
        await pool.close()


async def precheck(request: Request) -> None:
    """Raise the route's problem for a sign-up it refuses; return when the route must decide."""
    runtime = get_runtime(request)
    pool = runtime.extras.get(POOL)
    if not isinstance(pool, asyncpg.Pool):
        return
    principal = await principal_of(request)  # a bad token: the route's own 401
    try:
        session_id = uuid.UUID(request.path_params["session_id"])
    except ValueError:
        return  # the route's 422
    caller = unseen(principal, runtime)
    values = facts_params(principal, session_id)
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
            if caller is None:
                found = await connection.fetchrow(FACTS.sql, *FACTS.arguments(values))
            else:
                values["email"] = caller.email
                found = await connection.fetchrow(FIRST_FACTS.sql, *FIRST_FACTS.arguments(values))
    except _LEAVE_TO_ROUTE:
        return
    if caller is not None and not settled(caller, Waiting.of(found), committed=True):
        return  # something waits for the e-mail: the route binds it
    decision = decide(found, principal, utcnow())  # raises the route's 404s
    if isinstance(decision, rules.Refusal) and decision.code != "already_enrolled":
        refuse(decision, None)


class PrecheckedRoute(APIRoute):
    """The sign-up route, its handler behind :func:`precheck`. Routing, the OpenAPI document,
    the middleware and the exception handlers are the route's as before."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def prechecked(request: Request) -> Response:
            await precheck(request)
            return await handler(request)

        return prechecked
