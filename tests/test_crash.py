"""A kill -9 with a follow-up pending loses nothing and fires nothing twice.

The first process replays the bargaining ladder up to the manager line (the gift follow-up is
now a pending job in the SQLite file) and then waits like a server would; the test kills it
with SIGKILL. A second process opens the same file 5 minutes later and runs the due jobs:
the follow-up fires exactly once; a third start fires nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import yaml

from bot.store import SqliteStore

FIRST = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bot.app import build
    from bot.config import load_config
    from bot.replay import Replay, load_script

    config = load_config(sys.argv[1])
    start, online, events = load_script(Path(sys.argv[2]), config)
    app = build(config, store=sys.argv[3])
    Replay(app.engine, start, online, app.store).run(events)
    print("ready", flush=True)
    time.sleep(120)
    """
)

RESTART = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timedelta
    from bot.app import build
    from bot.config import load_config
    from bot.scheduler import ManualClock

    config = load_config(sys.argv[1])
    clock = ManualClock(datetime.fromisoformat(sys.argv[4]))
    assistant = build(config, store=sys.argv[3], clock=clock, orders=None).assistant
    fired = assistant.tick()
    print(json.dumps([[d.kind, [r.id for r in d.replies]] for _, d in fired]))
    """
)


def run_restart(config_path, script, db, at):
    out = subprocess.run([sys.executable, "-c", RESTART, str(config_path), str(script), str(db), at],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.usefixtures("engine")  # the session model exists, so the subprocesses start fast
def test_kill_9_with_a_follow_up_pending(config_path, tmp_path):
    script = tmp_path / "ladder.yaml"
    script.write_text(yaml.safe_dump({
        "clock": "2026-11-23T10:00:00+08:00",
        "events": [{"customer": "c1", "text": t} for t in ("能便宜点吗", "再便宜一点呗", "还能再少点吗，少点就买")],
    }, allow_unicode=True), encoding="utf-8")
    db = tmp_path / "kefu.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", FIRST, str(config_path), str(script), str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    store = SqliteStore(db)
    job = store.get_job("bargain_followup:c1")
    assert job is not None and job.status == "pending"
    store.close()

    # restarted before the job is due: nothing fires
    assert run_restart(config_path, script, db, "2026-11-23T10:01:00+08:00") == []
    # restarted after: exactly one follow-up, then never again
    assert run_restart(config_path, script, db, "2026-11-23T10:05:00+08:00") == [["auto_send", ["bargain.gift_followup"]]]
    assert run_restart(config_path, script, db, "2026-11-23T10:30:00+08:00") == []

    store = SqliteStore(db)
    timers = [d for d in store.decisions("c1") if d["trigger"] == "timer"]
    assert len(timers) == 1
    sent = [m.text for m in store.recent_messages("c1", limit=50) if m.direction == "out"]
    assert sent.count(timers[0]["payload"]["replies"][0]["text"]) == 1
    store.close()
