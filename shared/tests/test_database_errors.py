"""R-ERR-1 safety net on a real PostgreSQL: a value the database refuses is the client's 422,
never a 500; a deadlock or serialization failure is a transient 503 with ``Retry-After: 1``; a
connection the server ended (a restart) is a 503 like any database outage, and so is a wait for
a busy pool that ran out;
a JSON body holding NUL is refused before it reaches the database."""

from __future__ import annotations

import asyncio
import decimal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from te_shared.db import create_engine
from te_shared.errors import install_error_handlers, sqlstate
from te_shared.middleware import BodySizeLimitMiddleware, JsonNulMiddleware
from te_testing.infra import DatabaseFactory, use_sqlite

pytestmark = pytest.mark.skipif(use_sqlite(), reason="PostgreSQL's errors are the subject")


def make_app(engine: AsyncEngine) -> FastAPI:
    """Endpoints that hand the client's values to PostgreSQL unchecked, as a bug would."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(JsonNulMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=64 * 1024)
    holding: list[int] = []
    both_hold = asyncio.Event()

    @app.post("/notes")
    async def create_note(body: dict[str, Any]) -> dict[str, str]:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO note (title, count, amount, body) VALUES (:t, :c, :a, :b)"),
                {
                    "t": body.get("title", "t"),
                    "c": body.get("count", 1),
                    "a": decimal.Decimal(str(body.get("amount", 1))),
                    "b": body.get("body", "b"),
                },
            )
        return {"ok": "created"}

    @app.get("/notes")
    async def find_notes(q: str) -> dict[str, int]:
        async with engine.connect() as conn:
            found = await conn.scalar(text("SELECT count(*) FROM note WHERE title = :q"), {"q": q})
        return {"found": int(found or 0)}

    @app.post("/transfer/{first}/{second}")
    async def transfer(first: int, second: int) -> dict[str, str]:
        """Locks ``first``, waits until the other transfer holds its first row, then locks
        ``second``: two opposite transfers deadlock, and PostgreSQL aborts one of them."""
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE account SET n = n + 1 WHERE id = :i"), {"i": first})
            holding.append(first)
            if len(holding) == 2:
                both_hold.set()
            await asyncio.wait_for(both_hold.wait(), timeout=10)
            await conn.execute(text("UPDATE account SET n = n + 1 WHERE id = :i"), {"i": second})
        return {"ok": "moved"}

    @app.post("/serialization")
    async def serialization() -> None:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' "
                    "USING ERRCODE = '40001'; END $$"
                )
            )

    @app.get("/terminated")
    async def terminated() -> None:
        """The server ends the session mid-request, as a PostgreSQL restart or failover does."""
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    @app.post("/duplicate")
    async def duplicate() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO account (id, n) VALUES (1, 0)"))

    return app


@pytest.fixture
async def client(databases: DatabaseFactory) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_engine(await databases.create("dberrors"))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE note (id serial PRIMARY KEY, title varchar(20) NOT NULL, "
                "count integer NOT NULL, amount numeric(5, 2) NOT NULL, body text NOT NULL)"
            )
        )
        await conn.execute(text("CREATE TABLE account (id integer PRIMARY KEY, n integer)"))
        await conn.execute(text("INSERT INTO account VALUES (1, 0), (2, 0)"))
    transport = httpx.ASGITransport(app=make_app(engine), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http
    await engine.dispose()


@pytest.mark.parametrize(
    ("body", "sqlstate_class"),
    [
        ({"title": "x" * 21}, "22001 string too long"),
        ({"count": 2**40}, "22000 integer out of range"),
        ({"amount": 10**6}, "22003 numeric out of range"),
    ],
    ids=["too-long", "int-range", "numeric-range"],
)
async def test_a_value_the_database_refuses_is_422(
    client: httpx.AsyncClient, body: dict[str, Any], sqlstate_class: str
) -> None:
    response = await client.post("/notes", json=body)
    assert response.status_code == 422, (sqlstate_class, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "value_not_storable"
    assert "INSERT" not in response.text  # no internals
    assert (await client.post("/notes", json={"title": "fine"})).status_code == 200


async def test_nul_in_a_query_parameter_is_422_from_the_database_error(
    client: httpx.AsyncClient,
) -> None:
    """No JSON body to refuse it early: PostgreSQL's 22021 is still the client's error."""
    response = await client.get("/notes", params={"q": "a\x00b"})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "value_not_storable"


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        (b'{"body": "a\\u0000b"}', ["body.body"]),
        (b'{"tags": ["ok", "x\\u0000"], "n": {"deep": "\\u0000"}}', ["body.tags.1", "body.n.deep"]),
        (b'{"ke\\u0000y": 1}', ["body"]),
    ],
)
async def test_a_json_body_with_nul_is_refused_before_the_database(
    client: httpx.AsyncClient, raw: bytes, fields: list[str]
) -> None:
    response = await client.post(
        "/notes", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"  # refused at parsing, not by the database
    assert [e["field"] for e in problem["errors"]] == fields
    assert {e["code"] for e in problem["errors"]} == {"nul_character"}


async def test_an_escaped_backslash_before_u0000_is_ordinary_text(
    client: httpx.AsyncClient,
) -> None:
    """``"\\\\u0000"`` in JSON is a backslash followed by ``u0000``: storable, accepted."""
    response = await client.post(
        "/notes", content=b'{"body": "C:\\\\u0000"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


async def test_a_deadlock_is_503_with_retry_after_1(client: httpx.AsyncClient) -> None:
    first, second = await asyncio.gather(client.post("/transfer/1/2"), client.post("/transfer/2/1"))
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 503], (first.text, second.text)
    refused = first if first.status_code == 503 else second
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["code"] == "transient_conflict"


async def test_a_serialization_failure_is_503_with_retry_after_1(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/serialization")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "transient_conflict"


async def test_a_connection_the_database_ended_is_503_not_500(client: httpx.AsyncClient) -> None:
    """Through asyncpg a connection ended by the server (restart, failover) is a plain
    ``DBAPIError`` (SQLSTATE 08003), not ``OperationalError``: still 503 with Retry-After."""
    response = await client.get("/terminated")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.json()["code"] == "database_unavailable"


async def test_a_wait_for_a_busy_pool_that_runs_out_is_503_not_500(
    databases: DatabaseFactory,
) -> None:
    """Every connection of the pool in use for as long as a request waits for one (a storm
    beyond what the pool serves, ``DATABASE_POOL_TIMEOUT``): 503 ``database_busy`` with
    Retry-After, not SQLAlchemy's ``TimeoutError`` as a 500; with a connection free again, the
    same request is served."""
    engine = create_engine(await databases.create("dbbusy"), pool_size=1, pool_timeout=0.2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE note (title text)"))
    app = make_app(engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            async with engine.connect() as first, engine.connect() as second:  # the whole pool
                await first.execute(text("SELECT 1"))
                await second.execute(text("SELECT 1"))
                response = await http.get("/notes", params={"q": "x"})
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "2"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "database_busy"
            response = await http.get("/notes", params={"q": "x"})  # a connection is free
            assert (response.status_code, response.json()) == (200, {"found": 0})
    finally:
        await engine.dispose()


async def test_other_database_errors_stay_unexpected_500s(client: httpx.AsyncClient) -> None:
    """The net is narrow: a unique violation is a bug to fix, answered 500 without internals."""
    response = await client.post("/duplicate")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "account" not in response.text


async def test_asyncpg_errors_arrive_as_dbapi_errors_carrying_the_sqlstate(
    databases: DatabaseFactory,
) -> None:
    """Why the handler reads ``sqlstate``: through asyncpg a data exception is a plain
    ``DBAPIError``, not SQLAlchemy's ``DataError``."""
    engine = create_engine(await databases.create("sqlstate"))
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT 1 / :d"), {"d": 0})
    finally:
        await engine.dispose()
    assert type(caught.value) is DBAPIError
    assert sqlstate(caught.value) == "22012"  # division_by_zero, class 22: data exception
