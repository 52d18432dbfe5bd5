"""RFC 9457 problem details for every error a service answers (R-ERR-1).

Domain code raises :class:`ProblemError` subclasses; FastAPI's own validation errors, Starlette's
HTTP errors and unexpected exceptions are rendered by the handlers that
:func:`install_error_handlers` registers. Unexpected exceptions are logged with the correlation
id and answered 500 without internals.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any, TypeVar, cast

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from te_shared.logging import correlation_id_var, get_logger

T = TypeVar("T")

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
log = get_logger(__name__)


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `body.name`.")
    message: str
    code: str | None = None


class Problem(BaseModel):
    """The problem details body (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = Field(default=None, description="Machine-readable reason.")
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """An error with an HTTP status, rendered as problem details."""

    status: int = 500
    code: str = "internal_error"
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: Sequence[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = list(errors) if errors is not None else None
        self.extra = extra or {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The body: a :class:`Problem` without its unset fields, then ``extra``.

        Built as the dictionary it is: every refused request answers one, and building the
        model to dump it again validated the error's own fields, a twentieth of a refused
        sign-up's CPU."""
        body: dict[str, Any] = {
            "type": f"urn:problem:{self.code}",
            "title": self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
        }
        if self.detail is not None:
            body["detail"] = self.detail
        if instance is not None:
            body["instance"] = instance
        body["code"] = self.code
        if self.errors is not None:
            body["errors"] = [error.model_dump(exclude_none=True) for error in self.errors]
        if self.extra:
            body.update(jsonable_encoder(self.extra))
        return body


class BadRequest(ProblemError):
    status = 400
    code = "bad_request"


class Unauthorized(ProblemError):
    status = 401
    code = "unauthorized"


class Forbidden(ProblemError):
    status = 403
    code = "forbidden"


class NotFound(ProblemError):
    status = 404
    code = "not_found"


class Conflict(ProblemError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ProblemError):
    status = 413
    code = "payload_too_large"


class Unprocessable(ProblemError):
    status = 422
    code = "validation_error"


class ServiceUnavailable(ProblemError):
    status = 503
    code = "service_unavailable"


def field_error(field: str, message: str, code: str | None = None) -> Unprocessable:
    """A 422 naming one offending field."""
    return Unprocessable(message, errors=[FieldError(field=field, message=message, code=code)])


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def path_of(scope: Scope) -> str:
    """``request.url.path`` (a problem's ``instance``, the path the handlers log) without
    building the URL: Starlette parses the host header and splits the whole URL for it, on
    every refused request."""
    return str(scope["path"]).replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def problem_answer(exc: ProblemError, scope: Scope) -> JSONResponse:
    """``exc`` answered as problem details, as the app's handler of :class:`ProblemError` does
    (for code that answers before the exception middleware would see it raised)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(exc.status, exc.to_problem(path_of(scope)), headers)


async def _problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_answer(exc, request.scope)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    not_allowed = _method_not_allowed(request)
    if not_allowed is not None:
        return not_allowed
    errors = [
        FieldError(
            field=_loc(err.get("loc", ())), message=str(err.get("msg")), code=err.get("type")
        )
        for err in exc.errors()
    ]
    problem = Unprocessable("The request is not valid.", errors=errors)
    return problem_response(422, problem.to_problem(path_of(request.scope)))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = Problem(
        type="about:blank",
        title=phrase,
        status=status,
        detail=exc.detail if isinstance(exc.detail, str) else phrase,
        instance=path_of(request.scope),
    ).model_dump(exclude_none=True)
    headers = dict(exc.headers) if exc.headers else {}
    if status == 405:
        # Starlette's names only the methods of the first route whose path matched, and a path
        # usually has one route per method
        documented = documented_methods(request)
        if documented:
            headers["Allow"] = ", ".join(documented)
    return problem_response(status, body, headers or None)


_PathTemplates = list[tuple[re.Pattern[str], int, list[str]]]


def _documented_paths(app: Any) -> _PathTemplates:
    """Each path template of ``app``'s OpenAPI document: its pattern, how many parameters it
    has and the methods it documents. Built once per document and kept on the app: the
    idempotency middleware asks for every request with a key, and compiling the templates
    each time was a tenth of such a sign-up's CPU."""
    paths = app.openapi().get("paths", {})  # the same while the document is (not the copy)
    cached = getattr(app.state, "documented_paths", None)
    if cached is not None and cached[0] is paths:
        return cast(_PathTemplates, cached[1])
    templates: _PathTemplates = []
    for template, operations in paths.items():
        parts = re.split(r"(\{[^}]*\})", template)
        regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        methods = [m.upper() for m in operations if m in _HTTP_METHODS]
        templates.append((re.compile(regex), template.count("{"), methods))
    app.state.documented_paths = (paths, templates)
    return templates


def documented_methods(request: Request) -> list[str] | None:
    """The methods the app's OpenAPI document serves the request's path with (its ``Allow``),
    None when it does not document the path. Where several templates match, the one naming
    the path most exactly counts (fewest parameters): ``/accounts/server-to-server`` is that
    operation's, not ``/accounts/{account_id}``'s."""
    path = path_of(request.scope)
    matching = [
        (parameters, methods)
        for pattern, parameters, methods in _documented_paths(request.app)
        if pattern.fullmatch(path)
    ]
    if not matching:
        return None
    fewest = min(count for count, _ in matching)
    return sorted({m for count, methods in matching if count == fewest for m in methods})


def _method_not_allowed(request: Request) -> JSONResponse | None:
    """405 for a path that names a resource of its own not served with this method, though an
    operation with a path parameter took the request (``PATCH /accounts/server-to-server``
    reaching ``PATCH /accounts/{account_id}``, whose id then fails to parse): Starlette routes
    by the first template that matches, so it answers 422 for the id instead."""
    methods = documented_methods(request)
    if not methods or request.method in methods:
        return None
    body = Problem(
        title=HTTPStatus(405).phrase,
        status=405,
        detail="Method Not Allowed",
        instance=path_of(request.scope),
    ).model_dump(exclude_none=True)
    return problem_response(405, body, {"Allow": ", ".join(methods)})


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database went away (restart, failover): 503 with Retry-After, not a bare 500."""
    return database_unavailable_response(path_of(request.scope), exc)


def database_unavailable_response(path: str, exc: BaseException) -> JSONResponse:
    """The answer to a request whose database went away, or whose wait for one of its
    connections ran out (:func:`database_busy_response`), also for a middleware, which runs
    outside the app's exception handlers: 503 with Retry-After."""
    if isinstance(exc, PoolTimeout):
        return database_busy_response(path)
    log.warning("database_unavailable", path=path, error=type(exc).__name__)
    problem = ServiceUnavailable(
        "The service cannot reach its database right now; retry shortly.",
        code="database_unavailable",
    )
    return problem_response(503, problem.to_problem(path), {"Retry-After": "2"})


class EverySoOften:
    """A warning that may repeat for every request of an overload, written at most once per
    ``every`` seconds with how many times it happened since the last line (``times``): an
    overload stays visible in the logs without a line per request, whose writing would take
    CPU from the very requests it reports on."""

    def __init__(self, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.clock = every, clock
        self.last = -math.inf
        self.since = 0

    def happened(self) -> int | None:
        """Count one more; the count to write when a line is due (then start again), else
        None."""
        self.since += 1
        now = self.clock()
        if now - self.last < self.every:
            return None
        times, self.since, self.last = self.since, 0, now
        return times


_busy = EverySoOften()


def database_busy_response(path: str) -> JSONResponse:
    """The answer to a request that waited ``DATABASE_POOL_TIMEOUT`` for a database connection
    while every one was in use (a storm beyond what the pool serves): 503 with Retry-After,
    nothing done. A warning at most once a second, with how many were answered so."""
    times = _busy.happened()
    if times is not None:
        log.warning("database_busy", path=path, times=times)
    problem = ServiceUnavailable(
        "The service is answering more requests than its database connections serve; retry "
        "shortly.",
        code="database_busy",
    )
    return problem_response(503, problem.to_problem(path), {"Retry-After": "2"})


#: SQLSTATEs of a transaction the database rolled back to keep concurrent ones consistent: running
#: it again succeeds (40P01 deadlock_detected, 40001 serialization_failure).
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE behind a SQLAlchemy error. asyncpg errors arrive as a plain ``DBAPIError``
    whose ``orig`` (SQLAlchemy's adapter) carries ``sqlstate``; psycopg's carry ``pgcode``."""
    orig = exc.orig
    for attribute in ("sqlstate", "pgcode"):
        code = getattr(orig, attribute, None)
        if isinstance(code, str):
            return code
    cause = getattr(orig, "__cause__", None)
    code = getattr(cause, "sqlstate", None)
    return code if isinstance(code, str) else None


def unique_violation(exc: BaseException) -> bool:
    """A row the transaction inserted was already there (23505; SQLite says so in words): when
    it read the row as missing first, a concurrent transaction inserted it and committed in
    between, and the same work run again finds it."""
    if not isinstance(exc, IntegrityError):
        return False
    return sqlstate(exc) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


#: SQLSTATEs of a database that cannot serve right now: class 08 (connection exceptions),
#: 57P01-57P03 (admin or crash shutdown, cannot connect now: a restart or failover) and 53300
#: (too many connections). asyncpg delivers these as a plain ``DBAPIError``.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def database_unavailable(exc: BaseException) -> bool:
    """The database is away (restarting, failing over, unreachable), or every connection of
    the pool stayed in use for as long as work waits for one: the same work succeeds once it
    is back, or less busy."""
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | PoolTimeout):
        return True  # a pool's wait that ran out: busy, not away, but as passing
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = sqlstate(exc)
        return state is not None and (state.startswith("08") or state in UNAVAILABLE_SQLSTATES)
    return False


def transient_database_error(exc: BaseException) -> bool:
    """Running the same transaction again will succeed: the database was away, or it rolled
    this one back for a concurrent one (deadlock, serialization failure)."""
    return database_unavailable(exc) or (
        isinstance(exc, DBAPIError) and sqlstate(exc) in TRANSIENT_SQLSTATES
    )


async def while_database_away(
    work: Callable[[], Awaitable[T]], *, budget_seconds: float, what: str, **context: Any
) -> T:
    """Run ``work`` (a whole transaction, safe to run again) and run it again, with backoff,
    while it fails only because the database is away or rolled it back for another
    (:func:`transient_database_error`), for up to ``budget_seconds``; then the error stands.
    For background work (a consumed message, a Zoom job) that would otherwise give up on, or
    wait a long lease out for, a database restart of a few seconds."""
    waited = 0.0
    while True:
        try:
            return await work()
        except Exception as exc:
            if not transient_database_error(exc) or waited >= budget_seconds:
                raise
            delay = min(0.2 * 2 ** min(int(waited), 5), 5.0)
            log.warning(
                f"{what}_retry_database_unavailable",
                error=type(exc).__name__,
                waited=round(waited, 1),
                **context,
            )
            await asyncio.sleep(delay)
            waited += delay


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refused (class 22: too long, out of range, NUL in text) is the
    client's input: 422. A deadlock or serialization failure is transient: 503, retry in 1 s.
    Anything else (a constraint the code should have checked first) is an unexpected error."""
    assert isinstance(exc, DBAPIError)
    if database_unavailable(exc):  # e.g. 57P01 while PostgreSQL restarts, through asyncpg
        return await _database_unavailable(request, exc)
    state = sqlstate(exc)
    if isinstance(exc, DataError) or (state is not None and state.startswith("22")):
        # the statement and its parameters are not logged: they hold the client's data
        log.warning("database_rejected_value", path=path_of(request.scope), sqlstate=state)
        problem = Unprocessable(
            "A value in the request cannot be stored: it is too long, out of range, or holds "
            "characters such as NUL (\\u0000).",
            code="value_not_storable",
        )
        return problem_response(422, problem.to_problem(path_of(request.scope)))
    if state in TRANSIENT_SQLSTATES:
        log.warning("database_transient_conflict", path=path_of(request.scope), sqlstate=state)
        transient = ServiceUnavailable(
            "The change collided with a concurrent one and was rolled back; retry it.",
            code="transient_conflict",
        )
        return problem_response(
            503, transient.to_problem(path_of(request.scope)), {"Retry-After": "1"}
        )
    return await _unexpected_error(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:  # noqa: ARG001
    cid = (
        correlation_id_var.get()
        or getattr(request.state, "correlation_id", None)
        or str(uuid.uuid4())
    )
    log.exception("unhandled_error", path=path_of(request.scope), correlation_id=cid)
    body = Problem(
        type="urn:problem:internal_error",
        title="Internal Server Error",
        status=500,
        detail=f"An unexpected error occurred. Reference: {cid}",
        instance=path_of(request.scope),
        code="internal_error",
    ).model_dump(exclude_none=True)
    return problem_response(500, body)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given error statuses (problem details only: the
    application-wide :func:`document_problems` drops the ``application/json`` that ``model=``
    adds, since no error is ever answered with it)."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
#: What an operation that takes a body may answer before its own code runs, and why.
BODY_PROBLEMS: dict[str, str] = {
    "400": "The body cannot be read: it is not text in UTF-8.",
    "413": "The body is larger than the service accepts (`MAX_BODY_BYTES`).",
    "422": "The request is not valid: a parameter or the body does not match the schema, the "
    "body is not JSON or not of the documented content type, or a rule refuses it; `errors` "
    "names each field.",
}
#: What every operation of the API (``/v1/``) may answer when it cannot be served right now.
SERVICE_UNAVAILABLE = (
    "The service cannot serve the request right now: its database is away "
    "(`database_unavailable`), every database connection stayed in use while the request "
    "waited `DATABASE_POOL_TIMEOUT` (`database_busy`), or a concurrent change made the "
    "database roll this one back (`transient_conflict`). Retry after `Retry-After` seconds; "
    "with the same `Idempotency-Key`, a retried change is done once."
)
_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 1},
}
#: What an operation with parameters (and no body) answers when one is malformed.
PARAMETER_PROBLEM = (
    "The request is not valid: a parameter does not match the schema, or a rule refuses it; "
    "`errors` names each one."
)
#: Descriptions FastAPI and :func:`problem_responses` write, which say nothing of the cause.
_GENERIC = frozenset({"Validation Error", HTTPStatus(422).phrase, "Unprocessable Content"})


def _problem(description: str) -> dict[str, Any]:
    content = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    return {"description": description, "content": content}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document say exactly what errors look like (R-ERR-1), for every
    operation of a service at once:

    - a problem is ``application/problem+json`` and nothing else: FastAPI documents
      ``application/json`` as well for a ``model=`` response, and its default 422 as
      ``HTTPValidationError``, a shape no service sends;
    - an operation with parameters answers 422 when one is malformed (FastAPI says so);
    - an operation with a body answers 400 (not UTF-8), 413 (too large) and 422 (not JSON,
      another content type, or not the schema), whatever its endpoint declares;
    - an operation of the API (``/v1/``) answers 503 with Retry-After when its database is
      away or busy.

    Changes ``openapi`` in place and returns it."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in components:
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
    for path, path_item in openapi.get("paths", {}).items():
        for method, operation in path_item.items():
            if method not in _HTTP_METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                content = response.get("content", {})
                if PROBLEM_JSON in content:
                    response["content"] = {PROBLEM_JSON: content[PROBLEM_JSON]}
                elif "/HTTPValidationError" in json.dumps(content):
                    responses[status] = _problem(response.get("description") or status)
            added = dict(BODY_PROBLEMS) if "requestBody" in operation else {}
            if operation.get("parameters") or added:
                added.setdefault("422", PARAMETER_PROBLEM)
            if path.startswith("/v1/"):
                added["503"] = SERVICE_UNAVAILABLE
            for status, description in added.items():
                current = responses.get(status)
                if current is None or current.get("description") in _GENERIC:
                    responses[status] = _problem(description)
            if "503" in responses:
                responses["503"].setdefault("headers", {})["Retry-After"] = _RETRY_AFTER
            operation["responses"] = dict(sorted(responses.items()))
    # FastAPI's shapes of a validation error, which nothing refers to any more
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'/{unused}"' not in json.dumps(openapi):
            components.pop(unused, None)
    return openapi
