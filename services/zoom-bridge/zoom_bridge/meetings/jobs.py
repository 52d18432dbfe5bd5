"""Durable jobs (the ``zoom_jobs`` table): arming, claiming, finishing and backing off."""

from __future__ import annotations

import datetime as dt
import functools
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import Integer, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.util import identity_key

from te_shared.db import add_session_info, alone, utcnow
from te_shared.observability import inject_trace_context
from zoom_bridge.models import MeetingRegistrant, ZoomAccount, ZoomJob, ZoomMeeting
from zoom_bridge.settings import ZoomBridgeSettings

SYNC = "sync"
RECONCILE = "reconcile"
#: after a create that got no answer: delete any second meeting Zoom made for the day
VERIFY = "verify"
#: register the seat holders of an administrator-role meeting, remove those who lost it
REGISTRANTS = "registrants"


ARMED = "zoom_job_armed"
#: session info: the lease (seconds) of a job handed over to this process's worker (set on
#: the sessionmaker by the worker, :func:`hand_over_to_worker`)
WORKER_LEASE = "zoom_job_worker_lease"
#: session info: the jobs armed leased to this process's worker, to hand to it on commit
HANDED = "zoom_jobs_handed"


def take_armed_flag(session: AsyncSession) -> bool:
    return bool(session.info.pop(ARMED, False))


def take_handed(session: AsyncSession) -> list[Claimed]:
    """The jobs ``session`` armed leased to this process's worker (:func:`arm` with
    ``hand_over``), once its transaction committed: they are the worker's to run, unclaimed."""
    handed: list[Claimed] = session.info.pop(HANDED, [])
    return handed


def hand_over_to_worker(sessionmaker: async_sessionmaker[AsyncSession], lease: float) -> None:
    """From now on :func:`arm` with ``hand_over`` in sessions of ``sessionmaker`` writes the
    job leased to this process's worker (for ``lease`` seconds) and hands it over on commit."""
    add_session_info(sessionmaker, WORKER_LEASE, lease)


class _Unread(Enum):
    UNREAD = "unread"


#: :func:`arm`'s ``settles_at`` not given: read from the day's meeting
UNREAD = _Unread.UNREAD


@functools.cache
def _arm_statements(dialect: str) -> tuple[Any, Any]:
    """:func:`arm`'s upserts for the dialect, built once (every value bound: ``job_day``,
    ``job_kind``, ``due``, ``trace_context``; the second also ``now`` and ``until``): they are
    on the path of every change that waits for Zoom. The first makes the job due; the second,
    for a job handed over, leases it to this process's worker until ``until`` unless another
    worker holds it now (then it is made due, as the first does), and returns what a claim
    would, with its lease."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    jobs_table: Any = ZoomJob.__table__
    table = jobs_table.c
    renewed = {
        "generation": table.generation + 1,
        "last_error": None,
        "retry_until": None,
        "step": 0,
    }
    stmt = insert(jobs_table).values(
        day_id=bindparam("job_day"),
        kind=bindparam("job_kind"),
        generation=1,
        attempts=0,
        next_attempt_at=bindparam("due"),
        trace_context=bindparam("trace_context"),
        step=0,
    )
    due = stmt.on_conflict_do_update(
        index_elements=["day_id", "kind"],
        set_={
            **renewed,
            "attempts": 0,
            "next_attempt_at": stmt.excluded.next_attempt_at,
            "trace_context": stmt.excluded.trace_context,
        },
    )
    until: Any = bindparam("until", type_=table.leased_until.type)
    leased = insert(jobs_table).values(
        day_id=bindparam("job_day"),
        kind=bindparam("job_kind"),
        generation=1,
        attempts=1,
        next_attempt_at=until,
        leased_until=until,
        trace_context=bindparam("trace_context"),
        step=0,
    )
    free = or_(table.leased_until.is_(None), table.leased_until <= bindparam("now"))
    handed = leased.on_conflict_do_update(
        index_elements=["day_id", "kind"],
        set_={
            **renewed,
            "attempts": case((free, 1), else_=0),
            "next_attempt_at": case((free, until), else_=bindparam("due")),
            "leased_until": case((free, until), else_=table.leased_until),
            "trace_context": leased.excluded.trace_context,
        },
    ).returning(table.generation, table.attempts, table.leased_until)
    return due, handed


async def arm(
    session: AsyncSession,
    day_id: uuid.UUID,
    kind: str,
    delay: float = 0.0,
    *,
    hand_over: bool = False,
    settles_at: dt.datetime | _Unread | None = UNREAD,
) -> None:
    """Make the job due (now, or after ``delay``); a new desired state restarts the retry
    budget (and a job in passes starts again at its first). A sync never becomes due before
    an unanswered create settles (``create_settles_at``): until then Zoom may still be making
    the meeting, and a lookup would miss it and create a second one.

    With ``hand_over``, where this process runs the worker (:func:`hand_over_to_worker`), a
    job due now is written leased to that worker and handed to it once the transaction
    commits (:func:`take_handed`): it runs without a claim (a statement on the path of every
    new meeting's join link). The lease is a claim's: if the process dies first, the job runs
    once the lease ran out, as a claimed one would. Only for a transaction that arms it
    outside any savepoint (a rolled-back savepoint would leave a job handed over that the
    database never leased), such as a consumer's: the day messages' handlers.

    ``settles_at``: for a sync, when the day's unanswered create settles (None: none is
    marked), where the caller just read or wrote the meeting; by default it is read."""
    now = utcnow()
    due = now + dt.timedelta(seconds=delay)
    if kind == SYNC:
        if isinstance(settles_at, _Unread):
            meeting = await session.get(ZoomMeeting, day_id)
            marked = meeting is not None and meeting.create_account_id is not None
            settles_at = meeting.create_settles_at if meeting is not None and marked else None
        if settles_at is not None:
            due = max(due, settles_at)
    trace_context = _trace_context()
    values = _arm_values(day_id, kind, due, trace_context)
    lease: float | None = session.info.get(WORKER_LEASE) if hand_over else None
    dialect = session.get_bind().dialect.name
    # one statement, so two deliveries arming the same new job at once cannot both insert it
    # (a read-then-insert lost that race with a duplicate key, and the message went back)
    if lease is None or due > now:
        if due <= now:
            session.info[ARMED] = True  # the worker is woken once this transaction commits
        await session.execute(_arm_statements(dialect)[0], values)
    else:
        until = now + dt.timedelta(seconds=lease)
        statement = _arm_statements(dialect)[1]
        row = (await session.execute(statement, {**values, "now": now, "until": until})).one()
        if row.leased_until == until:  # leased to this worker: handed over on commit
            claimed = Claimed(day_id, kind, row.generation, row.attempts, trace_context)
            session.info.setdefault(HANDED, []).append(claimed)
        # else another worker runs it now, and runs it again when it is done (a new generation)
    _forget_loaded(session, day_id, kind)


def _trace_context() -> dict[str, str] | None:
    """The running trace's context, for the job to carry (None outside a trace)."""
    carrier: dict[str, str] = {}
    inject_trace_context(carrier)
    return carrier or None


def _arm_values(
    day_id: uuid.UUID, kind: str, due: dt.datetime, trace_context: dict[str, str] | None
) -> dict[str, Any]:
    """The values :func:`_arm_statements`' upserts bind for one job."""
    return {"job_day": day_id, "job_kind": kind, "due": due, "trace_context": trace_context}


def _forget_loaded(session: AsyncSession, day_id: uuid.UUID, kind: str) -> None:
    """A job this session loaded earlier was changed (or deleted) by a statement behind the
    ORM's back: drop it, so the next read loads the row as it now is."""
    loaded = session.identity_map.get(identity_key(ZoomJob, (day_id, kind)))
    if loaded is not None:
        session.expunge(loaded)


async def rearm_failed(session: AsyncSession, account_id: uuid.UUID) -> int:
    """Arm the sync of every day whose meeting on ``account_id`` failed (a fresh retry budget;
    one Zoom never made is pending again), e.g. once the account is connected again. Returns
    how many."""
    stmt = select(ZoomMeeting).where(
        ZoomMeeting.account_id == account_id,
        ZoomMeeting.desired == "present",
        ZoomMeeting.status == "failed",
    )
    failed = list((await session.execute(stmt)).scalars())
    for meeting in failed:
        if meeting.zoom_meeting_id is None:
            meeting.status = "pending"
            meeting.error = None
        await arm(session, meeting.day_id, SYNC)
    return len(failed)


async def arm_registrants(session: AsyncSession, day_ids: Iterable[uuid.UUID]) -> None:
    """Make the registrants job of each of ``day_ids`` due now, as :func:`arm` does, in one
    statement for all (run with every day's values, in day order, the order every arming
    locks in): an enrollment's message arms every day of its session, an account's role
    change every day of the account, and a statement a day was most of handling them."""
    days = sorted(set(day_ids))
    if not days:
        return
    now, trace_context = utcnow(), _trace_context()
    session.info[ARMED] = True  # the worker is woken once this transaction commits
    statement = _arm_statements(session.get_bind().dialect.name)[0]
    await session.execute(
        statement, [_arm_values(day, REGISTRANTS, now, trace_context) for day in days]
    )
    for day in days:
        _forget_loaded(session, day, REGISTRANTS)


async def registrant_days(
    session: AsyncSession,
    *,
    company_id: str | None = None,
    session_ids: Iterable[uuid.UUID] = (),
    account_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """The days whose registrants may need work: those with a Zoom meeting on an
    administrator-role account, and those with registrants, of the given sessions (of the
    company) or of the given account."""
    holder = func.coalesce(ZoomMeeting.meeting_account_id, ZoomMeeting.account_id)
    meetings = select(ZoomMeeting.day_id).where(ZoomMeeting.zoom_meeting_id.is_not(None))
    if account_id is not None:
        meetings = meetings.where(holder == account_id)
    else:
        wanted = list(set(session_ids))
        meetings = meetings.where(
            ZoomMeeting.company_id == company_id, ZoomMeeting.session_id.in_(wanted)
        )
    administrator = meetings.join(ZoomAccount, ZoomAccount.id == holder).where(
        ZoomAccount.role == "administrator"
    )
    registered = meetings.where(
        select(MeetingRegistrant.day_id)
        .where(MeetingRegistrant.day_id == ZoomMeeting.day_id)
        .exists()
    )
    found = set((await session.execute(administrator)).scalars())
    found |= set((await session.execute(registered)).scalars())
    return sorted(found)


@dataclass(frozen=True)
class Claimed:
    day_id: uuid.UUID
    kind: str
    generation: int
    attempts: int
    trace_context: dict[str, str] | None = None
    step: int = 0


@functools.cache
def _claim_statement() -> Any:
    """:func:`claim`'s statement, built once (every value a bind parameter: ``now``, ``until``,
    ``limit``): building it for every claim cost more CPU than running it."""
    now: Any = bindparam("now")
    until: Any = bindparam("until")
    due = (
        select(ZoomJob.day_id, ZoomJob.kind, ZoomJob.next_attempt_at)
        .where(
            ZoomJob.next_attempt_at <= now,
            or_(ZoomJob.leased_until.is_(None), ZoomJob.leased_until <= now),
        )
        .order_by(ZoomJob.next_attempt_at)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)  # rendered only where supported (PostgreSQL)
        .subquery()
    )
    return (
        update(ZoomJob)
        .where(ZoomJob.day_id == due.c.day_id, ZoomJob.kind == due.c.kind)
        .values(attempts=ZoomJob.attempts + 1, next_attempt_at=until, leased_until=until)
        .returning(
            due.c.next_attempt_at,
            ZoomJob.day_id,
            ZoomJob.kind,
            ZoomJob.generation,
            ZoomJob.attempts,
            ZoomJob.trace_context,
            ZoomJob.step,
        )
        .execution_options(synchronize_session=False)
    )


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession], limit: int, lease: float
) -> list[Claimed]:
    """Take due jobs, leasing them (``leased_until``, and ``next_attempt_at`` moves ahead) so
    no other worker, replica or restarted bridge runs them meanwhile; a crashed worker's lease
    simply runs out. A job armed again while leased waits for the lease to end: the holder
    sees the new generation when it is done and lets it run. One statement (``UPDATE ... FROM``
    the due rows taken ``FOR UPDATE SKIP LOCKED``, ``RETURNING``), one round trip: a claim is on
    the path of every change that waits for Zoom. Oldest due first."""
    now = utcnow()
    until = now + dt.timedelta(seconds=lease)
    rows = await alone(
        sessionmaker, _claim_statement(), {"now": now, "until": until, "limit": limit}
    )
    return [Claimed(*row[1:]) for row in sorted(rows, key=lambda row: (row[0], str(row[1])))]


async def release(sessionmaker: async_sessionmaker[AsyncSession], handed: list[Claimed]) -> None:
    """Jobs handed over to a worker that stops before running them: due again now, for any
    worker (rather than once their lease ran out)."""
    for job in handed:
        await alone(
            sessionmaker,
            update(ZoomJob)
            .where(ZoomJob.day_id == job.day_id, ZoomJob.kind == job.kind)
            .values(leased_until=None, next_attempt_at=utcnow())
            .execution_options(synchronize_session=False),
        )


def backoff(settings: ZoomBridgeSettings, attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, capped; never shorter than the Retry-After Zoom
    gave (honoured up to ``zoom_retry_after_max_seconds``)."""
    cap = min(
        settings.zoom_retry_max_seconds,
        settings.zoom_retry_base_seconds * 2 ** min(max(attempts - 1, 0), 30),
    )
    delay = random.uniform(cap / 2, cap)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.zoom_retry_after_max_seconds))
    return delay


@functools.cache
def _finish_statements() -> tuple[Any, Any]:
    """:func:`finish`'s two statements, built once: the job's ``DELETE`` if it is still the
    claimed generation (its ``generation`` returned), else the ``UPDATE`` that ends the lease."""
    key = (ZoomJob.day_id == bindparam("job_day"), ZoomJob.kind == bindparam("job_kind"))
    done = (
        delete(ZoomJob)
        .where(*key, ZoomJob.generation == bindparam("job_generation"))
        .returning(ZoomJob.generation)
        .execution_options(synchronize_session=False)
    )
    unleased = (
        update(ZoomJob)
        .where(*key)
        .values(leased_until=None)
        .execution_options(synchronize_session=False)
    )
    return done, unleased


def _key(claimed: Claimed) -> dict[str, Any]:
    return {
        "job_day": claimed.day_id,
        "job_kind": claimed.kind,
        "job_generation": claimed.generation,
    }


async def finish(session: AsyncSession, claimed: Claimed) -> None:
    """Done, unless the job was armed again while Zoom was called: then it runs again when
    ``arm`` made it due (which may be later than now, see ``arm``). Blind statements, not a
    read first: usually the one ``DELETE``."""
    done, unleased = _finish_statements()
    if (await session.execute(done, _key(claimed))).first() is None:
        await session.execute(unleased, _key(claimed))
    _forget_loaded(session, claimed.day_id, claimed.kind)


async def finish_alone(sessionmaker: async_sessionmaker[AsyncSession], claimed: Claimed) -> None:
    """:func:`finish` when the job's end is all there is to write: each statement on its own
    (usually the one ``DELETE``), without a transaction's ``BEGIN`` and ``COMMIT``. Nothing
    needs the two together: the ``UPDATE`` only lets a newer generation, which stays, run."""
    done, unleased = _finish_statements()
    if not await alone(sessionmaker, done, _key(claimed)):
        await alone(sessionmaker, unleased, _key(claimed))


async def retry_later(
    session: AsyncSession,
    claimed: Claimed,
    delay: float,
    error: str,
    *,
    budget_seconds: float | None = None,
    waited_as_asked: bool = False,
) -> bool:
    """Run the job again after ``delay``. With ``budget_seconds``, the retry budget (by time)
    starts at the first failure; a wait Zoom asked for (``waited_as_asked``: a 429 with
    Retry-After) moves the budget's end on by that wait and does not count as an attempt for
    the backoff. Returns False, leaving the job alone, once the budget is spent."""
    job = await session.get(ZoomJob, (claimed.day_id, claimed.kind))
    if job is None:
        return True
    now = utcnow()
    job.leased_until = None
    job.last_error = error
    if job.generation != claimed.generation:  # a new desired state: run when arm said
        return True
    if budget_seconds is not None:
        if job.retry_until is None:
            job.retry_until = now + dt.timedelta(seconds=budget_seconds)
        if waited_as_asked:
            job.retry_until += dt.timedelta(seconds=delay)
        elif now >= job.retry_until:
            return False
    if waited_as_asked:
        job.attempts = max(0, job.attempts - 1)
    job.next_attempt_at = now + dt.timedelta(seconds=delay)
    return True


async def next_step(session: AsyncSession, claimed: Claimed, delay: float) -> None:
    """The claimed pass is done: the next one runs after ``delay``. A job armed again
    meanwhile keeps what ``arm`` set (its first pass, when arm made it due)."""
    job = await session.get(ZoomJob, (claimed.day_id, claimed.kind))
    if job is None:
        return
    job.leased_until = None
    if job.generation != claimed.generation:
        return
    job.step = claimed.step + 1
    job.attempts = 0
    job.retry_until = None
    job.last_error = None
    job.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)
