"""The Assistant's desk API on the real engine, a real SQLite store and a manual clock.

Presence (online / away / offline), accept, transfer, agent replies, release / resolve with
their precise errors (and the HTTP status each maps to), SLA breaches noted once, and the
ticket lifecycle that never strands a customer (honest waits, answers while queued).
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from datetime import datetime, timedelta

import pytest

from bot.app import build as compose_app
from bot.assistant import Assistant
from bot.handoff import (
    BadDeskRequest,
    ConversationNotFound,
    DeskError,
    TicketNotFound,
    TicketNotYours,
    TicketStateError,
    UnknownAgent,
)
from bot.models import Inbound
from bot.scheduler import ManualClock
from bot.store import SqliteStore
from bot.store import sqlite as sqlite_module
from bot.store.sqlite import MIGRATIONS
from bot.testkit import engine_under

START = datetime.fromisoformat("2026-11-23T10:00:00+08:00")  # a Monday, within working hours
MIN = timedelta(minutes=1)
_ids = itertools.count()


def compose(engine, store, clock) -> Assistant:
    """The assistant `bot.app.build` composes on ``store`` (no order source, as before a shop sets one)."""
    return compose_app(engine.config, engine=engine, store=store, clock=clock, orders=None).assistant


@pytest.fixture
def make(engine):
    """An Assistant on a fresh in-memory store; config sections may be overridden."""
    stores = []

    def build(**config_updates) -> Assistant:
        config = engine.config.model_copy(deep=True)
        for section, values in config_updates.items():
            setattr(config, section, getattr(config, section).model_copy(update=values))
        store = SqliteStore(":memory:")
        stores.append(store)
        return compose_app(config, engine=engine_under(config, engine), store=store, clock=ManualClock(START),
                           orders=None).assistant

    yield build
    for store in stores:
        store.close()


@pytest.fixture
def bot(make) -> Assistant:
    return make()


def say(assistant: Assistant, conversation: str, text: str):
    inbound = Inbound(platform="test", conversation_id=conversation, customer_id=f"buyer-{conversation}",
                      message_id=f"m{next(_ids)}", text=text)
    return assistant.handle_message(inbound)


def phrase_ids(decision) -> list[str]:
    return [line.id for line in decision.replies]


def hand_off(assistant: Assistant, conversation: str = "c1"):
    decision = say(assistant, conversation, "转人工")
    assert decision.kind == "handoff"
    return assistant.desk.ticket(decision.handoff.ticket_id)


# --- errors carry their HTTP status -------------------------------------------------------------


def test_each_desk_error_maps_to_one_http_status():
    expected = {TicketNotFound: 404, ConversationNotFound: 404, UnknownAgent: 404, TicketNotYours: 403,
                TicketStateError: 409, BadDeskRequest: 400}
    for error, status in expected.items():
        assert issubclass(error, DeskError) and error.status == status
    assert issubclass(TicketNotFound, KeyError) and issubclass(TicketStateError, ValueError)
    assert str(TicketNotFound("no ticket 7")) == "no ticket 7", "no KeyError quotes"


# --- presence -----------------------------------------------------------------------------------


def test_presence_is_a_status_per_agent_and_never_seen_is_offline(bot):
    assert bot.desk.statuses() == {"xiaomei": "offline", "ajie": "offline", "laowang": "offline"}
    bot.set_presence("xiaomei", "online")
    bot.set_presence("ajie", "away")
    assert bot.desk.statuses() == {"xiaomei": "online", "ajie": "away", "laowang": "offline"}
    assert bot.desk.presence() == {"xiaomei": True, "ajie": False, "laowang": False}


@pytest.mark.parametrize(("agent", "status", "error"), [("xiaomei", "busy", BadDeskRequest),
                                                        ("ghost", "online", UnknownAgent)])
def test_bad_presence_is_refused_and_changes_nothing(bot, agent, status, error):
    with pytest.raises(error, match=status if error is BadDeskRequest else "ghost"):
        bot.set_presence(agent, status)
    assert set(bot.desk.statuses().values()) == {"offline"}


def test_only_online_agents_make_away_mode_step_back(bot):
    assert say(bot, "c1", "包邮吗").kind == "auto_send"
    bot.set_presence("xiaomei", "away")  # signed in, not taking anything: the bot still answers alone
    assert not bot.agents_available(bot.clock.now())
    assert say(bot, "c2", "包邮吗").kind == "auto_send"
    bot.set_presence("xiaomei", "online")
    assert bot.agents_available(bot.clock.now())
    assert say(bot, "c3", "包邮吗").kind == "suggest"


def test_away_keeps_tickets_and_takes_nothing_new(make):
    bot = make(policy={"mode": "auto"})
    bot.set_presence("xiaomei", "online")
    mine = hand_off(bot, "c1")
    assert mine.assignee == "xiaomei"
    assert bot.set_presence("xiaomei", "away") == []
    assert bot.desk.ticket(mine.id).assignee == "xiaomei"
    assert hand_off(bot, "c2").status == "queued"


def test_offline_returns_tickets_to_the_queue_and_routes_them(make):
    bot = make(policy={"mode": "auto"})
    bot.set_presence("xiaomei", "online")
    first, second = hand_off(bot, "c1"), hand_off(bot, "c2")
    assert {first.assignee, second.assignee} == {"xiaomei"}
    moved = bot.set_presence("xiaomei", "offline")
    assert sorted(t.id for t in moved) == [first.id, second.id]
    assert all(t.status == "queued" and t.assignee is None for t in moved)
    assert bot.desk.ticket(first.id).sla_due == first.sla_due, "the promise made stays"
    routed = bot.set_presence("laowang", "online")  # presale + sales, capacity 3
    assert [t.id for t in routed] == [first.id, second.id]
    assert all(t.assignee == "laowang" for t in routed)


def test_an_offline_agents_customer_is_answered_by_the_bot_again(make):
    bot = make(policy={"mode": "auto"})
    bot.set_presence("xiaomei", "online")
    hand_off(bot, "c1")
    assert say(bot, "c1", "包邮吗").kind == "suggest", "xiaomei has it: suggestions for her only"
    bot.set_presence("xiaomei", "offline")
    answer = say(bot, "c1", "包邮吗")
    assert answer.kind == "auto_send" and phrase_ids(answer)[0].startswith("shipping.")


# --- accept and transfer ------------------------------------------------------------------------


def test_accept_takes_a_queued_ticket_and_again_is_a_no_op(bot):
    ticket = hand_off(bot)
    taken = bot.accept_ticket(ticket.id, "ajie")  # the presale queue, but an agent may choose
    assert (taken.status, taken.assignee) == ("assigned", "ajie")
    assert bot.accept_ticket(ticket.id, "ajie") == taken
    assert bot.store.load_state("c1")["owner"] == "human"


@pytest.mark.parametrize(
    ("setup", "call", "error"),
    [
        (lambda b, t: b.accept_ticket(t.id, "ajie"), lambda b, t: b.accept_ticket(t.id, "xiaomei"), TicketNotYours),
        (lambda b, t: b.resolve("c1"), lambda b, t: b.accept_ticket(t.id, "xiaomei"), TicketStateError),
        (lambda b, t: None, lambda b, t: b.accept_ticket(t.id + 99, "xiaomei"), TicketNotFound),
        (lambda b, t: None, lambda b, t: b.accept_ticket(t.id, "ghost"), UnknownAgent),
        (lambda b, t: b.accept_ticket(t.id, "ajie"), lambda b, t: b.transfer(t.id, group="aftersale", by="xiaomei"),
         TicketNotYours),
        (lambda b, t: None, lambda b, t: b.transfer(t.id), BadDeskRequest),
        (lambda b, t: None, lambda b, t: b.transfer(t.id, group="aftersale", agent="ajie"), BadDeskRequest),
        (lambda b, t: None, lambda b, t: b.transfer(t.id, group="vip"), BadDeskRequest),
        (lambda b, t: b.release("c1"), lambda b, t: b.transfer(t.id, agent="ajie"), TicketStateError),
        (lambda b, t: b.accept_ticket(t.id, "ajie"), lambda b, t: b.release("c1", by="xiaomei"), TicketNotYours),
        (lambda b, t: b.accept_ticket(t.id, "ajie"), lambda b, t: b.resolve("c1", by="xiaomei"), TicketNotYours),
        (lambda b, t: b.accept_ticket(t.id, "ajie"), lambda b, t: b.agent_replied("c1", "我来", "xiaomei"),
         TicketNotYours),
        (lambda b, t: b.resolve("c1"), lambda b, t: b.resolve("c1"), TicketStateError),
        (lambda b, t: None, lambda b, t: b.release("nobody"), ConversationNotFound),
        (lambda b, t: None, lambda b, t: b.agent_replied("nobody", "您好"), ConversationNotFound),
    ],
)
def test_refusals_are_precise_and_change_nothing(bot, setup, call, error):
    ticket = hand_off(bot)
    setup(bot, ticket)
    before = bot.desk.ticket(ticket.id)
    messages = len(bot.store.recent_messages("c1", 100))
    with pytest.raises(error):
        call(bot, ticket)
    assert bot.desk.ticket(ticket.id) == before
    assert len(bot.store.recent_messages("c1", 100)) == messages


def test_transfer_to_a_group_queues_it_there_and_routes(bot):
    ticket = hand_off(bot)
    bot.accept_ticket(ticket.id, "xiaomei")
    bot.set_presence("ajie", "online")
    moved = bot.transfer(ticket.id, group="aftersale", by="xiaomei")
    assert (moved.group, moved.status, moved.assignee) == ("aftersale", "assigned", "ajie")
    queued = bot.transfer(moved.id, group="sales", by="ajie")  # nobody of sales is online
    assert (queued.status, queued.assignee) == ("queued", None)


def test_transfer_to_an_agent(bot):
    ticket = hand_off(bot)
    bot.accept_ticket(ticket.id, "xiaomei")
    assert bot.transfer(ticket.id, agent="laowang", by="xiaomei").assignee == "laowang"


# --- agent replies ------------------------------------------------------------------------------


def test_agent_reply_meets_the_sla_and_is_stored_as_the_agents(bot):
    ticket = hand_off(bot)
    bot.clock.advance(2 * MIN)
    replied = bot.agent_replied("c1", "您好，我是小美", "xiaomei")
    assert replied.id == ticket.id
    assert (replied.status, replied.assignee) == ("assigned", "xiaomei"), "answering a queued ticket takes it"
    assert replied.answered_at == replied.last_activity_at == bot.clock.now()
    last = bot.store.recent_messages("c1", 1)[0]
    assert (last.direction, last.text, last.raw) == ("out", "您好，我是小美", {"author": "agent", "agent_id": "xiaomei"})
    bot.clock.advance(20 * MIN)
    assert bot.check_sla() == []


def test_a_platform_agent_joining_makes_the_bot_step_back_until_idle(make):
    bot = make(policy={"mode": "auto"})
    assert say(bot, "c1", "包邮吗").kind == "auto_send"
    ticket = bot.agent_replied("c1", "亲，我来帮您看", message_id="cw-1")
    assert (ticket.reason, ticket.status, ticket.assignee) == ("agent_joined", "assigned", "platform")
    assert ticket.answered_at is not None
    assert bot.agent_replied("c1", "亲，我来帮您看", message_id="cw-1") == ticket, "a redelivered report"
    assert [m.text for m in bot.store.recent_messages("c1", 10)].count("亲，我来帮您看") == 1
    assert say(bot, "c1", "包邮吗").kind == "suggest", "a person is talking: the bot keeps quiet"
    bot.clock.advance(31 * MIN)
    assert [d.reasons for _, d in bot.tick()] == [["released: no agent activity"]]
    assert say(bot, "c1", "包邮吗").kind == "auto_send"


# --- release and resolve ------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "final"), [("release", "released"), ("resolve", "resolved")])
def test_hand_back_returns_the_conversation_to_the_bot(make, action, final):
    bot = make(policy={"mode": "auto"})
    ticket = hand_off(bot)
    bot.accept_ticket(ticket.id, "xiaomei")
    decision = getattr(bot, action)("c1", by="xiaomei")
    assert decision.kind == "none"
    assert bot.desk.ticket(ticket.id).status == final
    assert bot.store.load_state("c1")["owner"] == "bot"
    assert say(bot, "c1", "包邮吗").kind == "auto_send"


def test_release_of_a_conversation_the_bot_has_is_a_state_error(bot):
    say(bot, "c1", "包邮吗")
    with pytest.raises(TicketStateError, match="no open ticket"):
        bot.release("c1")


# --- SLA ----------------------------------------------------------------------------------------


def test_sla_breaches_are_noted_once_and_logged(bot, caplog):
    ticket = hand_off(bot)  # presale: 3 minutes
    bot.clock.advance(2 * MIN)
    assert bot.check_sla() == []
    bot.clock.advance(2 * MIN)
    with caplog.at_level(logging.WARNING, logger="bot.handoff.desk"):
        breached = bot.check_sla()
    assert [t.id for t in breached] == [ticket.id] and breached[0].breach_noted_at == bot.clock.now()
    assert "SLA breached: ticket" in caplog.text
    bot.clock.advance(MIN)
    assert bot.check_sla() == [], "once per ticket"
    assert bot.desk.ticket(ticket.id).sla_state(bot.clock.now()) == "breached"


def test_a_breach_noted_survives_a_restart(tmp_path, engine):
    path = tmp_path / "kefu.sqlite"
    clock = ManualClock(START)
    bot = compose(engine, SqliteStore(path), clock)
    hand_off(bot)
    clock.advance(5 * MIN)
    assert len(bot.check_sla()) == 1
    bot.store.close()
    again = compose(engine, SqliteStore(path), clock)
    assert again.check_sla() == []
    again.store.close()


# --- a queued ticket never strands the customer -------------------------------------------------


def test_while_queued_the_bot_answers_other_topics_and_says_the_case_waits(bot):
    ticket = hand_off(bot)
    answer = say(bot, "c1", "包邮吗")
    assert answer.kind == "auto_send"
    assert phrase_ids(answer)[0].startswith("shipping.") and phrase_ids(answer)[-1] == "handoff.queued"
    assert f"ticket {ticket.id} is queued" in answer.reasons[0]
    again = say(bot, "c1", "发什么快递")
    assert "handoff.queued" not in phrase_ids(again), "the notice is not repeated every message"
    bot.clock.advance(4 * MIN)
    assert "handoff.queued" in phrase_ids(say(bot, "c1", "包邮吗"))


def test_while_queued_the_tickets_own_topic_is_held_for_the_agent(bot):
    first = say(bot, "c1", "订单号是123456789012345678，显示已签收但我没收到")
    assert first.kind == "handoff" and first.handoff.reason == "lost_parcel"
    held = say(bot, "c1", "物流显示签收了，可我真的没收到快递")
    assert held.kind == "hold" and phrase_ids(held) == ["handoff.queued"]
    assert held.suggestions, "the agent still gets suggestions"
    quiet = say(bot, "c1", "快递到底去哪了，我没收到")
    assert quiet.kind == "suggest" and quiet.replies == []


def test_anger_while_queued_raises_the_priority(bot):
    ticket = hand_off(bot)
    assert ticket.priority == "normal"
    say(bot, "c1", "你们这什么垃圾服务，气死我了，骗子！我要投诉！！")
    assert bot.desk.ticket(ticket.id).priority == "urgent"


# --- store --------------------------------------------------------------------------------------


def test_migration_0004_turns_the_presence_flag_into_a_status(tmp_path):
    path = tmp_path / "old.sqlite"
    names = [name for name, _ in MIGRATIONS]
    upto = names.index("0004_presence_status")
    sqlite_module_migrations = MIGRATIONS[:upto]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_module, "MIGRATIONS", sqlite_module_migrations)
        SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO agent_presence (agent_id, online, updated_at) VALUES (?, ?, ?)",
                         [("li", 1, "2026-11-23T02:00:00.000000Z"), ("wang", 0, "2026-11-23T02:00:00.000000Z")])
    store = SqliteStore(path)
    assert store.statuses() == {"li": "online", "wang": "away"}
    store.set_status("wang", "offline", START)
    store.close()
    with sqlite3.connect(path) as conn:
        assert dict(conn.execute("SELECT agent_id, online FROM agent_presence")) == {"li": 1, "wang": 0}
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE agent_presence SET status = 'busy'")


def test_store_refuses_an_unknown_status():
    store = SqliteStore(":memory:")
    with pytest.raises(ValueError, match="busy"):
        store.set_status("li", "busy", START)
    store.close()
