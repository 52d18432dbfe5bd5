"""zoom_bridge.webhooks.secrets: the in-memory secret tokens of accepted webhooks."""

from __future__ import annotations

import uuid

from zoom_bridge.webhooks import secrets
from zoom_bridge.webhooks.rules import Candidate


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Loader:
    def __init__(self) -> None:
        self.calls: list[str | None] = []
        self.secret = "first"

    async def __call__(self, hint: str | None) -> list[Candidate]:
        self.calls.append(hint)
        return [Candidate(self.secret, uuid.UUID(int=1))] if hint == "acct" else []


async def test_a_hint_is_read_once_while_nothing_changed() -> None:
    cache, load, clock = secrets.SecretCache(ttl=30), Loader(), Clock()
    for _ in range(3):
        assert [c.secret for c in await cache.get("acct", load, clock)] == ["first"]
        assert await cache.get("junk", load, clock) == []  # a miss is kept too
    assert load.calls == ["acct", "junk"]


async def test_a_change_committed_here_is_seen_at_once_and_elsewhere_within_the_ttl() -> None:
    cache, load, clock = secrets.SecretCache(ttl=30), Loader(), Clock()
    await cache.get("acct", load, clock)
    load.secret = "second"
    clock.t = 29.0
    assert [c.secret for c in await cache.get("acct", load, clock)] == ["first"]
    clock.t = 30.0  # another replica's change: seen once the entry's time ran out
    assert [c.secret for c in await cache.get("acct", load, clock)] == ["second"]
    load.secret = "third"
    secrets.secrets_changed()  # this process's commit of a change
    assert [c.secret for c in await cache.get("acct", load, clock)] == ["third"]


async def test_the_cache_is_bounded() -> None:
    cache, load, clock = secrets.SecretCache(ttl=30, capacity=2), Loader(), Clock()
    for hint in ("a", "b", "c", "a"):
        await cache.get(hint, load, clock)
    assert load.calls == ["a", "b", "c", "a"]  # "a" was pushed out by "c"
