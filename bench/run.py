"""`make bench`: run every scenario on this machine and print a table; write bench/results.json.

Each figure stands next to a baseline measured in the same run, so ratios compare like with like.
``python bench/run.py signup_storm my_events`` runs only the named scenarios (and then writes
``bench/results.partial.json`` so a partial run never overwrites the full results).
``WORKERS=2 make bench`` runs every service with two processes (uvicorn workers); its results go
to ``bench/results.workers-2.json`` beside the one-process figures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Result, table  # noqa: E402

SCENARIOS = [
    "signup_storm",
    "signup_cpu",
    "propagation",
    "webhook_ingest",
    "my_events",
    "outbox_relay",
]


def results_name(names: list[str], workers: str) -> str:
    """Where a run's figures go: a partial run or another worker count never overwrites the
    full one-process results."""
    stem = "results" if workers in ("", "1") else f"results.workers-{workers}"
    return f"{stem}.partial.json" if names != SCENARIOS else f"{stem}.json"


async def main(names: list[str]) -> None:
    results: list[Result] = []
    timings: dict[str, float] = {}
    for name in names:
        scenario = importlib.import_module(f"bench.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        results.extend(await scenario.run())
        timings[name] = time.perf_counter() - start
        print(f"  {name} done in {timings[name]:.0f}s", file=sys.stderr, flush=True)
    print(table(results))
    out = ROOT / "bench" / results_name(names, os.environ.get("WORKERS", "1"))
    out.write_text(
        json.dumps(
            [dataclasses.asdict(r) | {"ratio": r.ratio} for r in results]
            + [{"keys": {r.key: r.ratio for r in results if r.key}}]
            + [{"scenario_seconds": timings, "workers": int(os.environ.get("WORKERS", "1"))}],
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"\nwritten to {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    wanted = sys.argv[1:] or SCENARIOS
    unknown = [n for n in wanted if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; known: {SCENARIOS}")
    asyncio.run(main(wanted))
