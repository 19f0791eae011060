"""`kefu replay` with order-source events: the example day of TMC messages and order questions."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.replay import Replay, load_script
from tests_support import REPO

EXAMPLE = REPO / "examples" / "orders_day.yaml"


def run_example(engine):
    start, online, events = load_script(EXAMPLE, engine.config)
    runner = Replay(engine, start, online)
    return runner, runner.run(events)


def test_the_example_day_answers_with_the_right_state_each_time(engine):
    runner, lines = run_example(engine)
    asked = [(line.said, line.kind, line.phrase_id) for line in lines if line.trigger == "message"][1:]
    assert asked == [
        ("发货了吗", "auto_send", "order_state.track_waiting"),       # paid, not shipped
        ("能改地址吗", "auto_send", "order_state.address_ok"),          # before shipping: yes
        ("发货了吗", "auto_send", "order_state.track_shipped_plain"),  # shipped, no courier from TMC
        ("能改地址吗", "auto_send", "order_state.address_too_late"),    # after shipping: no
        ("我的快递到哪了", "auto_send", "order_state.track_shipped"),    # the real courier and number
        ("发货了吗", "suggest", "track.shipped"),                      # source down: suggest only
    ]
    texts = {line.said + str(i): line.text for i, line in enumerate(lines) if line.trigger == "message"}
    shipped_with_number = [t for t in texts.values() if t and "73100045678901" in t]
    assert len(shipped_with_number) == 1 and "中通快递" in shipped_with_number[0]
    # the shipped answer before the shop's system named a courier names none (no guess)
    plain = next(line.text for line in lines if line.phrase_id == "order_state.track_shipped_plain")
    assert "中通" not in plain and "3141592653" in plain
    # the first answer about the most recent order asks the customer to confirm it, once
    first = next(line for line in lines if line.phrase_id == "order_state.track_waiting")
    assert "订单号发我" in first.text
    assert "订单号发我" not in next(line for line in lines if line.phrase_id == "order_state.address_ok").text
    assert "order state unknown" in lines[-1].reasons[0]


def test_tmc_redelivery_is_recorded_once_and_no_one_is_chased(engine):
    runner, lines = run_example(engine)
    store = runner.store
    assert [m["message_id"][-3:] for m in store.source_messages()] == ["001", "002", "003", "004"]
    assert [m["outcome"] for m in store.source_messages()] == ["order", "order", "order", "ignored"]
    statuses = [e["status"] for e in store.order_events("3141592653")]
    assert statuses == ["created", "paid", "shipped", "shipped"]  # the redelivered "paid" is not in it
    assert any("duplicate" in r for line in lines for r in line.reasons)
    chase = store.get_job("payment_chase:3141592653")
    assert chase is not None and chase.status == "cancelled"  # paid in time: nobody chased
    assert not [line for line in lines if line.trigger == "timer"]


def test_cli_replays_the_example(config_path):
    result = CliRunner().invoke(main, ["replay", str(EXAMPLE), "--config", str(config_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert sum(1 for r in rows if r["phrase_id"] == "order_state.address_too_late") == 1
    assert {"at", "customer", "trigger", "kind", "phrase_id", "text", "intent", "handoff"} <= set(rows[0])


def test_a_bad_tmc_event_names_file_and_line(engine, tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text('clock: "2026-11-23T10:00:00+08:00"\nevents:\n  - {say: x}\n'
                    '  - {tmc: {id: 1, content: {tid: 1}}}\n', encoding="utf-8")
    import pytest

    from bot.replay import ReplayError

    with pytest.raises(ReplayError, match=r"bad.yaml:3"):
        load_script(path, engine.config)
    path.write_text('clock: "2026-11-23T10:00:00+08:00"\nevents:\n  - {tmc: {id: 1, content: {tid: 1}}}\n',
                    encoding="utf-8")
    with pytest.raises(ReplayError, match=r"bad.yaml:3: tmc.topic"):
        load_script(path, engine.config)
