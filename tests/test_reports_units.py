"""Period edges, masking, store period reads and the `kefu report` command line."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from redis_support import open_backend

from bot.cli import main
from bot.masking import mask, mask_address, mask_phone
from bot.reports.period import Period, PeriodError, resolve_period
from bot.reports.response_times import percentile
from bot.reports.unanswered import group
from bot.store import SqliteStore

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_yesterday_is_the_shop_day_even_when_utc_disagrees():
    # 00:30 in Shanghai is 16:30 UTC of the day before: yesterday is still the Shanghai one
    now = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)
    assert resolve_period(None, None, SHANGHAI, now) == Period(date(2026, 11, 23), date(2026, 11, 23), SHANGHAI)
    midnight = datetime(2026, 11, 24, 0, 0, tzinfo=SHANGHAI)
    assert resolve_period(None, None, SHANGHAI, midnight).first == date(2026, 11, 23)
    just_before = midnight - timedelta(microseconds=1)
    assert resolve_period(None, None, SHANGHAI, just_before).first == date(2026, 11, 22)


def test_since_and_until():
    now = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
    assert resolve_period("2026-11-01", None, SHANGHAI, now) == Period(date(2026, 11, 1), date(2026, 11, 30), SHANGHAI)
    assert resolve_period("2026-12-01", None, SHANGHAI, now).last == date(2026, 12, 1)  # today
    assert resolve_period(None, "2026-11-05", SHANGHAI, now).first == date(2026, 11, 5)
    with pytest.raises(PeriodError, match="before"):
        resolve_period("2026-11-05", "2026-11-04", SHANGHAI, now)
    with pytest.raises(PeriodError, match="--since '11/05'"):
        resolve_period("11/05", None, SHANGHAI, now)


def test_period_bounds_are_half_open_midnights():
    p = Period(date(2026, 11, 23), date(2026, 11, 24), SHANGHAI)
    assert p.start == datetime(2026, 11, 22, 16, tzinfo=UTC)
    assert p.end == datetime(2026, 11, 24, 16, tzinfo=UTC)
    assert p.days == 2 and p.previous() == Period(date(2026, 11, 21), date(2026, 11, 22), SHANGHAI)
    assert p.label() == "2026-11-23 ~ 2026-11-24"


def test_masking_phones_and_addresses():
    assert mask_phone("电话13812345678") == "电话138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("订单号1234567890123456789") == "订单号1234567890123456789"  # not a phone
    assert mask_address("地址：浙江省杭州市西湖区文三路100号3单元501室") == "地址：浙江省杭州市****"
    assert mask_address("寄到北京市朝阳区建国路88号") == "寄到北京市****"
    assert "科苑路" not in mask("上海市浦东新区张江镇科苑路123弄4号602")
    for plain in ("包邮吗", "小区门口放一下", "不区分大小吗", "发到深圳"):
        assert mask(plain) == plain
    assert mask(None) == ""


def test_percentile_is_nearest_rank():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 100)) == (3.0, 5.0, 5.0)
    assert percentile([7.0], 90) == 7.0 and percentile([], 50) is None


def test_grouping_joins_reworded_questions_and_drops_fragments():
    groups = group([("可以刻字吗", "other"), ("刻字可以吗", "other"), ("能刻字吗？", "other"),
                    ("发票抬头写错了怎么办", "other"), ("嗯嗯", "other"), ("好的", "other"), ("哦哦哦", "other")])
    assert [g["count"] for g in groups] == [3, 1]
    assert set(groups[0]["wordings"]) == {"可以刻字吗", "刻字可以吗", "能刻字吗？"}


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_store_period_reads_are_half_open_and_paged(kind, tmp_path, request):
    store = open_backend(kind, tmp_path, request)
    start = datetime(2026, 11, 22, 16, tzinfo=UTC)
    for i, at in enumerate([start - timedelta(microseconds=1), start, start + timedelta(hours=1),
                            start + timedelta(hours=1), start + timedelta(days=1)]):
        store.add_message("c", "in", f"m{i}", at, platform="p", message_id=str(i), customer_id="c")
    end = start + timedelta(days=1)
    assert store.count_messages_between(start, end) == 3
    assert [m.text for m in store.iter_messages_between(start, end, batch=1)] == ["m1", "m2", "m3"]
    store.add_order_event("o", "c", "created", start, {"amount": 12.5})
    assert store.order_events_between(start, end)[0]["amount"] == 12.5
    assert store.order_events_between(end) == []
    assert store.add_report_push("daily:x", "ding", "hi", start) is True
    assert store.add_report_push("daily:x", "ding", "again", start) is False
    (push,) = store.pending_report_pushes()
    store.set_report_push(push["id"], "retry", start, "HTTP 500")
    assert store.pending_report_pushes()[0]["attempts"] == 1
    store.set_report_push(push["id"], "sent", end)
    assert store.pending_report_pushes() == [] and store.report_pushes("daily:x")[0]["status"] == "sent"
    with pytest.raises(ValueError):
        store.set_report_push(push["id"], "done", end)
    store.close()


@pytest.fixture(scope="module")
def replayed(engine, tmp_path_factory):
    from reports_scenario import play

    path = tmp_path_factory.mktemp("cli") / "kefu.sqlite"
    store = SqliteStore(path)
    play(engine, store)
    store.close()
    return path


def run(config_path, *args):
    return CliRunner().invoke(main, ["report", "--config", str(config_path), *args])


def test_cli_json_csv_html_and_table(config_path, replayed, tmp_path):
    day = ["--since", "2026-11-23", "--until", "2026-11-23", "--store", str(replayed)]
    result = run(config_path, *day, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["conversion"]["asked"] == 14 and data["period"]["label"] == "2026-11-23"
    out = tmp_path / "r.csv"
    assert run(config_path, *day, "--format", "csv", "--out", str(out)).exit_code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: a Chinese spreadsheet reads it right
    text = raw.decode("utf-8-sig")
    assert "【询盘明细】" in text and "late,taobao,2026-11-23T00:00:00+08:00,有货吗" in text
    assert "13812345678" not in text
    html = tmp_path / "r.html"
    assert run(config_path, *day, "--format", "html", "--out", str(html)).exit_code == 0
    page = html.read_text(encoding="utf-8")
    assert 'id="funnel"' in page and 'id="inquiry-log"' in page and "<script" not in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    table = run(config_path, *day)
    assert table.exit_code == 0 and "询盘明细（未下单客户 11 人）" in table.stdout


def test_cli_errors_are_one_line(config_path, replayed, tmp_path):
    result = run(config_path, "--store", str(tmp_path / "missing.sqlite"))
    assert result.exit_code != 0 and "no store at" in result.output
    assert not (tmp_path / "missing.sqlite").exists()  # a report never creates an empty store
    result = run(config_path, "--store", str(replayed), "--since", "2026-11-31")
    assert result.exit_code == 2 and "expected a date" in result.output
    result = run(config_path, "--store", str(replayed), "--format", "xml")
    assert result.exit_code == 2


def test_customers_show_the_platforms_id_not_the_scoped_one(engine, tmp_path):
    from bot.reports import build_report

    store = SqliteStore(tmp_path / "s.sqlite")
    at = datetime(2026, 11, 23, 10, tzinfo=SHANGHAI)
    row, _ = store.add_message("shop:tb_buyer", "in", "包邮吗", at, platform="shop", message_id="1",
                               customer_id="shop:tb_buyer")
    store.add_decision("shop:tb_buyer", at, "message", "suggest", {"intent": "free_shipping", "intent_score": 1.0},
                       message_row=row)
    store.add_order_event("o9", "shop:tb_buyer", "created", at + timedelta(minutes=1), {})
    report = build_report(store, engine.config, Period(date(2026, 11, 23), date(2026, 11, 23), SHANGHAI),
                          at + timedelta(days=1))
    assert report["conversion"]["ordered"] == 1  # matched on the scoped id
    assert report["unpaid"]["rows"][0]["customer"] == "tb_buyer"
    store.close()
