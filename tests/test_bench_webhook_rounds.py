"""bench_webhook's ``--rounds``: every round's server ÷ Assistant is printed, with the median."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_webhook  # noqa: E402

Row = bench_webhook.Row
LABEL = "kefu serve, SQLite (wrk -c16) @ this checkout"


def test_rounds_print_every_ratio_and_the_median_and_the_last_round_meets_the_baseline():
    rows = [Row("in-process Engine.suggest", 1000, 1.0),
            Row("in-process Assistant (round 1)", 500, 1.0), Row(f"{LABEL} (round 1)", 450, 1.0),
            Row("in-process Assistant (round 2)", 400, 1.0), Row(f"{LABEL} (round 2)", 400, 1.0),
            Row("in-process Assistant (round 3)", 480, 1.0), Row(f"{LABEL} (round 3)", 456, 1.0),
            Row("kefu serve, SQLite (wrk -c16) @ baseline 48fbc7c", 380, 1.0)]
    lines = bench_webhook.ratios(rows)
    assert "server ÷ in-process Assistant by round: 0.90, 1.00, 0.95; median 0.95 (target ≥ 0.9)" in lines
    assert "durable single worker: this checkout ÷ baseline = 1.20 (target ≥ 2.5)" in lines
    assert not any(line.startswith("server ÷ in-process Assistant = ") for line in lines)


def test_one_round_keeps_the_single_ratio_line():
    rows = [Row("in-process Assistant", 500, 1.0), Row(LABEL, 470, 1.0)]
    assert bench_webhook.ratios(rows) == ["server ÷ in-process Assistant = 0.94 (target ≥ 0.9)"]


def test_only_callback_needs_its_rate(capsys):
    import pytest

    with pytest.raises(SystemExit) as stopped:
        bench_webhook.main(["--only", "callback"])
    assert stopped.value.code == 2
    assert "--only callback needs --callback-rate" in capsys.readouterr().err
