"""The daily summary pushed to a fake DingTalk and a fake WeCom robot: signature, body, once a day."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from fake_robots import DING_SECRET, WECOM_KEY, FakeRobots, targets
from redis_support import open_backend
from reports_scenario import play, t

from bot.app import build
from bot.config import ReportSettings
from bot.reports.push import ReportPusher, summary_text
from bot.scheduler import ManualClock
from bot.store import SqliteStore


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("KEFU_TEST_DING_SECRET", DING_SECRET)
    monkeypatch.setenv("KEFU_TEST_WECOM_KEY", WECOM_KEY)


def pusher_for(engine, store, clock, base_url, **settings):
    config = engine.config.model_copy(update={"reports": ReportSettings(targets=targets(base_url), **settings)})
    assistant = build(engine.config, engine=engine, store=store, clock=clock, orders=None).assistant
    pusher = ReportPusher(store, config, clock)
    assert pusher.install(assistant)
    return assistant, pusher


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("kind", ["file", "redis"])
async def test_the_day_is_pushed_once_to_both_robots(kind, engine, tmp_path, aiohttp_server, request):
    robots = await FakeRobots().start(aiohttp_server)
    store = open_backend(kind, tmp_path, request)
    play(engine, store)
    clock = ManualClock(t("2026-11-24T08:00:00"))
    assistant, pusher = pusher_for(engine, store, clock, robots.base())
    assert store.get_job("report_push:2026-11-24").due_at == t("2026-11-24T09:00:00")
    assistant.tick()
    assert await pusher.deliver() == 0  # not due yet
    clock.set(t("2026-11-24T09:00:00"))
    assistant.tick()
    assert await pusher.deliver() == 2
    assert robots.rejected == []
    assert len(robots.ding) == 1 and robots.ding == robots.wecom
    text = robots.ding[0]
    assert text.startswith("【小鹿家居旗舰店 客服日报 2026-11-23】")
    assert "询单 14 人 · 下单 3 · 付款 2 · 询单转化 14.3%" in text
    assert "1. 刻字可以吗（4 次）" in text or "（4 次）" in text.splitlines()[-4]
    assert text.count("次）") == 3  # the top three groups
    assert "13812345678" not in text
    # later ticks and a restarted pusher send nothing more; tomorrow's push is scheduled
    clock.set(t("2026-11-24T09:30:00"))
    assistant.tick()
    assert await pusher.deliver() == 0
    _, again = pusher_for(engine, store, clock, robots.base())
    assert await again.deliver() == 0
    assert len(robots.ding) == 1 and len(robots.wecom) == 1
    assert store.get_job("report_push:2026-11-25").status == "pending"
    await pusher.http.close()
    await again.http.close()
    store.close()


async def test_a_wrong_secret_is_refused_and_retried_not_marked_sent(engine, tmp_path, aiohttp_server, monkeypatch):
    monkeypatch.setenv("KEFU_TEST_DING_SECRET", "SECwrong")
    monkeypatch.setenv("KEFU_TEST_WECOM_KEY", WECOM_KEY)
    robots = await FakeRobots().start(aiohttp_server)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    play(engine, store)
    clock = ManualClock(t("2026-11-24T08:59:00"))
    assistant, pusher = pusher_for(engine, store, clock, robots.base())
    clock.set(t("2026-11-24T09:00:00"))
    assistant.tick()
    assert await pusher.deliver() == 1  # WeCom only
    (pending,) = store.pending_report_pushes()
    assert pending["target"] == "team-ding" and pending["attempts"] == 1 and "310000" in store.report_pushes()[0]["error"]
    assert robots.rejected[0][0] == "ding" and robots.ding == []
    await pusher.http.close()
    store.close()


@pytest.mark.usefixtures("secrets")
async def test_a_day_without_traffic_is_skipped_with_a_log_line(engine, tmp_path, caplog):
    store = SqliteStore(tmp_path / "kefu.sqlite")
    clock = ManualClock(t("2026-11-24T08:59:00"))
    assistant, pusher = pusher_for(engine, store, clock, "http://127.0.0.1:9")
    clock.set(t("2026-11-24T09:00:00"))
    with caplog.at_level(logging.INFO, logger="bot.reports.push"):
        assistant.tick()
    assert "report push for 2026-11-23 skipped" in caplog.text
    assert store.report_pushes() == []
    assert store.get_job("report_push:2026-11-24").status == "done"
    assert store.get_job("report_push:2026-11-25").status == "pending"
    await pusher.http.close()
    store.close()


def test_no_targets_no_push(engine, tmp_path):
    store = SqliteStore(tmp_path / "kefu.sqlite")
    pusher = ReportPusher(store, engine.config, ManualClock(datetime.fromisoformat("2026-11-24T08:00:00+08:00")))
    assert not pusher.install(build(engine.config, engine=engine, store=store, clock=pusher.clock, orders=None).assistant)
    assert store.next_due() is None
    store.close()


def test_summary_text_is_short_chinese():
    report = {
        "shop": "店", "period": {"label": "2026-11-23"},
        "conversion": {"asked": 4, "ordered": 2, "paid": 1, "conversion": 0.25},
        "response_times": {"within_seconds": 60.0, "within_share": 0.5, "bot": {"p50": 0.0}, "human": {"p50": 75.0}},
        "shares": {"auto_reply_share": 0.5, "handoffs": 1, "sla_breaches": 0, "open_tickets": 2},
        "unpaid": {"unpaid": 1, "chased": 1, "paid_after_chase": 0},
        "unanswered": {"rows": []}, "inquiries": {"count": 2},
    }
    text = summary_text(report)
    assert "询单 4 人 · 下单 2 · 付款 1 · 询单转化 25.0%" in text
    assert "人工 P50 1.2 分钟" in text and "Top 3" not in text


def test_report_targets_keep_their_secrets_unexpanded_until_the_push(tmp_path, monkeypatch):
    from bot.config import load_config
    from tests_support import write_config

    monkeypatch.delenv("KEFU_TEST_DING_SECRET", raising=False)
    path = write_config(tmp_path, reports={"targets": targets("http://x")})
    config = load_config(path)  # no error: lint/report need no robot secrets
    assert config.reports.targets[0].secret == "${KEFU_TEST_DING_SECRET}"
    bad = write_config(tmp_path, reports={"targets": [{"name": "x", "type": "slack"}]})
    with pytest.raises(Exception, match="reports.targets"):
        load_config(bad)


def test_a_missing_robot_secret_stops_the_start(engine, tmp_path, monkeypatch):
    from bot.config import ConfigError

    monkeypatch.delenv("KEFU_TEST_DING_SECRET", raising=False)
    monkeypatch.setenv("KEFU_TEST_WECOM_KEY", WECOM_KEY)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    clock = ManualClock(t("2026-11-24T08:00:00"))
    config = engine.config.model_copy(update={"reports": ReportSettings(targets=targets("http://127.0.0.1:9"))})
    with pytest.raises(ConfigError, match="KEFU_TEST_DING_SECRET"):
        ReportPusher(store, config, clock).install(build(engine.config, engine=engine, store=store, clock=clock, orders=None).assistant)
    assert store.next_due() is None
    store.close()
