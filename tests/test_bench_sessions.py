"""benchmarks/bench_sessions.py runs end to end on a small session file of our own writing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Our own lines in the dataset's layout: session, customer, by-agent flag, transfer, repeat, SKU, text.
ROWS = [
    ("s1", "是"), ("s1", "没有"), ("s1", "还没"),
    ("s2", "物流显示已签收，但是我根本没收到货"), ("s2", "好的"), ("s2", "没有"), ("s2", "谢谢"),
    ("s3", "能便宜点吗"), ("s3", "再便宜一点呗"), ("s3", "还能再少点吗"), ("s3", "再便宜点吧"), ("s3", "便宜点嘛"),
    ("s4", "亲 在吗 你好，包邮吗？什么时候发货"),
]


def test_bench_sessions_prints_its_tables(tmp_path, config_path, engine):
    folder = tmp_path / "jddc2019_chat_sample"
    folder.mkdir()
    lines = [f"{s}\tUSER_{s}\t0\t0\t0\tnan\t{text}" for s, text in ROWS]
    lines.insert(1, "s1\tUSER_s1\t1\t0\t0\tnan\t请问还有什么可以帮您？")  # agent turns are not sent
    (folder / "chat_0.1per.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_sessions.py"), "--data-dir", str(tmp_path),
         "--config", str(config_path), "--sample", "3"],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("4 sessions, 13 customer turns")
    assert "| intake started on a bare answer | 0 |" in out
    assert "| the same intake question asked twice in a conversation | 0 |" in out
    assert "| lines sent whose requires did not hold | 0 |" in out
    assert "| lost_parcel | 1 |" in out  # s2 goes to a person after its intake ends
    assert "Sample of auto-sent replies (seed 7, 3 of" in out
