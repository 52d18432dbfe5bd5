"""The Server-to-Server connections' webhook secret tokens, decrypted, kept in memory so that
accepting a webhook is a signature check and one insert (issue "Storms"): no per-request
lookup and decrypt while nothing changed.

Entries are keyed by the Zoom account a raw body names (its hint; ``None`` for every
connection's, as a URL validation needs) and live ``ZOOM_WEBHOOK_SECRET_CACHE_SECONDS``. A change
of a connection's secret in this process (connect, a new token, removal) drops them at once;
another replica sees it within the time to live, and a webhook signed with the new token that
it refuses meanwhile is retried by Zoom (for 95 minutes, which the timestamp window covers).
The hints come from unverified bodies, so the cache is bounded and keeps what it found, empty
lists included: junk hints cost one query each, then none.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from zoom_bridge.webhooks.rules import Candidate

#: bumped whenever a connection's webhook secret changes in this process
_generation = 0


_CHANGED = "te_webhook_secrets_changed"


def secrets_changed() -> None:
    """A connection's webhook secret changed (or the connection went away): cached tokens are
    stale."""
    global _generation
    _generation += 1


def mark_changed(session: AsyncSession) -> None:
    """The session changes a connection's webhook secret: once it commits (not before, or a
    webhook in between could cache the old token again), the cache is dropped."""
    session.info[_CHANGED] = True


def after_commit(session: AsyncSession) -> None:
    """A commit hook of the runtime: apply :func:`mark_changed`."""
    if session.info.pop(_CHANGED, False):
        secrets_changed()


class SecretCache:
    def __init__(self, ttl: float, capacity: int = 1024) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._entries: OrderedDict[str | None, tuple[float, int, list[Candidate]]] = OrderedDict()
        #: loads under way, by hint: the requests that miss together share one (a storm's
        #: first second would otherwise query and decrypt once per request in flight)
        self._loading: dict[str | None, tuple[int, asyncio.Future[list[Candidate]]]] = {}

    async def get(
        self,
        hint: str | None,
        load: Callable[[str | None], Awaitable[list[Candidate]]],
        now: Callable[[], float] = time.monotonic,
    ) -> list[Candidate]:
        """The candidates for ``hint``, loaded (and kept) when missing, stale or older than a
        change."""
        entry = self._entries.get(hint)
        if entry is not None:
            at, generation, found = entry
            if generation == _generation and now() - at < self._ttl:
                self._entries.move_to_end(hint)
                return found
        loading = self._loading.get(hint)
        if loading is None or loading[0] != _generation:  # none, or begun before a change
            task = asyncio.ensure_future(self._load(hint, load, now, _generation))
            # its failure is each waiter's; when every waiter went away, it is read here
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            loading = (_generation, task)
            self._loading[hint] = loading
        # shielded: a request that goes away does not cancel the load the others wait for
        return await asyncio.shield(loading[1])

    async def _load(
        self,
        hint: str | None,
        load: Callable[[str | None], Awaitable[list[Candidate]]],
        now: Callable[[], float],
        generation: int,
    ) -> list[Candidate]:
        try:
            found = await load(hint)
        finally:
            if self._loading.get(hint, (None, None))[0] == generation:
                del self._loading[hint]
        # kept under the generation it was read in: a change while it loaded makes it stale
        self._entries[hint] = (now(), generation, found)
        self._entries.move_to_end(hint)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return found
