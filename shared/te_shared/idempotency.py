"""Safe retries of writes: the ``Idempotency-Key`` header (issue "Calendars and integrations" §3).

A client that sends ``Idempotency-Key: <key>`` with a POST, PUT or PATCH may send the same
request again (a timeout, a dropped connection) without doing it twice:

- the same key with the same request (method, path, query and body) within
  ``IDEMPOTENCY_TTL_HOURS`` (24 h) replays the first answer, status, headers (an ``ETag`` the
  client's next ``If-Match`` needs among them) and body, with ``Idempotent-Replayed: true``,
  and does nothing again. A ``multipart/form-data`` body (a file upload) is the same when its
  parts are (names, file names, types and contents, in order): a client draws a new boundary
  for every send, so a retry's bytes never match the first's;
- the same key with another request is a 422 (``idempotency_key_reused``);
- the same key while its first request still runs is a 409 (``idempotency_key_in_use``,
  ``Retry-After: 1``).

Keys are scoped to the company and the caller of the bearer token (two users' keys never
meet); a request without a valid token is passed on untouched (the endpoint answers 401). A
server error (5xx) is not kept: the client may retry it with the same key. An answer is kept
only once the endpoint's transaction has committed.

The record lives in the service's own database (``idempotency_keys``, created by
:func:`te_shared.migrations.create_idempotency_table`), beside the data it protects. It is
written in a transaction of its own around the request; if the process dies between the
request's commit and the record's (or the database goes away between them: the answer is
sent all the same), the record stays ``running`` until its lease (``IDEMPOTENCY_LEASE_SECONDS``)
ends, after which a retry runs the request again: the one window where a retry can act twice
(the README says so).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import (
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from te_shared.auth import JWTConfig, decode_token
from te_shared.db import (
    UTCDateTime,
    alone_on_driver,
    dialect_of,
    is_postgres,
    utcnow,
)
from te_shared.errors import (
    ProblemError,
    database_unavailable,
    database_unavailable_response,
    documented_methods,
    problem_response,
)
from te_shared.logging import get_logger

log = get_logger(__name__)

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
#: printable ASCII, as Stripe's and the IETF draft's keys (a UUID is typical)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
METHODS = frozenset({"POST", "PUT", "PATCH"})
#: claims of a key in one request: a record found taken, then gone before it could be read
#: (its request failed and released it), is claimed again; a key that keeps changing hands
#: that fast is answered as in use (retry after a second)
CLAIM_ATTEMPTS = 3
RUNNING, DONE = "running", "done"
#: headers of an answer that belong to that one response, not to the answer: not kept for a
#: replay (content-type is kept in a column of its own, content-length is made again)
_NOT_REPLAYED = frozenset(
    {
        b"content-length",
        b"content-type",
        b"date",
        b"server",
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"set-cookie",
        b"x-correlation-id",
    }
)


class IdempotencyRecordMixin:
    """Columns of ``idempotency_keys``; a service declares
    ``class IdempotencyRecord(IdempotencyRecordMixin, Base)``."""

    __tablename__ = "idempotency_keys"

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    caller: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10))
    status_code: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the answer's other headers (``ETag``...), a JSON list of ``[name, value]``
    headers: Mapped[str | None] = mapped_column(Text(), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary(), nullable=True)
    locked_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class KeyReused(ProblemError):
    status = 422
    code = "idempotency_key_reused"


class KeyInUse(ProblemError):
    status = 409
    code = "idempotency_key_in_use"


class KeyInvalid(ProblemError):
    status = 400
    code = "idempotency_key_invalid"


def request_hash(
    method: str, path: str, query: bytes, body: bytes, content_type: str | None = None
) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body_identity(content_type, body)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def body_identity(content_type: str | None, body: bytes) -> bytes:
    """What makes two bodies the same request: their bytes, except for ``multipart/form-data``,
    whose boundary the client draws afresh for every send (httpx, browsers, curl): there it is
    the parts, in order, each by its name, file name, type and content. A body that does not
    parse as multipart is compared byte for byte (the endpoint refuses it anyway)."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        return body
    try:
        parts = _multipart_parts(boundary, body)
    except MultipartParseError:
        return body
    identity = hashlib.sha256(b"multipart/form-data")
    for headers, content in parts:
        disposition, params = parse_options_header(headers.get(b"content-disposition"))
        for field in (
            disposition,
            params.get(b"name", b""),
            params.get(b"filename", b""),
            headers.get(b"content-type", b""),
            hashlib.sha256(content).digest(),
        ):
            identity.update(len(field).to_bytes(8, "big"))
            identity.update(field)
    return identity.digest()


#: more parts than an endpoint takes (Starlette's form parser stops at 1,000 fields and 1,000
#: files): such a body is compared byte for byte, not parsed part by part (40,000 tiny parts
#: in 2 MiB held the event loop for 0.6 s)
MAX_PARTS = 1000


def _multipart_parts(boundary: bytes, body: bytes) -> list[tuple[dict[bytes, bytes], bytes]]:
    """The parts of a multipart body, with python-multipart (Starlette's parser): each part's
    headers (lower-case names) and content. :class:`MultipartParseError` past
    :data:`MAX_PARTS`."""
    parts: list[tuple[dict[bytes, bytes], bytes]] = []
    headers: dict[bytes, bytes] = {}
    field, value, content = bytearray(), bytearray(), bytearray()

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise MultipartParseError(f"more than {MAX_PARTS} parts")
        headers.clear()
        content.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        content.extend(data[start:end])

    def on_part_end() -> None:
        parts.append((dict(headers), bytes(content)))

    ended = False

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )
    parser.write(body)
    parser.finalize()
    if not ended:
        raise MultipartParseError("the body ends before its closing boundary")
    return parts


class IdempotencyMiddleware:
    """Applies the rules above to every POST, PUT and PATCH under ``/v1/`` that carries the
    header, except the paths ``exempt`` names (prefixes: a third party's callbacks)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        model: type[IdempotencyRecordMixin],
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        jwt_config: Callable[[], JWTConfig],
        ttl: dt.timedelta,
        lease: dt.timedelta,
        exempt: tuple[str, ...] = (),
        routes: Callable[[], Sequence[BaseRoute]] = tuple,
        driver: Callable[[], asyncpg.Pool | None] = lambda: None,
        busy_timeout: Callable[[], float] = lambda: 10.0,
    ) -> None:
        self.app = app
        self.driver = driver
        self.busy_timeout = busy_timeout
        self.routes = routes
        self.model = model
        self.sessionmaker = sessionmaker
        self.jwt_config = jwt_config
        self.ttl = ttl
        self.lease = lease
        self.exempt = exempt

    def _key(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            return None
        path: str = scope["path"]
        if not path.startswith("/v1/") or path.startswith(self.exempt):
            return None
        key = _header(scope, b"idempotency-key")
        return key if key is not None and self._routed(scope) else None

    def _routed(self, scope: Scope) -> bool:
        """The request reaches an endpoint (path and method): anything else (a 404, a 405)
        is the app's to answer, key or not."""
        routes = self.routes()
        if routes and not any(route.matches(scope)[0] is Match.FULL for route in routes):
            return False
        if "app" not in scope:
            return True
        documented = documented_methods(Request(scope))  # /accounts/server-to-server's own
        return documented is None or scope["method"] in documented

    def _caller(self, scope: Scope) -> tuple[str, str] | None:
        authorization = _header(scope, b"authorization")
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            principal = decode_token(token.strip(), self.jwt_config())
        except ProblemError:
            return None
        return principal.company_id, principal.user_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        caller = self._caller(scope) if key is not None else None
        if key is None or caller is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not _KEY.fullmatch(key):
            problem = KeyInvalid(
                "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            )
            await problem_response(400, problem.to_problem(path))(scope, receive, send)
            return
        body = await _read_body(receive)
        fingerprint = request_hash(
            scope["method"],
            path,
            scope.get("query_string", b""),
            body,
            _header(scope, b"content-type"),
        )
        try:
            replay = await self._begin(caller, key, fingerprint)
        except ProblemError as exc:
            headers = {"Retry-After": "1"} if isinstance(exc, KeyInUse) else None
            await problem_response(exc.status, exc.to_problem(path), headers)(scope, receive, send)
            return
        except Exception as exc:
            # outside the app's exception handlers: a database that is restarting would
            # otherwise be a 500 (found by the soak: a refused connection while PostgreSQL
            # came back)
            if not database_unavailable(exc):
                raise
            await database_unavailable_response(path, exc)(scope, receive, send)
            return
        if replay is not None:
            await _send_replay(replay, send)
            return
        captured = _Captured()
        try:
            await self.app(scope, _replaying(body), captured.keep)
        except BaseException:
            await self._forget(caller, key)
            raise
        # the answer is kept before it is sent: a client that retries the moment it has it
        # finds it replayed, not "still running"
        if captured.status is None or captured.status >= 500:
            await self._forget(caller, key)
        else:
            try:
                await self._finish(caller, key, captured)
            except Exception as exc:
                # the change committed, so its answer goes out even when it could not be kept
                # (the database went away between the two commits); a retry with the key
                # then waits out the lease, as after a process death
                log.warning("idempotency_answer_not_kept", error=type(exc).__name__)
        await captured.send_to(send)

    async def _begin(
        self, caller: tuple[str, str], key: str, fingerprint: str
    ) -> IdempotencyRecordMixin | None:
        """Claim the key (a new record, ``running``), or say why not; returns the record to
        replay when the request was answered before.

        A new key, the common case, is one statement run alone (one round trip, built once):
        with a transaction and a statement built per request around it, a sign-up storm whose
        requests all carried a key ran at a quarter of the rate of one without."""
        company_id, user_id = caller
        model = self.model
        sessionmaker = self.sessionmaker()
        claim = _claim_statement(_table(model), dialect_of(sessionmaker))
        for _ in range(CLAIM_ATTEMPTS):
            now = utcnow()
            values = {
                "company_id": company_id,
                "caller": user_id,
                "key": key,
                "request_hash": fingerprint,
                "locked_until": now + self.lease,
                "expires_at": now + self.ttl,
            }
            if await self._alone(claim, values):
                return None  # a new key: this request runs
            async with sessionmaker() as session, session.begin():
                stmt = select(model).where(
                    model.company_id == company_id, model.caller == user_id, model.key == key
                )
                if is_postgres(session):
                    stmt = stmt.with_for_update()
                record = (await session.scalars(stmt)).one_or_none()
                if record is None:
                    continue  # released meanwhile (its request failed, or pruned): claim again
                if record.expires_at <= now:  # an old use of the key: start afresh
                    record.request_hash, record.state = fingerprint, RUNNING
                    record.status_code = record.content_type = None
                    record.headers = record.body = None
                    record.locked_until, record.expires_at = now + self.lease, now + self.ttl
                    return None
                if record.request_hash != fingerprint:
                    raise KeyReused(
                        "This Idempotency-Key was used with another request; use a new key."
                    )
                if record.state == DONE:
                    session.expunge(record)
                    return record
                if record.locked_until > now:
                    raise KeyInUse("A request with this Idempotency-Key is still running.")
                record.locked_until = now + self.lease  # its lease ran out: take it over
                return None
        raise KeyInUse("A request with this Idempotency-Key is still running.")

    async def _alone(self, statement: Any, values: dict[str, Any]) -> list[Any]:
        """Run one statement as a transaction of its own and return its rows: on the service's
        driver pool when it has one (a keyed sign-up in a storm ran its two through the engine
        at a third of the CPU of the sign-up itself), else through the engine. A wait for a
        busy pool that runs out is the engine's (a 503)."""
        return await alone_on_driver(
            self.driver(), self.busy_timeout(), self.sessionmaker(), statement, values
        )

    async def _finish(self, caller: tuple[str, str], key: str, captured: _Captured) -> None:
        """Keep the answer: one statement, alone."""
        company_id, user_id = caller
        await self._alone(
            _finish_statement(_table(self.model)),
            {
                "record_company_id": company_id,
                "record_caller": user_id,
                "record_key": key,
                "answer_status_code": captured.status,
                "answer_content_type": captured.content_type,
                "answer_headers": json.dumps(captured.headers) if captured.headers else None,
                "answer_body": bytes(captured.body),
            },
        )

    async def _forget(self, caller: tuple[str, str], key: str) -> None:
        company_id, user_id = caller
        try:
            await self._alone(
                _forget_statement(_table(self.model)),
                {"record_company_id": company_id, "record_caller": user_id, "record_key": key},
            )
        except Exception as exc:  # the lease frees the key in the end
            log.warning("idempotency_key_not_released", error=type(exc).__name__)


def _table(model: type[IdempotencyRecordMixin]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _this_key(table: Table) -> Any:
    """The record of one caller's key, by bound values."""
    c = table.c
    return and_(
        c.company_id == bindparam("record_company_id"),
        c.caller == bindparam("record_caller"),
        c.key == bindparam("record_key"),
    )


@functools.cache
def _claim_statement(table: Table, dialect: str) -> Any:
    """A new key's record, ``running`` (nothing when the key is there: ``RETURNING`` then
    gives no row). Built once per table and dialect, every value bound (on the table: the ORM
    would take the parameters for a bulk insert)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    names = ("company_id", "caller", "key", "request_hash", "locked_until", "expires_at")
    return (
        insert(table)
        .values({**{name: bindparam(name) for name in names}, "state": RUNNING})
        .on_conflict_do_nothing()
        .returning(table.c.key)
    )


@functools.cache
def _finish_statement(table: Table) -> Any:
    """The answer kept: the key's record ``done``, with the answer's parts."""
    names = ("status_code", "content_type", "headers", "body")
    return (
        update(table)
        .where(_this_key(table))
        .values({**{name: bindparam(f"answer_{name}") for name in names}, "state": DONE})
    )


@functools.cache
def _forget_statement(table: Table) -> Any:
    return delete(table).where(_this_key(table))


async def prune(session: AsyncSession, model: type[IdempotencyRecordMixin]) -> int:
    """Forget keys past their time (called with the outbox's housekeeping)."""
    result = await session.execute(delete(model).where(model.expires_at < utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


class _Captured:
    """The response as the app sends it, held back (the writes answered here are small JSON
    documents) until the key records it, then sent as it was."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.content_type: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.messages: list[Message] = []

    async def keep(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", []):
                name = name.lower()
                if name == b"content-type":
                    self.content_type = value.decode("latin-1")
                elif name not in _NOT_REPLAYED:
                    self.headers.append((name.decode("latin-1"), value.decode("latin-1")))
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))
        self.messages.append(message)

    async def send_to(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


def _header(scope: Scope, name: bytes) -> str | None:
    """The request's first ``name`` header (lower-case, as ASGI gives them), or None."""
    for header, value in scope.get("headers", ()):
        if header == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_replay(record: IdempotencyRecordMixin, send: Send) -> None:
    headers = [(REPLAYED.lower().encode(), b"true")]
    headers += [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in json.loads(record.headers or "[]")
    ]
    if record.content_type:
        headers.append((b"content-type", record.content_type.encode("latin-1")))
    body = record.body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send(
        {"type": "http.response.start", "status": record.status_code or 200, "headers": headers}
    )
    await send({"type": "http.response.body", "body": body})


def document(app: Any, exempt: tuple[str, ...] = ()) -> None:
    """Add the ``Idempotency-Key`` header, and its 400/409/422 answers, to every POST, PUT and
    PATCH under ``/v1/`` of ``app``'s OpenAPI document (a gateway generates its client from it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return dict(app.openapi_schema)
        schema: dict[str, Any] = build()
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/") or path.startswith(exempt):
                continue
            for method, operation in operations.items():
                if method.upper() not in METHODS:
                    continue
                operation.setdefault("parameters", []).append(
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 255,
                            "pattern": "^[\\x21-\\x7e]{1,255}$",
                        },
                        "description": "Send the same key again with the same request to "
                        "retry it safely: within 24 h its first answer (status, headers "
                        "such as the `ETag`, body) is replayed "
                        "(`Idempotent-Replayed: true`) and nothing is done again. Scoped to "
                        "the company and the caller.",
                    }
                )
                responses = operation.setdefault("responses", {})
                for status, text in (
                    ("400", "The Idempotency-Key is not 1-255 printable ASCII characters."),
                    ("409", "A request with this Idempotency-Key is still running."),
                    ("422", "This Idempotency-Key was used with another request."),
                ):
                    documented = responses.setdefault(status, {"description": text})
                    documented.setdefault("content", {}).setdefault(
                        "application/problem+json",
                        {"schema": {"$ref": "#/components/schemas/Problem"}},
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
