"""te_shared.idempotency: the Idempotency-Key rules on a small app (SQLite, in process), so the
states between two requests can be held still; the e2e test runs them over the real services."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Form, HTTPException, Response, UploadFile
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from te_shared import db
from te_shared.auth import JWTConfig, make_token
from te_shared.db import make_metadata
from te_shared.errors import install_error_handlers
from te_shared.idempotency import (
    MAX_PARTS,
    IdempotencyMiddleware,
    IdempotencyRecordMixin,
    body_identity,
)

SECRET, AUDIENCE = "test-secret", "training-events"


class Base(DeclarativeBase):
    metadata = make_metadata()


class Record(IdempotencyRecordMixin, Base):
    pass


class World:
    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail_next = False


def token(user: str, company: str = "acme") -> dict[str, str]:
    raw = make_token(secret=SECRET, company_id=company, user_id=user, role="user", email=None)
    return {"Authorization": f"Bearer {raw}"}


def _guard(app: FastAPI, maker: async_sessionmaker[Any]) -> None:
    """Keys kept 24 h, a running request's lease 60 s."""
    app.add_middleware(
        IdempotencyMiddleware,
        model=Record,
        sessionmaker=lambda: maker,
        jwt_config=lambda: JWTConfig(secret=SECRET, audience=AUDIENCE),
        ttl=dt.timedelta(hours=24),
        lease=dt.timedelta(seconds=60),
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, World]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    world = World()
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/v1/files", status_code=201)
    async def upload(file: UploadFile, note: Annotated[str, Form()] = "") -> dict[str, Any]:
        world.calls += 1
        content = await file.read()
        return {"n": world.calls, "name": file.filename, "size": len(content), "note": note}

    @app.post("/v1/things", status_code=201)
    async def create(body: dict[str, Any], response: Response) -> dict[str, Any]:
        world.calls += 1
        response.headers["ETag"] = f'"{world.calls}"'
        response.headers["Location"] = f"/v1/things/{world.calls}"
        world.entered.set()
        if world.gate is not None:
            await world.gate.wait()
        if world.fail_next:
            world.fail_next = False
            raise HTTPException(status_code=503, detail="down")
        return {"n": world.calls, **body}

    _guard(app, maker)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http, world
    await engine.dispose()


async def test_the_same_key_and_request_replays_the_first_answer(
    client: tuple[httpx.AsyncClient, World],
) -> None:
    http, world = client
    headers = {**token("u1"), "Idempotency-Key": "k-1"}
    first = await http.post("/v1/things", json={"a": 1}, headers=headers)
    again = await http.post("/v1/things", json={"a": 1}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() == {"n": 1, "a": 1}
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert world.calls == 1


async def test_a_replay_carries_the_first_answers_headers(
    client: tuple[httpx.AsyncClient, World],
) -> None:
    """The ETag above all: a client that lost a PATCH's answer and retried it needs the new
    version for its next If-Match. What belonged to the one response (its length, date) is
    made anew; a header the first answer lacked is not invented."""
    http, world = client
    headers = {**token("u1"), "Idempotency-Key": "k-etag"}
    first = await http.post("/v1/things", json={"a": 1}, headers=headers)
    world.calls += 5  # were the request done again, its ETag would say 7
    again = await http.post("/v1/things", json={"a": 1}, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert (again.headers["etag"], again.headers["location"]) == ('"1"', "/v1/things/1")
    assert (first.headers["etag"], first.headers["location"]) == ('"1"', "/v1/things/1")
    assert again.headers.get_list("content-type") == [first.headers["content-type"]]
    assert again.headers.get_list("content-length") == [str(len(first.content))]
    assert again.content == first.content


async def test_the_same_key_with_another_request_is_a_422(
    client: tuple[httpx.AsyncClient, World],
) -> None:
    http, world = client
    headers = {**token("u1"), "Idempotency-Key": "k-2"}
    assert (await http.post("/v1/things", json={"a": 1}, headers=headers)).status_code == 201
    other = await http.post("/v1/things", json={"a": 2}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert world.calls == 1


async def test_a_key_still_running_is_a_409_then_replays(
    client: tuple[httpx.AsyncClient, World],
) -> None:
    http, world = client
    world.gate = asyncio.Event()
    headers = {**token("u1"), "Idempotency-Key": "k-3"}
    running = asyncio.create_task(http.post("/v1/things", json={"a": 1}, headers=headers))
    await world.entered.wait()
    busy = await http.post("/v1/things", json={"a": 1}, headers=headers)
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_use"
    assert busy.headers["retry-after"] == "1"
    world.gate.set()
    assert (await running).status_code == 201
    replayed = await http.post("/v1/things", json={"a": 1}, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert world.calls == 1


async def test_a_key_released_between_its_claim_and_its_read_is_claimed_again(
    client: tuple[httpx.AsyncClient, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim finds the key taken by a request that then fails and releases it before the
    record is read: the key is claimed again and this request runs, not a 500 for a record
    that is gone."""
    http, world = client
    gate = world.gate = asyncio.Event()
    world.fail_next = True
    headers = {**token("u1"), "Idempotency-Key": "k-race"}
    failing = asyncio.create_task(http.post("/v1/things", json={"a": 1}, headers=headers))
    await world.entered.wait()  # the key is taken, its request running
    claims: list[bool] = []

    async def claim_then_release(maker: Any, statement: Any, values: dict[str, Any]) -> Any:
        rows = await real_alone(maker, statement, values)
        if "request_hash" not in values:  # not a claim (the failing request's release)
            return rows
        if not claims:  # the first claim found it taken: the failing request ends now
            gate.set()
            assert (await failing).status_code == 503  # a server error: the key released
        claims.append(bool(rows))
        return rows

    real_alone = db.alone
    monkeypatch.setattr(db, "alone", claim_then_release)
    world.gate, world.entered = None, asyncio.Event()
    retried = await http.post("/v1/things", json={"a": 1}, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert claims[:2] == [False, True]  # taken, then claimed again
    assert world.calls == 2


async def test_keys_belong_to_their_caller_and_company(
    client: tuple[httpx.AsyncClient, World],
) -> None:
    http, world = client
    for who in (token("u1"), token("u2"), token("u1", company="other")):
        r = await http.post("/v1/things", json={"a": 1}, headers={**who, "Idempotency-Key": "k"})
        assert r.status_code == 201
        assert "idempotent-replayed" not in r.headers
    assert world.calls == 3


async def test_a_server_error_is_not_kept_and_bad_keys_are_refused(
    client: tuple[httpx.AsyncClient, World],
) -> None:
    http, world = client
    headers = {**token("u1"), "Idempotency-Key": "k-5"}
    world.fail_next = True
    assert (await http.post("/v1/things", json={"a": 1}, headers=headers)).status_code == 503
    retried = await http.post("/v1/things", json={"a": 1}, headers=headers)
    assert retried.status_code == 201  # the retry ran: a 5xx is not replayed
    assert world.calls == 2
    bad = await http.post(
        "/v1/things", json={"a": 1}, headers={**token("u1"), "Idempotency-Key": "x" * 256}
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "idempotency_key_invalid"
    # without a key, or without a token, nothing is kept
    plain = await http.post("/v1/things", json={"a": 1}, headers=token("u1"))
    assert plain.status_code == 201
    anonymous = await http.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-6"})
    assert anonymous.status_code == 201
    assert world.calls == 4


async def test_an_answer_the_key_could_not_keep_is_still_sent(
    client: tuple[httpx.AsyncClient, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away between the request's commit and the key's (a PostgreSQL restart,
    found by the soak): the committed change's answer is sent, not a 500; a retry with the key
    waits out the lease."""
    http, world = client

    async def database_gone(*_: Any) -> None:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(IdempotencyMiddleware, "_finish", database_gone)
    headers = {**token("u1"), "Idempotency-Key": "k-7"}
    first = await http.post("/v1/things", json={"a": 1}, headers=headers)
    assert first.status_code == 201
    assert first.json() == {"n": 1, "a": 1}
    retried = await http.post("/v1/things", json={"a": 1}, headers=headers)
    assert retried.status_code == 409
    assert retried.json()["code"] == "idempotency_key_in_use"
    assert world.calls == 1


async def test_a_database_that_refuses_connections_is_a_503_not_a_500() -> None:
    """PostgreSQL restarting refuses connections; the key is claimed in the middleware, outside
    the app's exception handlers, where that was a 500 (found by the soak). It is the 503 with
    Retry-After every other request gets then, and the endpoint does not run."""
    engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    maker = async_sessionmaker(engine, expire_on_commit=False)
    calls = 0
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/v1/things", status_code=201)
    async def create(body: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return body

    _guard(app, maker)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = {**token("u1"), "Idempotency-Key": "k-down"}
            answer = await http.post("/v1/things", json={"a": 1}, headers=headers)
    finally:
        await engine.dispose()
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "2"
    assert answer.json()["code"] == "database_unavailable"
    assert calls == 0


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_a_retried_upload_replays_though_its_multipart_boundary_is_new(
    client: tuple[httpx.AsyncClient, World],
) -> None:
    """A client draws a new multipart boundary for every send (httpx does, as browsers and
    curl do), so a retried file upload's bytes differ from the first's: its parts decide."""
    http, world = client
    headers = {**token("u1"), "Idempotency-Key": "upload-1"}
    sent = {"file": ("people.xlsx", b"PK\x03\x04 rows", XLSX)}
    first = await http.post("/v1/files", files=sent, data={"note": "hr"}, headers=headers)
    again = await http.post("/v1/files", files=sent, data={"note": "hr"}, headers=headers)
    boundaries = {r.request.headers["content-type"] for r in (first, again)}
    assert len(boundaries) == 2  # two boundaries, so two different bodies
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() == {"n": 1, "name": "people.xlsx", "size": 9, "note": "hr"}
    assert again.headers["idempotent-replayed"] == "true"
    assert world.calls == 1


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ({"file": ("people.xlsx", b"PK\x03\x04 other rows", XLSX)}, {"note": "hr"}),
        ({"file": ("others.xlsx", b"PK\x03\x04 rows", XLSX)}, {"note": "hr"}),
        ({"file": ("people.xlsx", b"PK\x03\x04 rows", "text/csv")}, {"note": "hr"}),
        ({"file": ("people.xlsx", b"PK\x03\x04 rows", XLSX)}, {"note": "finance"}),
    ],
    ids=["content", "file name", "type", "another field"],
)
async def test_an_upload_that_differs_in_a_part_is_another_request(
    client: tuple[httpx.AsyncClient, World], files: dict[str, Any], data: dict[str, str]
) -> None:
    http, world = client
    headers = {**token("u1"), "Idempotency-Key": "upload-2"}
    sent = {"file": ("people.xlsx", b"PK\x03\x04 rows", XLSX)}
    assert (
        await http.post("/v1/files", files=sent, data={"note": "hr"}, headers=headers)
    ).status_code == 201
    other = await http.post("/v1/files", files=files, data=data, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert world.calls == 1


def test_a_body_that_is_not_whole_multipart_is_compared_byte_for_byte() -> None:
    cut = b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nrows'  # no closing
    assert body_identity("multipart/form-data; boundary=b", cut) == cut
    assert body_identity("application/json", b'{"a": 1}') == b'{"a": 1}'
    assert body_identity(None, b"raw") == b"raw"


def test_a_body_of_more_parts_than_an_endpoint_takes_is_not_parsed_part_by_part() -> None:
    """A tiny body of many tiny parts would hold the event loop while each is parsed and
    hashed: past MAX_PARTS the body is compared byte for byte (the endpoint refuses it)."""
    part = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'
    many = part * (MAX_PARTS + 1) + b"--b--\r\n"
    assert body_identity("multipart/form-data; boundary=b", many) == many
    few = part * MAX_PARTS + b"--b--\r\n"
    assert body_identity("multipart/form-data; boundary=b", few) != few
