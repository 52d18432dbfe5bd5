"""The soak's fault schedule (bench/soak.py): pure, so a seed replays a soak's faults."""

from __future__ import annotations

import itertools

from bench.soak import GAP, SERVICES, Fault, count_row, schedule, table, tally


def test_a_seed_replays_its_schedule_and_another_seed_differs() -> None:
    assert schedule(1234, 600) == schedule(1234, 600)
    assert schedule(1234, 600) != schedule(1235, 600)


def test_faults_come_every_20_to_60_seconds_within_the_soak() -> None:
    for seed in range(50):
        faults = schedule(seed, 600)
        times = [f.at for f in faults]
        assert times == sorted(times)
        assert GAP[0] <= times[0] <= GAP[1]
        assert all(GAP[0] <= b - a <= GAP[1] for a, b in itertools.pairwise(times))
        assert times[-1] < 600
        assert 600 - times[-1] <= GAP[1]  # no long quiet end: the next one would fall past it


def test_every_kind_is_drawn_with_what_it_needs() -> None:
    faults = [f for seed in range(50) for f in schedule(seed, 600)]
    assert {f.kind for f in faults} == {"kill", "rabbit", "postgres", "zoom"}
    for f in faults:
        if f.kind == "kill":
            assert f.target in SERVICES
        elif f.kind == "rabbit":
            assert 3 <= f.size <= 15
        elif f.kind == "zoom":
            assert f.target in ("429", "500")
            assert 5 <= f.size <= 25


def test_a_longer_soak_starts_with_the_shorter_ones_faults() -> None:
    short, long = schedule(7, 120), schedule(7, 600)
    assert long[: len(short)] == short


def test_the_summary_counts_every_kind() -> None:
    faults = [Fault(1, "kill", "catalog"), Fault(2, "kill", "bridge"), Fault(3, "zoom", "429", 5)]
    assert tally(faults) == "3 faults (2 kill -9, 0 RabbitMQ, 0 PostgreSQL, 1 Zoom bursts)"


def test_an_invariant_fails_when_found_is_not_expected_and_the_table_says_so() -> None:
    rows = [count_row("dead-lettered messages", 0, 0), count_row("outbox unsent", 0, 3, "(x)")]
    assert [r.ok for r in rows] == [True, False]
    lines = table(rows).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:5]] == ["invariant", "expected", "found", "ok"]
    assert lines[2].rstrip().endswith("| ok     |")
    assert "| 3 (x)" in lines[3]
    assert lines[3].rstrip().endswith("| FAILED |")
