"""The sign-up's fast path (R-ENR-3, R-ENR-6): the common sign-up, refused or taking a seat,
done before routing (:class:`SignUpFirst`, ahead of the router) and without an ORM session.

When a popular training opens, a hundred sign-ups arrive at once and nine in ten of a storm are
refused (the session is full). Through the route each paid for FastAPI's dependency solving, a
session and SQLAlchemy's execution of its statements. The fast path runs the route's own
statements (compiled once, :class:`~te_shared.db.DriverStatement`) on a small asyncpg pool of
its own, decides with the route's own :func:`.service.decide` and raises the route's own
problems:

1. one statement: what waits for a new caller's e-mail (remembered when nothing does) and the
   sign-up's facts;
2. a refusal is raised as the route's problem; a sign-up that may go ahead runs the route's
   seat-taking write (:func:`.statuses.seat_and_enroll`: the seat, the enrollment, its history
   and its outbox row in one statement, alone), answers 201 and hands the outbox row, written
   leased to the process's relay, to it (no claim on the way of ``EnrollmentChanged``).

Everything else goes on to the route, which decides again from scratch: a replay and
``already_enrolled`` (their answers name the live enrollment), something waiting for the
caller's e-mail (the route binds it in one transaction), a full session with a waitlist, a
second live enrollment found by the unique index (a retry racing itself: the route answers the
replay), and any database error (the route meets the same database; a write that did commit
is then found by the route and answered as the replay). A sign-up that waited
``DATABASE_POOL_TIMEOUT`` for one of the pool's connections is answered 503 ``database_busy``
with Retry-After, as the route answers one that waited as long for its own pool.
"""

from __future__ import annotations

import functools
import uuid
from typing import cast

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import select, true
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.expression import ClauseElement
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from registration.binding import WAITING_AND_REMEMBERING, Waiting, settled, unseen
from registration.enrollments import rules
from registration.enrollments.schemas import EnrollmentOut
from registration.enrollments.service import SIGN_UP_FACTS, decide, facts_params, refuse
from registration.enrollments.statuses import seat_and_enroll, seat_taken
from registration.settings import RegistrationSettings
from te_shared.auth import principal_of
from te_shared.db import DRIVER_POOL, DriverStatement, driver_connection, driver_pool, utcnow
from te_shared.errors import ProblemError, database_busy_response, path_of, problem_answer
from te_shared.service import Runtime, get_runtime

#: the pool, in the runtime's extras (absent on SQLite or when turned off): the service's
#: driver pool, which the idempotency middleware's statements use too
POOL = DRIVER_POOL
FACTS = DriverStatement.of(SIGN_UP_FACTS)


def _first_sign_up_facts() -> DriverStatement:
    """For a caller not seen yet: what waits for the e-mail (remembering it when nothing does)
    and the sign-up's facts, in one statement (one round trip, not two). The facts are read
    from the statement's snapshot, so what the remembering writes changes none of them."""
    waiting = WAITING_AND_REMEMBERING.subquery("waiting_for")
    facts = SIGN_UP_FACTS.subquery("facts")
    return DriverStatement.of(select(waiting, facts).select_from(waiting.outerjoin(facts, true())))


FIRST_FACTS = _first_sign_up_facts()


@functools.cache
def _driver(statement: ClauseElement) -> DriverStatement:
    """The seat-taking statement is built once per shape of its rows, so compiled once too."""
    return DriverStatement.of(statement)


#: the errors after which the route decides instead (it meets the same database, and answers
#: 503 with Retry-After when the database is away)
_LEAVE_TO_ROUTE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


async def open_pool(runtime: Runtime) -> None:
    """Startup hook: the fast path's pool (PostgreSQL, and the setting above 0)."""
    settings = cast(RegistrationSettings, runtime.settings)
    pool = await driver_pool(settings.database_url, settings.signup_fast_path_connections)
    if pool is not None:
        runtime.extras[POOL] = pool


async def close_pool(runtime: Runtime) -> None:
    """Shutdown hook."""
    pool = runtime.extras.pop(POOL, None)
    if isinstance(pool, asyncpg.Pool):
        await pool.close()


async def fast_sign_up(request: Request) -> Response | None:
    """The sign-up's answer, or None when the route must decide (see the module's docstring).
    Raises the route's problems for what it refuses."""
    runtime = get_runtime(request)
    pool = runtime.extras.get(POOL)
    if not isinstance(pool, asyncpg.Pool):
        return None
    principal = await principal_of(request)  # a bad token: the route's own 401
    try:
        session_id = uuid.UUID(request.path_params["session_id"])
    except ValueError:
        return None  # the route's 422
    caller = unseen(principal, runtime)
    values = facts_params(principal, session_id)
    try:
        wait = runtime.settings.database_pool_timeout
        async with driver_connection(pool, wait) as connection:
            if caller is None:
                found = await connection.fetchrow(FACTS.sql, *FACTS.arguments(values))
            else:
                values["email"] = caller.email
                found = await connection.fetchrow(FIRST_FACTS.sql, *FIRST_FACTS.arguments(values))
            if caller is not None and not settled(caller, Waiting.of(found), committed=True):
                return None  # something waits for the e-mail: the route binds it
            decision = decide(found, principal, utcnow())  # raises the route's 404s
            if decision is not None:
                if isinstance(decision, rules.Refusal) and decision.code != "already_enrolled":
                    refuse(decision, None)
                return None  # a replay, or already_enrolled: the route names the enrollment
            write = seat_and_enroll(
                company_id=principal.company_id,
                event_id=found["event_id"],
                session_id=session_id,
                user_id=principal.user_id,
                email=principal.email,
                status=rules.first_status(found["requires_approval"]),
                by=principal.user_id,
                reason="sign-up",
                now=utcnow(),
                leased_to=runtime.relay,
            )
            statement = _driver(write.statement)
            made, gone, outbox_id = await connection.fetchrow(
                statement.sql, *statement.arguments(write.params)
            )
    except asyncpg.UniqueViolationError:
        return None  # a live enrollment after all (the same sign-up twice at once)
    except PoolTimeout:
        # every connection stayed in use that long: a storm beyond what the pool serves. The
        # route would wait again, on its own pool, at several times the CPU: leaving it the
        # sign-ups that waited turned a storm's backlog into fewer answers a second for
        # everyone. 503 with Retry-After, nothing done.
        return database_busy_response(path_of(request.scope))
    except _LEAVE_TO_ROUTE:
        return None
    if not seat_taken(made, gone):  # raises the route's 404 for a deleted session
        if found["waitlist_enabled"]:
            return None  # the route writes the waitlisted enrollment
        refuse(rules.SESSION_FULL, None)
    if runtime.relay is not None:  # committed leased to it: published without a claim
        runtime.relay.hand_written(outbox_id, write.message)
    body = EnrollmentOut.model_validate(write.enrollment).model_dump(mode="json")
    return JSONResponse(body, status_code=status.HTTP_201_CREATED)


class SignUpFirst:
    """The router's ASGI app behind a check for the sign-up (its route's own match, method and
    path): the fast path runs before routing, for a sign-up that needs no more; one it leaves
    to the route is routed as any request. Routing walks every route before it (and FastAPI's
    request wrapping comes on top): a tenth of a refused sign-up's CPU in process. Inside the
    exception middleware, so the route's problems are answered as the route's; the scope gets
    the route, its endpoint and path parameters, as routing would give them (the request
    metrics are by the route's template)."""

    def __init__(self, app: ASGIApp, route: APIRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match, child = self.route.matches(scope)
            if match is Match.FULL:
                scope.update(child)  # as routing does (and does again if it routes after all)
                try:
                    response = await fast_sign_up(Request(scope, receive))
                except ProblemError as problem:
                    # answered here as the app's handler answers it: raised on, it crossed
                    # the middleware between here and the handler (a refused sign-up is
                    # nine in ten of a storm)
                    response = problem_answer(problem, scope)
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def dispatch_first(app: FastAPI, router: APIRouter) -> None:
    """Put :class:`SignUpFirst` in front of ``app``'s routing for ``router``'s one route, the
    sign-up."""
    [route] = [r for r in router.routes if isinstance(r, APIRoute)]
    app.router.middleware_stack = SignUpFirst(app.router.middleware_stack, route)
