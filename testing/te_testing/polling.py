"""Waiting for what crosses services asynchronously: the kit's one polling loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], object] = bool,
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Call ``probe`` every ``interval`` seconds until ``accept`` holds for what it returns
    (by default: until it returns something truthy) and return that; an ``AssertionError``
    naming ``what`` and the last value after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
