"""What is true in a conversation, for the ``requires`` of the lines the bot may send.

Facts come only from what happened: the lines the bot actually sent (a concession counts once
its line went out, not when a flow chose it), order events, what the customer gave. The flows
pick lines whose conditions hold, and the send policy checks them again (`bot.policy`), so a
script never claims a concession, a manager's answer or a paid order that is not there.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.models import Suggestion
from bot.state import ConversationState
from phrasebook.conditions import unmet

#: Lines that are a concession when sent, and the concession they make.
CONCESSION_LINES = {"bargain.returning": "member_price", "bargain.gift_followup": "gift"}
_PAID = frozenset({"paid", "shipped", "delivered"})
_SHIPPED = frozenset({"shipped", "delivered"})


def platform_facts(platform: str) -> frozenset[str]:
    return frozenset({f"platform:{platform}"})


def facts_of(state: ConversationState, platform: str) -> frozenset[str]:
    """Every condition that holds for this conversation now."""
    facts = set(platform_facts(platform))
    if state.concessions:
        facts.add("concession_made")
    if state.phrase_uses.get("bargain.manager"):
        facts.add("manager_asked")
    statuses = set(state.orders.values())
    if state.deal_made:
        facts.add("order_placed")
    if statuses & _PAID:
        facts.add("order_paid")
    if statuses & _SHIPPED:
        facts.add("order_shipped")
    if state.slots.get("order_id"):
        facts.add("order_known")
    if state.photos_received:
        facts.add("photos_received")
    return frozenset(facts)


def record_sent(state: ConversationState, lines: Iterable[Suggestion]) -> None:
    """Note the concessions the sent lines made (the ladder's memory of what it really gave)."""
    for line in lines:
        made = CONCESSION_LINES.get(line.id)
        if made is not None:
            state.concessions = [*state.concessions, made]
            state.concession_given = True


def holds(requires: Iterable[str], state: ConversationState, platform: str) -> bool:
    return not unmet(requires, facts_of(state, platform))
