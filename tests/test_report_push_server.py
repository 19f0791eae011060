"""`kefu serve` wiring: with report targets the server schedules the push and runs its delivery loop."""

from __future__ import annotations

import pytest
from fake_robots import DING_SECRET, WECOM_KEY, targets

from bot.assistant import Assistant
from bot.config import ReportSettings
from bot.scheduler import SystemClock
from bot.store import SqliteStore
from bot.web.server import KefuServer
from connectors.http import Outbound


@pytest.mark.parametrize("with_targets", [True, False])
async def test_the_server_installs_the_daily_push(engine, tmp_path, monkeypatch, aiohttp_client, with_targets):
    monkeypatch.setenv("KEFU_TEST_DING_SECRET", DING_SECRET)
    monkeypatch.setenv("KEFU_TEST_WECOM_KEY", WECOM_KEY)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    reports = ReportSettings(targets=targets("http://127.0.0.1:9") if with_targets else [])
    config = engine.config.model_copy(update={"reports": reports})
    assistant = Assistant(engine, store, SystemClock(config.flows.tz))
    server = KefuServer(config, assistant, {}, Outbound())
    await aiohttp_client(server.app())  # startup runs
    jobs = store.due_jobs(store.next_due()) if store.next_due() else []
    if with_targets:
        assert [j.kind for j in jobs] == ["report_push"] and "report_push" in assistant.job_handlers
        assert server.push_task is not None and not server.push_task.done()
    else:
        assert jobs == [] and server.push_task is None
    store.close()
