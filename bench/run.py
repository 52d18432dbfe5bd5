"""`make bench`: run every scenario on this machine and print a table; write bench/results.json.

Each figure stands next to a baseline measured in the same run, so ratios compare like with like.
``python bench/run.py signup_storm my_events`` runs only the named scenarios (and then writes
``bench/results.partial.json`` so a partial run never overwrites the full results).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Result, table  # noqa: E402

SCENARIOS = ["signup_storm", "propagation", "webhook_ingest", "my_events", "outbox_relay"]


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
    partial = names != SCENARIOS
    out = ROOT / "bench" / ("results.partial.json" if partial else "results.json")
    out.write_text(
        json.dumps(
            [dataclasses.asdict(r) | {"ratio": r.ratio} for r in results]
            + [{"keys": {r.key: r.ratio for r in results if r.key}}]
            + [{"scenario_seconds": timings}],
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
