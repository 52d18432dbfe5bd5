"""The sign-up's fast path (R-ENR-3, R-ENR-6): the common sign-up, refused or taking a seat,
done before the route's dependencies and ORM session, with the route's own answer; everything
else left to the route.

Each refusal is asked twice of the same running app: with the fast path's pool, and with it
taken out (the route alone). The answers must be the same, and the fast path must have answered
itself (the route's service function is not called). A race the fast path loses between its
read and its write (the last seat gone, the session deleted, a second sign-up of the same user)
is made by letting it decide on facts that are no longer true."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from registration.enrollments import fast_path, service
from registration.models import Enrollment, KnownUser, OutboxRecord
from te_shared import contracts as c
from te_shared import db
from te_shared.db import driver_pool
from te_shared.outbox import OutboxRelay
from te_testing.infra import use_sqlite
from te_testing.polling import eventually

if TYPE_CHECKING:
    from conftest import Reg

pytestmark = pytest.mark.skipif(use_sqlite(), reason="the fast path runs on PostgreSQL only")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[uuid.UUID]:
    """The session ids the route's own sign-up was asked for."""
    calls: list[uuid.UUID] = []
    real = service.sign_up

    async def counted(session: Any, principal: Any, session_id: uuid.UUID, caller: Any) -> Any:
        calls.append(session_id)
        return await real(session, principal, session_id, caller)

    monkeypatch.setattr(service, "sign_up", counted)
    return calls


@asynccontextmanager
async def route_alone(reg: Reg) -> AsyncIterator[None]:
    extras = reg.app.state.runtime.extras
    pool = extras.pop(fast_path.POOL)
    try:
        yield
    finally:
        extras[fast_path.POOL] = pool


def _answer(r: httpx.Response) -> tuple[int, Any]:
    return r.status_code, r.json()


async def _both(
    reg: Reg, ask: Callable[[], Awaitable[httpx.Response]]
) -> tuple[tuple[int, Any], tuple[int, Any]]:
    fast = _answer(await ask())
    async with route_alone(reg):
        alone = _answer(await ask())
    return fast, alone


async def test_r_enr_3_each_refusal_is_the_routes_own_answer(
    reg: Reg, route_calls: list[uuid.UUID]
) -> None:
    built = await reg.build(sessions=2, access=["p1", "p2", "p3"], limit=1)
    full, other = built.session_ids
    assert (await reg.sign_up(full, "p1", email="p1@x.io")).status_code == 201
    ended = await reg.build(access=["p2"], registration_end=now() - dt.timedelta(minutes=1))
    hidden = await reg.build(access=["p2"])
    await reg.event(event_id=hidden.event_id, state=c.EventState.HIDDEN)
    cases: dict[str, tuple[uuid.UUID, str, str]] = {
        "session_full": (full, "p2", "acme"),
        "registration_ended": (ended.session_ids[0], "p2", "acme"),
        "event_not_active": (hidden.session_ids[0], "p2", "acme"),
        "no_access": (other, "nobody", "acme"),  # a 404: the user cannot see the event
        "session_not_found": (uuid.uuid4(), "p2", "acme"),
        "another_company": (full, "p2", "globex"),
    }
    route_calls.clear()
    for name, (session_id, user, company) in cases.items():

        def ask(s: uuid.UUID = session_id, u: str = user, co: str = company) -> Any:
            return reg.sign_up(s, u, company=co, email=f"{u}@x.io")

        fast, alone = await _both(reg, ask)
        assert fast == alone, name
        assert fast[0] in (404, 409), (name, fast)
    # the route answered only the second asking of each case: the fast path the first
    assert len(route_calls) == len(cases)


async def test_r_enr_3_a_seat_taken_on_the_fast_path_is_the_routes_own_write(
    reg: Reg, route_calls: list[uuid.UUID]
) -> None:
    """The same answer, the same seat count, history and message as the route's write."""
    built = await reg.build(access=["w1", "w2"], limit=5, requires_approval=True)
    (session_id,) = built.session_ids
    route_calls.clear()
    fast = await reg.sign_up(session_id, "w1", email="W1@x.io")
    assert route_calls == []
    async with route_alone(reg):
        routed = await reg.sign_up(session_id, "w2", email="W2@x.io")
    assert route_calls == [session_id]
    assert (fast.status_code, fast.headers["content-type"]) == (
        routed.status_code,
        routed.headers["content-type"],
    )
    assert fast.status_code == 201

    def shape(body: dict[str, Any]) -> dict[str, Any]:
        """What the two sign-ups must have alike: all but who and the fresh ids and times."""
        apart = {"id", "user_id", "email", "by", "message_id", "enrollment_id", "occurred_at"}
        return {k: v for k, v in body.items() if k not in apart}

    assert shape(fast.json()) == shape(routed.json())
    assert fast.json()["status"] == "pending"  # R-ENR-3: the event requires approval
    seats = await reg.client.get(f"/v1/sessions/{session_id}/seats", headers=reg.user("w1"))
    assert seats.json()["taken"] == 2
    messages = {m["enrollment_id"]: m for m in await reg.outbox(c.EnrollmentChanged.routing_key)}
    one, two = messages[fast.json()["id"]], messages[routed.json()["id"]]
    assert (one["user_id"], one["email"], one["by"], one["reason"]) == (
        "w1",
        "W1@x.io",
        "w1",
        "sign-up",
    )
    assert shape(one) == shape(two)
    history = await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    items = {i["id"]: i for i in history.json()["items"]}
    assert [h["reason"] for h in items[fast.json()["id"]]["history"]] == ["sign-up"]


async def test_r_err_2_a_seat_taken_on_the_fast_path_is_published_without_a_claim(
    reg: Reg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path's write commits its ``EnrollmentChanged`` row leased to the process's
    relay and hands it over: the relay publishes it without claiming it (a statement on the
    way of every seat taken in a storm), and no other replica's relay claims it meanwhile."""
    runtime = reg.app.state.runtime
    relay: OutboxRelay = runtime.relay
    claimed: list[int] = []
    claim = relay._claim

    async def counting() -> list[Any]:
        rows = await claim()
        claimed.extend(r.id for r in rows)
        return rows

    monkeypatch.setattr(relay, "_claim", counting)
    built = await reg.build(access=["h1"], limit=5)
    (session_id,) = built.session_ids
    taken = await reg.sign_up(session_id, "h1")
    assert taken.status_code == 201

    async def the_row() -> OutboxRecord:
        async with runtime.session_factory()() as session:
            rows = await session.scalars(
                select(OutboxRecord).where(
                    OutboxRecord.routing_key == c.EnrollmentChanged.routing_key
                )
            )
            mine: list[OutboxRecord] = [
                r for r in rows if r.payload["enrollment_id"] == taken.json()["id"]
            ]
            assert len(mine) == 1
            return mine[0]

    row = await eventually(the_row, lambda r: r.sent_at is not None, what="the row published")
    assert row.id not in claimed
    assert row.available_at - row.created_at == relay.lease  # written leased to this relay
    assert row.attempts == 0


async def test_r_enr_3_a_replay_or_another_session_goes_to_the_route(
    reg: Reg, route_calls: list[uuid.UUID]
) -> None:
    built = await reg.build(sessions=2, access=["q1"], limit=5)
    first, second = built.session_ids
    route_calls.clear()
    taken = await reg.sign_up(first, "q1", email="q1@x.io")
    assert taken.status_code == 201
    replay, replay_alone = await _both(reg, lambda: reg.sign_up(first, "q1"))
    assert replay == replay_alone
    assert replay[0] == 200
    assert replay[1]["id"] == taken.json()["id"]
    # already_enrolled names the live enrollment: only the route knows it as an object
    other, other_alone = await _both(reg, lambda: reg.sign_up(second, "q1"))
    assert other == other_alone
    assert other[1]["code"] == "already_enrolled"
    assert other[1]["enrollment_id"] == taken.json()["id"]
    assert route_calls == [first, first, second, second]


async def test_r_enr_3_the_fast_path_runs_before_routing_once_under_the_routes_template(
    reg: Reg, route_calls: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path is tried ahead of routing (``SignUpFirst``): a sign-up it answers is
    timed under the route's template like any routed request, and one it leaves to the route
    (a replay) is not tried a second time by the route."""
    tried: list[str] = []
    real = fast_path.fast_sign_up

    async def counted(request: Any) -> Any:
        tried.append(request.url.path)
        return await real(request)

    monkeypatch.setattr(fast_path, "fast_sign_up", counted)
    assert isinstance(reg.app.router.middleware_stack, fast_path.SignUpFirst)
    built = await reg.build(access=["r1"], limit=5)
    (session_id,) = built.session_ids
    route_calls.clear()
    assert (await reg.sign_up(session_id, "r1", email="r1@x.io")).status_code == 201
    assert (len(tried), route_calls) == (1, [])
    assert (await reg.sign_up(session_id, "r1")).status_code == 200  # the replay: the route's
    assert (len(tried), route_calls) == (2, [session_id])
    metrics = (await reg.client.get("/metrics")).text
    template = 'method="POST",route="/v1/sessions/{session_id}/enrollments"'
    for answered in ("201", "200"):
        assert f'http_request_duration_seconds_count{{{template},status="{answered}"}}' in metrics


@pytest.fixture
def stale_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path decides as if its read came before the race it is about to lose."""
    monkeypatch.setattr(fast_path, "decide", lambda *_: None)


@pytest.mark.usefixtures("stale_facts")
async def test_r_enr_6_the_last_seat_gone_after_the_read_is_session_full_or_the_waitlist(
    reg: Reg, route_calls: list[uuid.UUID]
) -> None:
    full = await reg.build(access=["l1", "l2"], limit=1)
    (session_id,) = full.session_ids
    assert (await reg.sign_up(session_id, "l1")).status_code == 201
    route_calls.clear()
    r = await reg.sign_up(session_id, "l2")
    assert (r.status_code, r.json()["code"]) == (409, "session_full")
    assert route_calls == []
    waitlist = await reg.build(access=["l1", "l2"], limit=1, waitlist=True)
    (session_id,) = waitlist.session_ids
    assert (await reg.sign_up(session_id, "l1")).status_code == 201
    r = await reg.sign_up(session_id, "l2")
    assert (r.status_code, r.json()["status"]) == (201, "waitlisted")
    assert route_calls == [session_id]  # the route wrote the waitlisted enrollment
    seats = await reg.client.get(f"/v1/sessions/{session_id}/seats", headers=reg.user("l1"))
    assert seats.json()["taken"] == 1


@pytest.mark.usefixtures("stale_facts")
async def test_r_enr_6_a_session_deleted_after_the_read_is_not_found(reg: Reg) -> None:
    built = await reg.build(access=["g1"], limit=3)
    (session_id,) = built.session_ids
    await reg.apply(
        c.SessionDeleted(
            company_id="acme",
            session_id=session_id,
            event_id=built.event_id,
            version=reg.next_version(session_id),
        )
    )
    r = await reg.sign_up(session_id, "g1")
    assert (r.status_code, r.json()["code"]) == (404, "session_not_found")


async def test_r_enr_2_a_second_enrollment_found_by_the_index_goes_to_the_route(
    reg: Reg, route_calls: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    built = await reg.build(sessions=2, access=["i1"], limit=3)
    first, second = built.session_ids
    taken = await reg.sign_up(first, "i1")
    assert taken.status_code == 201
    monkeypatch.setattr(fast_path, "decide", lambda *_: None)
    route_calls.clear()
    r = await reg.sign_up(second, "i1")
    assert (r.status_code, r.json()["code"]) == (409, "already_enrolled")
    assert r.json()["enrollment_id"] == taken.json()["id"]
    assert route_calls == [second]
    seats = await reg.client.get(f"/v1/sessions/{second}/seats", headers=reg.user("i1"))
    assert seats.json()["taken"] == 0  # the write was undone with its statement


async def test_r_enr_5_a_first_sign_up_remembers_the_email_and_binds_what_waits(
    reg: Reg, route_calls: list[uuid.UUID]
) -> None:
    """The fast path remembers a new e-mail as the route does; when an admin's enrollment
    waits for it, the route binds it (one transaction) and decides."""
    company = f"pre-{uuid.uuid4().hex[:6]}"
    full = await reg.build(company=company, access=["r1", "r2", "r3"], limit=1)
    (session_id,) = full.session_ids
    assert (await reg.sign_up(session_id, "r1", company=company)).status_code == 201
    route_calls.clear()
    refused = await reg.sign_up(session_id, "r2", company=company, email="R2@X.io")
    assert (refused.status_code, refused.json()["code"]) == (409, "session_full")
    assert route_calls == []
    async with reg.app.state.runtime.session_factory()() as session:
        known = await session.scalar(
            select(KnownUser.user_id).where(
                KnownUser.company_id == company, KnownUser.email == "r2@x.io"
            )
        )
    assert known == "r2"
    # an admin's e-mail enrollment in another event waits for r3's address
    other = await reg.build(company=company, limit=3)
    r = await reg.client.post(
        f"/v1/events/{other.event_id}/enrollments",
        json={"email": "r3@x.io", "session_id": str(other.session_ids[0])},
        headers=reg.admin(company),
    )
    assert r.status_code == 201, r.text
    refused = await reg.sign_up(session_id, "r3", company=company, email="r3@x.io")
    assert (refused.status_code, refused.json()["code"]) == (409, "session_full")
    assert route_calls == [session_id]  # the route bound it
    async with reg.app.state.runtime.session_factory()() as session:
        bound = await session.scalar(
            select(Enrollment.user_id).where(Enrollment.id == uuid.UUID(r.json()["id"]))
        )
    assert bound == "r3"


async def test_r_err_1_a_database_the_fast_path_cannot_reach_leaves_it_to_the_route(
    reg: Reg, route_calls: list[uuid.UUID]
) -> None:
    built = await reg.build(access=["d1", "d2"], limit=1)
    (session_id,) = built.session_ids
    assert (await reg.sign_up(session_id, "d1")).status_code == 201
    extras = reg.app.state.runtime.extras
    dead = await driver_pool("postgresql+asyncpg://postgres@127.0.0.1:1/none", 1)
    assert isinstance(dead, asyncpg.Pool)
    pool = extras[fast_path.POOL]
    extras[fast_path.POOL] = dead
    try:
        route_calls.clear()
        r = await reg.sign_up(session_id, "d2")
    finally:
        extras[fast_path.POOL] = pool
        await dead.close()
    assert (r.status_code, r.json()["code"]) == (409, "session_full")
    assert route_calls == [session_id]


async def test_r_err_1_a_sign_up_that_waited_out_a_busy_pool_is_503_and_changes_nothing(
    reg: Reg, route_calls: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection of the fast path's pool in use for ``DATABASE_POOL_TIMEOUT``: a storm
    beyond what the pool serves. The sign-up is answered 503 ``database_busy`` with
    Retry-After, writes nothing, and is not left to the route (which would wait again on its
    own pool, at several times the CPU: under a storm that cut the answers a second by a third
    and pushed the p99 from 6 to 10-12 s)."""
    runtime = reg.app.state.runtime
    monkeypatch.setattr(runtime.settings, "database_pool_timeout", 0.2)
    built = await reg.build(access=["b1"], limit=5)
    (session_id,) = built.session_ids
    pool: asyncpg.Pool = runtime.extras[fast_path.POOL]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        route_calls.clear()
        busy = await reg.sign_up(session_id, "b1")
    finally:
        for connection in held:
            await pool.release(connection)
    assert busy.status_code == 503, busy.text
    assert (busy.headers["retry-after"], busy.json()["code"]) == ("2", "database_busy")
    assert busy.headers["content-type"] == "application/problem+json"
    assert route_calls == []
    seats = await reg.client.get(f"/v1/sessions/{session_id}/seats", headers=reg.user("b1"))
    assert seats.json()["taken"] == 0
    again = await reg.sign_up(session_id, "b1")  # a connection free: the retry is served
    assert again.status_code == 201, again.text


@pytest.fixture
def engine_statements(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The idempotency key's statements run through the engine (not the driver pool); the
    relay's, which run there too, are not counted."""
    ran: list[Any] = []
    real = db.alone

    async def counted(sessionmaker: Any, statement: Any, values: Any = None) -> Any:
        if values and {"key", "record_key"} & set(values):  # the claim, the answer
            ran.append(statement)
        return await real(sessionmaker, statement, values)

    monkeypatch.setattr(db, "alone", counted)
    return ran


async def test_r_err_2_a_keyed_sign_up_keeps_its_key_on_the_driver_pool(
    reg: Reg, engine_statements: list[Any]
) -> None:
    """A sign-up sent with an Idempotency-Key (a gateway that retries safely sends one with
    each): the key's claim and its answer run on the fast path's driver pool, not through the
    engine, and the retry is the first answer replayed."""
    built = await reg.build(access=["k1"], limit=5)
    (session_id,) = built.session_ids
    path = f"/v1/sessions/{session_id}/enrollments"
    headers = {**reg.user("k1"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await reg.client.post(path, headers=headers)
    again = await reg.client.post(path, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert engine_statements == []
    seats = await reg.client.get(f"/v1/sessions/{session_id}/seats", headers=reg.user("k1"))
    assert seats.json()["taken"] == 1


async def test_r_err_1_a_keyed_sign_up_the_driver_pool_cannot_serve_goes_through_the_engine(
    reg: Reg, engine_statements: list[Any]
) -> None:
    """The driver pool's database unreachable: the key's statements go through the engine,
    which meets the same database (as the sign-up goes to the route); a busy driver pool is
    the request's 503 ``database_busy``, nothing done."""
    built = await reg.build(access=["k2", "k3"], limit=5)
    (session_id,) = built.session_ids
    path = f"/v1/sessions/{session_id}/enrollments"
    extras = reg.app.state.runtime.extras
    dead = await driver_pool("postgresql+asyncpg://postgres@127.0.0.1:1/none", 1)
    assert isinstance(dead, asyncpg.Pool)
    pool = extras[fast_path.POOL]
    extras[fast_path.POOL] = dead
    headers = {**reg.user("k2"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    try:
        first = await reg.client.post(path, headers=headers)
    finally:
        extras[fast_path.POOL] = pool
        await dead.close()
    assert first.status_code == 201, first.text
    assert len(engine_statements) == 2  # the claim and the answer
    again = await reg.client.post(path, headers=headers)  # the driver pool back: replayed
    assert (again.status_code, again.json()) == (201, first.json())
    # every driver connection in use for as long as a request waits for one
    settings = reg.app.state.runtime.settings
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    waited = settings.database_pool_timeout
    settings.database_pool_timeout = 0.2
    try:
        busy = await reg.client.post(
            path, headers={**reg.user("k3"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
        )
    finally:
        settings.database_pool_timeout = waited
        for connection in held:
            await pool.release(connection)
    assert (busy.status_code, busy.json()["code"]) == (503, "database_busy"), busy.text
    assert busy.headers["retry-after"] == "2"
    seats = await reg.client.get(f"/v1/sessions/{session_id}/seats", headers=reg.user("k3"))
    assert seats.json()["taken"] == 1


async def test_a_bad_token_or_session_id_is_answered_as_by_the_route(reg: Reg) -> None:
    path = f"/v1/sessions/{uuid.uuid4()}/enrollments"
    bad = {"Authorization": "Bearer not-a-token"}
    fast, alone = await _both(reg, lambda: reg.client.post(path, headers=bad))
    assert fast == alone
    assert fast[0] == 401
    user = reg.user("t1")
    fast, alone = await _both(
        reg, lambda: reg.client.post("/v1/sessions/not-a-uuid/enrollments", headers=user)
    )
    assert fast == alone
    assert fast[0] == 422
