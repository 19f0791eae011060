"""The kill -9 load test, small: `kefu serve --workers 2` on a real redis-server, one worker killed
mid-run, clients retrying like the platforms — nothing accepted lost, every conversation in order.

The full run (10k messages, 3 kills) is `python benchmarks/bench_workers_kill.py`; this one
runs the same script with 300 messages so CI guards the guarantees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from redis_support import REDIS_SERVER

from tests_support import need_service

REPO = Path(__file__).resolve().parent.parent


def test_kill_minus_nine_loses_nothing_and_keeps_order(config_path, engine):
    need_service(Path(REDIS_SERVER).exists(), f"{REDIS_SERVER} is not installed (apt-get install redis-server)")
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_workers_kill.py"), "--messages", "300",
         "--conversations", "30", "--kills", "1", "--concurrency", "16", "--config", str(config_path),
         "--timeout", "240"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=280,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr

    def figure(name: str) -> str:
        match = re.search(rf"^\| {re.escape(name)}\s*\| (.+?) \|$", out, re.M)
        assert match, f"no {name!r} row in:\n{out}"
        return match.group(1)

    assert figure("messages accepted (2xx)") == "300"
    assert figure("workers killed (kill -9) / restarted") == "1 / 1"
    for name in ("lost (accepted, not processed)", "processed twice", "decision order violations",
                 "delivery order violations", "duplicates outside the window", "marked delivered, never received"):
        assert figure(name) == "0", name
    assert int(figure("lines delivered")) > 0
    assert figure("supervisor exit status on SIGTERM") == "0"
