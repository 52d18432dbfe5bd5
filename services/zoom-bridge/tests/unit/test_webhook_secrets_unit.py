"""zoom_bridge.webhooks.secrets: the in-memory secret tokens of accepted webhooks."""

from __future__ import annotations

import asyncio
import uuid

import pytest

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


class SlowLoader(Loader):
    """A load that waits for ``release``: requests that miss meanwhile arrive together."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def __call__(self, hint: str | None) -> list[Candidate]:
        self.calls.append(hint)
        await self.release.wait()
        return [Candidate(self.secret, uuid.UUID(int=1))] if hint == "acct" else []


async def test_requests_that_miss_together_share_one_load() -> None:
    """A storm's first requests all miss a cold cache: one query and decrypt, not one each."""
    cache, load, clock = secrets.SecretCache(ttl=30), SlowLoader(), Clock()
    waiting = [asyncio.create_task(cache.get("acct", load, clock)) for _ in range(20)]
    await asyncio.sleep(0)
    load.release.set()
    answers = await asyncio.gather(*waiting)
    assert load.calls == ["acct"]
    assert {c.secret for found in answers for c in found} == {"first"}


async def test_a_request_that_goes_away_does_not_cancel_the_shared_load() -> None:
    cache, load, clock = secrets.SecretCache(ttl=30), SlowLoader(), Clock()
    first = asyncio.create_task(cache.get("acct", load, clock))
    second = asyncio.create_task(cache.get("acct", load, clock))
    await asyncio.sleep(0)
    first.cancel()  # its client disconnected
    load.release.set()
    assert [c.secret for c in await second] == ["first"]
    assert load.calls == ["acct"]


async def test_a_change_while_loading_is_not_hidden_by_the_load() -> None:
    """A secret changes (and commits) while a load is under way: what that load read may be the
    old token, so it is not kept as current, and the next request reads again."""
    cache, load, clock = secrets.SecretCache(ttl=30), SlowLoader(), Clock()
    pending = asyncio.create_task(cache.get("acct", load, clock))
    await asyncio.sleep(0)
    secrets.secrets_changed()
    load.release.set()
    await pending
    load.secret = "second"
    assert [c.secret for c in await cache.get("acct", load, clock)] == ["second"]
    assert load.calls == ["acct", "acct"]


async def test_a_failed_load_fails_its_waiters_and_the_next_request_tries_again() -> None:
    cache, clock = secrets.SecretCache(ttl=30), Clock()
    calls = 0

    async def flaky(hint: str | None) -> list[Candidate]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return []

    with pytest.raises(ConnectionError):
        await cache.get("acct", flaky, clock)
    assert await cache.get("acct", flaky, clock) == []
    assert calls == 2
