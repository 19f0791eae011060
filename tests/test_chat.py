"""`kefu chat` runs the real Assistant: state, flows, policy, hand-off, timers, order events.

Input is piped (the plain line reader); the prompt_toolkit reader is driven through a pipe
input. The clock is the real one unless a test starts it with ``--at`` (a chase or a reply
that depends on the hour must not depend on when CI runs); otherwise assertions accept either
side of working hours where the wording depends on it.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.cli.chat import _typed_lines

pytestmark = pytest.mark.usefixtures("engine")  # the session's model, trained once


def chat(config_path, *lines: str, args: tuple[str, ...] = ()) -> str:
    result = CliRunner().invoke(main, ["chat", "--config", str(config_path), *args],
                                input="".join(f"{line}\n" for line in lines), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def turns(output: str) -> dict[str, str]:
    """Each echoed input line → the block printed for it."""
    blocks = [block for block in output.split("\n\n") if block.strip()]
    return {block.splitlines()[0][2:]: block for block in blocks if block.startswith("> ")}


def test_the_hand_off_the_queue_and_the_hand_back(config_path):
    out = turns(chat(config_path, "包邮吗", "转人工", "发什么快递", "/agents on", "在吗", "/release", "/resolve"))
    assert "[message] auto_send  intent free_shipping" in out["包邮吗"]
    assert re.search(r"客服 \(shipping\.", out["包邮吗"])
    handed = out["转人工"]
    assert "[message] handoff  intent human_request" in handed
    assert "handoff presale/normal human_request, ticket #1 (queued)" in handed
    assert re.search(r"客服 \(handoff\.(no_agent|after_hours)\)", handed), "no invented waiting time"
    assert "分钟" not in handed
    queued = out["发什么快递"]
    assert "客服 (handoff.queued)" in queued and "ticket 1 is queued" in queued
    assert "ticket #1 assigned → xiaomei" in out["/agents on"]
    assert "a person owns this conversation" in out["在吗"]
    assert "released by the agent" in out["/release"]
    assert "error: conversation chat has no open ticket" in out["/resolve"]


def test_advance_fires_the_bargaining_follow_up_and_the_payment_chase(config_path):
    out = turns(chat(config_path, "能便宜点吗", "再便宜一点呗", "还能再少点吗，少点就买", "/advance 1m", "/advance 2m",
                     "/order created o9", "/advance 31m", "/order paid o7", "/order created o7", "/order paid o7",
                     "/advance 40m", args=("--at", "2026-12-01 10:00")))
    assert "bargain.manager" in out["还能再少点吗，少点就买"]
    assert "[timer]" not in out["/advance 1m"], "the follow-up waits its 2.5 minutes"
    assert "[timer] auto_send" in out["/advance 2m"] and "bargain.gift_followup" in out["/advance 2m"]
    assert "payment chase at" in out["/order created o9"]
    assert "[timer] auto_send" in out["/advance 31m"] and "pay.chase.consulted" in out["/advance 31m"]
    assert "clock 2026-12-01 10:34 (" in out["/advance 31m"]
    assert "payment chase cancelled" in out["/order paid o7"]
    assert "[timer]" not in out["/advance 40m"], "a paid order is not chased"


def test_at_starts_the_clock_in_the_quiet_hours_so_the_chase_waits_for_morning(config_path):
    out = turns(chat(config_path, "/order created o9", "/advance 31m", "/advance 9h", args=("--at", "2026-12-01 23:00")))
    assert "payment chase at" in out["/order created o9"]
    assert "clock 2026-12-01 23:31 (" in out["/advance 31m"]
    assert "[timer]" not in out["/advance 31m"], "no chase at 23:31: config.yaml's quiet_hours are 22:00-08:00"
    assert "[timer] auto_send" in out["/advance 9h"] and "pay.chase" in out["/advance 9h"]


def test_commands_explain_themselves(config_path):
    out = turns(chat(config_path, "/help", "/bogus", "/agents maybe", "/advance soon", "/order lost"))
    assert "/advance 3m" in out["/help"] and "/order paid|closed|created [ORDER_ID]" in out["/help"]
    assert "unknown command /bogus" in out["/bogus"]
    assert "usage: /agents on|off" in out["/agents maybe"]
    assert "usage: /advance 3m" in out["/advance soon"]
    assert "usage: /order created|paid" in out["/order lost"]


def test_agents_off_returns_their_tickets_and_the_bot_answers_again(config_path):
    out = turns(chat(config_path, "/agents on", "转人工", "包邮吗", "/agents off", "包邮吗？"))
    assert "→ xiaomei" in out["转人工"]
    assert "[message] suggest" in out["包邮吗"]
    assert "ticket #1 queued" in out["/agents off"] and "xiaomei offline" in out["/agents off"]
    assert "[message] auto_send" in out["包邮吗？"] and "handoff.queued" in out["包邮吗？"]


def test_store_keeps_the_conversation_across_runs(config_path, tmp_path):
    store = tmp_path / "chat.sqlite"
    chat(config_path, "转人工", args=("--store", str(store)))
    again = turns(chat(config_path, "在吗", "/resolve", args=("--store", str(store))))
    assert "ticket 1 is queued" in again["在吗"], "the second run continues the same conversation"
    assert "resolved by the agent" in again["/resolve"]
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT status FROM tickets").fetchall() == [("resolved",)]
        assert conn.execute("SELECT COUNT(*) FROM messages WHERE direction = 'in'").fetchone() == (2,)


def test_the_temporary_store_is_removed_at_exit(config_path, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    chat(config_path, "包邮吗")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("kefu-chat-")] == []


def test_the_terminal_prompt_edits_lines_drops_them_on_ctrl_c_and_ends_on_ctrl_d():
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text("包邮\x7f\x7f发什么快递\r")  # two backspaces: line editing
        pipe.send_text("不要了\x03")  # Ctrl-C drops the line being typed, as in a shell
        pipe.send_text("你好\r")
        pipe.send_text("\x04")  # Ctrl-D on an empty line ends the chat
        assert list(_typed_lines(True)) == ["发什么快递", "你好"]
