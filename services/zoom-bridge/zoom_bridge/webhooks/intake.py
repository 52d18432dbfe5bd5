"""Verified webhooks stored together (issue "Storms": 9:00, every meeting starts).

Accepting a webhook was a transaction of its own: begin, insert, commit, three round trips per
request on a busy event loop. Here the requests that arrive while a write is under way wait for
the next one and share it: one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` and one
commit for all of them. Nothing is delayed on purpose (a lone webhook is written at once), and
"accepted" still means stored: each request answers only after the commit that holds its row.
A failed write fails every request of that batch (503, Zoom retries them); the next batch tries
again. Each row keeps its own arrival time, strictly increasing in this process, so processing
(ordered by it) keeps every participant's joins and leaves in the order they came.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared.db import utcnow
from zoom_bridge.webhooks import rules, service

#: rows per INSERT at most (a body is at most the request size limit)
MAX_BATCH = 100

_Waiting = tuple[service.Received, "asyncio.Future[bool]"]


class Intake:
    def __init__(
        self,
        sessions: Callable[[], async_sessionmaker[AsyncSession]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._last = dt.datetime.min.replace(tzinfo=dt.UTC)
        #: the event loop's clock at the last arrival (for :meth:`lull`)
        self._arrived_at = float("-inf")

    def _arrival(self) -> dt.datetime:
        now = max(utcnow(), self._last + dt.timedelta(microseconds=1))
        self._last = now
        return now

    async def store(self, body: dict[str, Any], signer: rules.Signer) -> bool:
        """Store one verified webhook with the others waiting now; True when it was new, False
        for a duplicate. Returns once the row is committed."""
        loop = asyncio.get_running_loop()
        self._arrived_at = loop.time()
        future: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((service.Received(body, signer, self._arrival()), future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await future

    async def lull(
        self, gap: float, longest: float, stop: Callable[[], bool] | None = None
    ) -> bool:
        """Return once no webhook has arrived for ``gap`` seconds, or after ``longest`` at the
        latest. Processing waits for it: in a storm, answering Zoom comes first (Zoom gives
        a webhook 3 seconds, then sends it again), and processing takes the pauses; it never
        waits longer than ``longest``, so a storm that does not stop slows it, never stops it.
        False when ``stop`` said so first (other work came: the worker's jobs do not wait
        behind a storm's webhooks).

        The pause is observed, not inferred: after work that kept the event loop busy, the
        requests that came meanwhile have not been read yet, so the loop is given ``gap``
        to read them before the quiet counts (unless nothing arrived for a second)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        if start - self._arrived_at >= 1.0 and not self._waiting:
            return True
        deadline = start + longest
        while True:
            await asyncio.sleep(min(gap, max(deadline - loop.time(), 0.0)))
            now = loop.time()
            if (now - self._arrived_at >= gap and not self._waiting) or now >= deadline:
                return True
            if stop is not None and stop():
                return False

    async def _write_all(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    async with self._sessions()() as session, session.begin():
                        # service.store_many looked up at call time: tests put a failing one
                        answers = await service.store_many(session, [r for r, _ in batch])
                except Exception as exc:  # every request of the batch answers with it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), stored in zip(batch, answers, strict=True):
                        if not future.done():
                            future.set_result(stored)
                batch = []
        finally:
            self._writer = None
            # cancelled (shutdown) mid-write: nobody is left waiting for an answer
            for _, future in [*batch, *self._waiting]:
                if not future.done():
                    future.cancel()
            self._waiting.clear()
