"""`kefu serve` wiring: with report targets the server schedules the push and runs its delivery loop."""

from __future__ import annotations

import pytest
from fake_robots import DING_SECRET, WECOM_KEY, targets

from bot.app import build
from bot.config import ReportSettings
from bot.store import SqliteStore


@pytest.mark.parametrize("with_targets", [True, False])
async def test_the_server_installs_the_daily_push(engine, tmp_path, monkeypatch, aiohttp_client, with_targets):
    monkeypatch.setenv("KEFU_TEST_DING_SECRET", DING_SECRET)
    monkeypatch.setenv("KEFU_TEST_WECOM_KEY", WECOM_KEY)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    reports = ReportSettings(targets=targets("http://127.0.0.1:9") if with_targets else [])
    config = engine.config.model_copy(update={"reports": reports})
    server = build(config, engine=engine, store=store, connectors={}).server
    assistant = server.assistant
    await aiohttp_client(server.app())  # startup runs
    jobs = store.due_jobs(store.next_due()) if store.next_due() else []
    if with_targets:
        assert [j.kind for j in jobs] == ["report_push"] and "report_push" in assistant.job_handlers
        assert server.push_task is not None and not server.push_task.done()
    else:
        assert jobs == [] and server.push_task is None
    store.close()


async def test_a_message_sent_from_the_agent_workspace_counts_as_a_person(engine, tmp_path, aiohttp_client):
    from datetime import date, timedelta

    from reports_scenario import SHANGHAI, t

    from bot.models import Inbound
    from bot.reports import build_report
    from bot.reports.period import Period
    from bot.scheduler import ManualClock

    store = SqliteStore(tmp_path / "kefu.sqlite")
    clock = ManualClock(t("2026-11-23T14:00:00"))
    server = build(engine.config, engine=engine, store=store, clock=clock, connectors={}).server
    assistant = server.assistant

    def say(text, n):
        assistant.handle_message(Inbound(platform="shop", conversation_id="c", customer_id="c", message_id=n,
                                         text=text))

    say("我要转人工", "1")  # the bot tells the customer at once
    clock.advance(timedelta(seconds=30))
    server._record_agent_message("c", "您好，我是小美", "xiaomei")  # takes the ticket; answers no waiting message
    clock.advance(timedelta(seconds=30))
    say("好的我等你", "2")  # a person owns it now: only they answer
    clock.advance(timedelta(seconds=40))
    server._record_agent_message("c", "您好，我来处理", "xiaomei")
    report = build_report(store, engine.config, Period(date(2026, 11, 23), date(2026, 11, 23), SHANGHAI),
                          t("2026-11-24T09:00:00"))
    rt = report["response_times"]
    assert rt["human"]["count"] == 1 and rt["human"]["p50"] == 40.0
    assert rt["bot"]["count"] == 1
    (row,) = report["inquiries"]["rows"]
    assert row["answered_by"] == "bot+human"
    store.close()
