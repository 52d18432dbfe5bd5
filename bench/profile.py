"""Profile one service while one scenario runs: ``uv run python bench/profile.py SCENARIO SERVICE``.

SERVICE is catalog, registration or bridge. The service runs under pyinstrument (sampling every
1 ms, whole process); the session is saved to ``bench/profiles/<scenario>-<module>.pyisession``
when the scenario stops the process, then rendered as text next to it (``.txt``). Open it again
with ``uv run python -m pyinstrument --load bench/profiles/<file>.pyisession -r html``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODULES = {"catalog": "catalog", "registration": "registration", "bridge": "zoom_bridge"}


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[2] not in MODULES:
        raise SystemExit(__doc__)
    scenario, service = sys.argv[1], sys.argv[2]
    os.environ["BENCH_PROFILE"] = service
    os.environ["BENCH_PROFILE_SCENARIO"] = scenario
    from bench.run import main as run_main

    asyncio.run(run_main([scenario]))
    session = ROOT / "bench" / "profiles" / f"{scenario}-{MODULES[service]}.pyisession"
    text = session.with_suffix(".txt")
    with text.open("w") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pyinstrument",
                "--load",
                str(session),
                "-r",
                "text",
                "--no-color",
                "--show=*/te_shared/*",
                "-p",
                "processor_options.filter_threshold=0.005",
            ],
            stdout=out,
            check=True,
        )
    print(f"profile: {text.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
