"""`make bench`: run every scenario on this machine and print a table; write bench/results.json.

Each figure stands next to a baseline measured in the same run, so ratios compare like with like.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import outbox_relay  # noqa: E402
from bench.common import Result, table  # noqa: E402

SCENARIOS = [outbox_relay]


async def main() -> None:
    results: list[Result] = []
    for scenario in SCENARIOS:
        name = scenario.__name__.rsplit(".", 1)[-1]
        print(f"running {name} ...", file=sys.stderr)
        results.extend(await scenario.run())
    print(table(results))
    out = ROOT / "bench" / "results.json"
    out.write_text(
        json.dumps([dataclasses.asdict(r) | {"ratio": r.ratio} for r in results], indent=2) + "\n"
    )
    print(f"\nwritten to {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
