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
        found = await load(hint)
        self._entries[hint] = (now(), _generation, found)
        self._entries.move_to_end(hint)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return found
