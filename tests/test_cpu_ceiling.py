"""benchmarks/cpu_ceiling.py: two forked loops really run at once, and the bench prints the ceiling.

The ceiling row is the yardstick the Redis workers ratio is read against (docs/scale.md §6), so a
pair that silently ran one after the other, or a ratio line that vanished, would mislead the README.
Counts and overlap only, never timings as a target.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_webhook  # noqa: E402
import cpu_ceiling  # noqa: E402


def _spin(items, duration):
    """A CPU-bound loop shaped like webhook_inprocess.timed_loop: (count, seconds, latencies)."""
    started = time.perf_counter()
    n = 0
    for _ in items:
        n += 1
        if time.perf_counter() - started >= duration:
            break
    return n, time.perf_counter() - started, []


def test_two_children_report_every_message_and_overlap():
    started = time.monotonic()
    n, seconds = cpu_ceiling.pair_rate(_spin, [itertools.count(), itertools.count()], 0.5)
    wall = time.monotonic() - started
    assert n > 0 and 0.5 <= seconds < 5
    # run one after the other the pair would take ≥ 1 s of loops; together ~0.5 s (+ fork/start)
    assert wall < 0.5 * 2 + 0.45, f"the two loops did not overlap: {wall:.2f} s"


def test_the_ratio_lines_name_the_box_ceiling_and_the_share_of_it():
    Row = bench_webhook.Row
    rows = [Row("in-process Engine.suggest", 1000, 1.0), Row("in-process Engine.suggest ×2 processes", 1600, 1.0),
            Row("kefu serve --workers 1, Redis (wrk -c16)", 500, 1.0),
            Row("kefu serve --workers 2, Redis (wrk -c16)", 720, 1.0)]
    lines = bench_webhook.ratios(rows)
    assert "Redis: --workers 2 ÷ --workers 1 = 1.44 (target ≥ 1.7 for 2)" in lines
    assert any(line.startswith("box ceiling: Engine.suggest in 2 processes ÷ 1 = 1.60; the Redis ratio is 0.90 of it")
               for line in lines), lines
    # without the pair row (a SQLite-only run) there is no ceiling line, and the engine row is the single one
    assert not any("box ceiling" in line for line in bench_webhook.ratios([rows[0], rows[2], rows[3]]))
