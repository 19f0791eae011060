"""A day at the shop, replayed into a real SQLite store, for the report tests.

Shop time is Asia/Shanghai; the reported day is 2026-11-23. Messages sit on both sides of
both midnights (23:59:30 the day before, exactly 00:00:00, 23:59:59, and 00:00:00 the day
after) so the period edges are tested on real data, not on a hand-written table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.models import Inbound, OrderEvent
from bot.replay import Replay

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = "2026-11-23"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


class Script:
    """Drives a `Replay` by wall-clock times: jobs due on the way fire at their own time."""

    def __init__(self, engine, store):
        self.replay = Replay(engine, t("2026-11-22T23:00:00"), False, store)
        self.count = 0

    def at(self, when: str) -> Script:
        target = t(when)
        now = self.replay.clock.now()
        if target > now:
            self.replay.advance(target - now)
        return self

    def say(self, customer: str, text: str):
        self.count += 1
        inbound = Inbound(platform="taobao", conversation_id=customer, customer_id=customer,
                          message_id=f"m{self.count}", text=text)
        return self.replay.assistant.handle_message(inbound)

    def order(self, order_id: str, customer: str, status: str, consulted: bool = False, amount: float | None = None):
        event = OrderEvent(order_id=order_id, customer_id=customer, status=status, consulted_before_order=consulted,
                           amount=amount, at=self.replay.clock.now())
        return self.replay.assistant.handle_order(event)

    def agent(self, customer: str, text: str) -> None:
        self.replay.assistant.agent_replied(customer, text)


def play(engine, store) -> list:
    """The day; returns every decision of a customer message (tests read their kinds)."""
    s = Script(engine, store)
    d = []
    # the day before, and an order placed before midnight: neither belongs to the 23rd
    s.at("2026-11-22T23:58:00").order("o0", "late", "created", amount=10)
    s.at("2026-11-22T23:59:30")
    d.append(s.say("late", "包邮吗"))
    # exactly midnight: the 23rd
    s.at("2026-11-23T00:00:00")
    d.append(s.say("late", "有货吗"))
    # asks, orders, pays
    s.at("2026-11-23T10:00:00")
    d.append(s.say("buyer", "能便宜点吗"))
    s.at("2026-11-23T10:05:00").order("o1", "buyer", "created", True, 199)
    s.at("2026-11-23T10:10:00").order("o1", "buyer", "paid")
    # asks, orders, is chased after 30 min, pays after the chase
    s.at("2026-11-23T11:00:00")
    d.append(s.say("chased", "怎么付款"))
    s.at("2026-11-23T11:01:00").order("o2", "chased", "created", True, 59)
    s.at("2026-11-23T12:00:00").order("o2", "chased", "paid")
    # asks, orders, is chased, never pays
    s.at("2026-11-23T13:00:00")
    d.append(s.say("unpaid", "发什么快递"))
    s.at("2026-11-23T13:02:00").order("o3", "unpaid", "created", True, 88.5)
    # a person takes over (the bot tells the customer at once, an agent greets 30 s later);
    # the customer writes again, only the agent may answer now, and does 90 s later
    s.at("2026-11-23T14:00:00")
    d.append(s.say("human", "我要转人工"))
    s.at("2026-11-23T14:00:30").agent("human", "您好，我是小美")
    s.at("2026-11-23T14:01:00")
    d.append(s.say("human", "好的我等你"))
    s.at("2026-11-23T14:02:30").agent("human", "您好，我是小美，请问有什么可以帮您")
    # after-sale only: not an inquiry
    s.at("2026-11-23T15:00:00")
    d.append(s.say("broken", "东西收到是坏的"))
    # after-sale, handed to a person nobody is there to be: the ticket waits past its SLA
    s.at("2026-11-23T15:30:00")
    d.append(s.say("fake", "你们卖假货"))
    s.at("2026-11-23T15:31:00")
    d.append(s.say("fake", "订单号1234567890123456789"))
    # questions nobody has a phrase for
    for minute, (customer, text) in enumerate([
        ("kz1", "可以刻字吗"), ("kz2", "能刻字吗"), ("kz3", "刻字可以吗"), ("kz4", "可以帮我刻个字吗"),
        ("st1", "你们有实体店吗"), ("st2", "有实体店吗"), ("st3", "实体店在哪里"),
        ("phone", "我的手机号13812345678"),
    ]):
        s.at(f"2026-11-23T16:{minute * 5:02d}:00")
        d.append(s.say(customer, text))
    # the last second of the day, and the first of the next
    s.at("2026-11-23T23:59:59")
    d.append(s.say("night", "能开发票吗"))
    s.at("2026-11-24T00:00:00")
    d.append(s.say("next", "谢谢"))
    s.at("2026-11-24T09:00:00")
    return d


NOW = t("2026-11-24T09:00:00")
ONE_SECOND = timedelta(seconds=1)
