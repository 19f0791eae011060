"""The server's pipeline for messages out of a live conversation: `kefu suggest`, `kefu eval`, `kefu test`.

Each message runs through a real `Assistant` on an in-memory store, as the first message of a
fresh conversation (after the earlier messages of its ``context``, when the file gives them):
the same understanding, flows, intake, handoff, away greeting and one decision as `kefu serve`,
so what eval measures is what serve does. The messages are read in one classifier batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.config import parse_hours
from bot.models import Decision, Inbound
from bot.scheduler import ManualClock

#: The connector name offline messages carry (stored with them, like ``replay`` for replays).
CONNECTOR = "offline"


def fresh_decisions(
    engine, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None, *, at: datetime | None = None,
) -> list[Decision]:
    """The decision on each text as the server makes it, each in a fresh conversation.

    ``contexts[i]`` are earlier customer messages of text i's conversation, answered first and
    not returned. ``at`` is the shop's clock (default: `shop_time`, so a report does not depend
    on the hour it is run); nobody is online — the bot's own decisions are what is measured.
    """
    from bot.assistant import Assistant
    from bot.store import open_store

    store = open_store(":memory:")
    try:
        assistant = Assistant(engine, store, ManualClock(at or shop_time(engine.config)))
        readings = engine.read_many(list(texts))
        decisions = []
        for i, (text, reading) in enumerate(zip(texts, readings)):
            conversation = f"m{i}"
            for j, earlier in enumerate(contexts[i] if contexts else ()):
                assistant.handle_message(_inbound(conversation, f"{conversation}.{j}", earlier))
            decision = assistant.handle_message(_inbound(conversation, conversation, text), reading)
            assert decision is not None  # a fresh message id is never a duplicate
            decisions.append(decision)
        return decisions
    finally:
        store.close()


def shop_time(config) -> datetime:
    """Today at the start of the shop's working hours (shop time): the clock offline decisions use."""
    start, _end = parse_hours(config.flows.working_hours)
    return datetime.now(config.flows.tz).replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)


def fresh_decision(engine, text: str, *, at: datetime | None = None) -> Decision:
    """`fresh_decisions` for one message (`kefu suggest`)."""
    return fresh_decisions(engine, [text], at=at)[0]


def _inbound(conversation: str, message_id: str, text: str) -> Inbound:
    return Inbound(connector=CONNECTOR, conversation_id=conversation, customer_id=conversation,
                   message_id=message_id, text=text)
