"""Benchmark plumbing: environment, fresh databases, timing and the result table."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

AMQP_URL = os.environ.get("BENCH_AMQP_URL") or os.environ.get(
    "TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"
)
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RUN = uuid.uuid4().hex[:6]


@dataclass
class Result:
    scenario: str
    metric: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: a stable name of the figure (``signup.throughput_vs_health``), so a script can compare
    #: runs by it; None for figures shown for context only
    key: str | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline


async def create_database(hint: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    name = f"bench_{hint}_{RUN}_{uuid.uuid4().hex[:4]}"
    conn = await asyncpg.connect(POSTGRES_URL)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = POSTGRES_URL.rsplit("/", 1)[0]

    async def drop() -> None:
        c = await asyncpg.connect(POSTGRES_URL)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()

    return f"{base}/{name}", drop


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.elapsed = time.perf_counter() - self.start


async def gather_limited(n: int, coros: list[Awaitable[Any]]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def run(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(run(c) for c in coros))


def table(results: list[Result]) -> str:
    header = ("key", "scenario", "metric", "value", "baseline", "baseline value", "ratio")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.key or "",
                r.scenario,
                r.metric,
                f"{r.value:,.1f} {r.unit}",
                r.baseline_name or "-",
                f"{r.baseline:,.1f} {r.unit}" if r.baseline is not None else "-",
                f"{r.ratio:.2f}x" if r.ratio is not None else "-",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        )
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
