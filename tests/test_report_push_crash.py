"""kill -9 at the due time: the daily summary still goes out, exactly once per robot.

A first process installs the push (the job is now in the SQLite file) and waits like a
server; it is killed with SIGKILL. A second process starts at 09:00:30 with the robots
unreachable: the job fires and queues the summary, then it is killed before any delivery.
A third process, robots up, delivers; a fourth delivers nothing more.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap

import pytest
from fake_robots import DING_SECRET, WECOM_KEY, FakeRobots, targets
from reports_scenario import play

from bot.config import load_config
from bot.store import SqliteStore
from tests_support import write_config

PROCESS = textwrap.dedent(
    """
    import asyncio, sys, time
    from datetime import datetime
    from bot.app import build
    from bot.config import load_config
    from bot.reports.push import ReportPusher
    from bot.scheduler import ManualClock

    config_path, db, at, mode = sys.argv[1:5]
    config = load_config(config_path)
    clock = ManualClock(datetime.fromisoformat(at))
    app = build(config, store=db, clock=clock, orders=None)
    store, assistant = app.store, app.assistant
    pusher = ReportPusher(store, config, clock)
    pusher.install(assistant)
    assistant.tick()
    if mode == "deliver":
        print("sent", asyncio.run(pusher.deliver()), flush=True)
    else:
        print("ready", flush=True)
        time.sleep(120)
    """
)


async def start(*args, env):
    return await asyncio.create_subprocess_exec(sys.executable, "-c", PROCESS, *map(str, args),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)


async def kill_when_ready(*args, env):
    proc = await start(*args, env=env)
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    assert line.decode().strip() == "ready", (await proc.stderr.read()).decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL


async def deliver(*args, env):
    proc = await start(*args, "deliver", env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode().strip()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
async def test_kill_9_at_the_due_time_sends_once(engine, config_path, tmp_path, aiohttp_server):
    robots = await FakeRobots().start(aiohttp_server)
    base = robots.base()
    model = load_config(config_path).intents.model_path  # the session's model: no retraining
    (tmp_path / "up").mkdir()
    (tmp_path / "down").mkdir()
    up = write_config(tmp_path / "up", intents={"model_path": model}, reports={"push_at": "09:00", "targets": targets(base)})
    down = write_config(tmp_path / "down", intents={"model_path": model},
                        reports={"push_at": "09:00", "targets": targets("http://127.0.0.1:9")})
    db = tmp_path / "kefu.sqlite"
    store = SqliteStore(db)
    play(engine, store)
    store.close()
    env = {**os.environ, "KEFU_TEST_DING_SECRET": DING_SECRET, "KEFU_TEST_WECOM_KEY": WECOM_KEY,
           "PYTHONPATH": os.pathsep.join(sys.path)}

    await kill_when_ready(up, db, "2026-11-24T08:59:50+08:00", "wait", env=env)
    store = SqliteStore(db)
    assert store.get_job("report_push:2026-11-24").status == "pending"
    store.close()

    await kill_when_ready(down, db, "2026-11-24T09:00:30+08:00", "wait", env=env)  # fired, robots unreachable
    store = SqliteStore(db)
    assert store.get_job("report_push:2026-11-24").status == "done"
    assert [p["target"] for p in store.pending_report_pushes()] == ["team-ding", "team-wecom"]
    store.close()
    assert robots.ding == [] and robots.wecom == []

    assert await deliver(up, db, "2026-11-24T09:01:00+08:00", env=env) == "sent 2"
    assert await deliver(up, db, "2026-11-24T09:30:00+08:00", env=env) == "sent 0"
    assert len(robots.ding) == 1 and len(robots.wecom) == 1 and robots.rejected == []
    assert "询单 14 人" in robots.ding[0]
    store = SqliteStore(db)
    assert {p["status"] for p in store.report_pushes()} == {"sent"}
    assert store.get_job("report_push:2026-11-25").status == "pending"
    store.close()
