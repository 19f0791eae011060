"""What the agent reads when a conversation lands in their queue: nothing to ask again."""

from __future__ import annotations

from typing import Any

from bot.handoff.triggers import Trigger
from bot.state import ConversationState
from bot.store import StoredMessage

_LAST = 6


def build_summary(state: ConversationState, recent: list[StoredMessage], trigger: Trigger) -> dict[str, Any]:
    """Intents so far, slots, order status, the last messages and what the bot already said."""
    intents = list(dict.fromkeys(i for i in state.last_intents if i != "other"))
    return {
        "reason": trigger.reason,
        "detail": trigger.detail,
        "stage": state.stage,
        "intents": intents,
        "slots": dict(state.slots),
        "orders": dict(state.orders),
        "photos": state.photos_received,
        "last_messages": [
            {"from": "customer" if m.direction == "in" else "kefu", "text": m.text, "at": m.at.isoformat()}
            for m in recent[-_LAST:]
        ],
        "bot_said": [m.text for m in recent if m.direction == "out"][-3:],
    }


def headline(summary: dict[str, Any]) -> str:
    """One line for a queue view: reason · intents · order · last customer words."""
    parts = [summary["reason"]]
    if summary["intents"]:
        parts.append("/".join(summary["intents"][-3:]))
    order = summary["slots"].get("order_id") or next(iter(summary["orders"]), None)
    if order:
        parts.append(f"订单 {order}")
    said = [m["text"] for m in summary["last_messages"] if m["from"] == "customer"]
    if said:
        parts.append(f"“{said[-1][:40]}”")
    return " · ".join(parts)
