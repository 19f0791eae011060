"""How the work was shared: auto-replies, suggestions, handoffs (by reason and queue), SLA.

Shares are over the customer messages of the period that were answered (one decision each):
auto_send = the bot answered alone, suggest = an agent was offered replies, handoff = a person
took over, hold = only the away notice went out, none = nothing needed saying. Handoffs are
the tickets opened in the period; an SLA breach is a ticket whose first human answer came
after its due time, or that is still unanswered past it now. Open tickets are every ticket
queued or assigned right now that was opened before the period ended.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bot.handoff.ticket import OPEN
from bot.reports.dataset import Dataset
from bot.reports.labels import GROUP_NAMES, KIND_NAMES, reason_name

KINDS = ("auto_send", "suggest", "handoff", "hold", "none")


def _breached(ticket: dict[str, Any], now) -> bool:
    answered = ticket.get("answered_at")
    if answered is not None:
        return answered > ticket["sla_due"]
    return ticket["status"] in OPEN and now > ticket["sla_due"]


def section(data: Dataset) -> dict[str, Any]:
    kinds = Counter(turn.kind for turn in data.turns if turn.kind)
    answered = sum(kinds.values())
    by_reason = Counter(t["reason"] for t in data.tickets)
    by_group = Counter(t["group"] for t in data.tickets)
    return {
        "messages": answered,
        "by_kind": [
            {
                "kind": k,
                "name": KIND_NAMES[k],
                "count": kinds.get(k, 0),
                "share": kinds.get(k, 0) / answered if answered else 0.0,
            }
            for k in KINDS
        ],
        "auto_reply_share": kinds.get("auto_send", 0) / answered if answered else 0.0,
        "suggest_share": kinds.get("suggest", 0) / answered if answered else 0.0,
        "handoffs": len(data.tickets),
        "handoffs_by_reason": [
            {"reason": r, "name": reason_name(r), "count": n}
            for r, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "handoffs_by_group": [
            {"group": g, "name": GROUP_NAMES.get(g, g), "count": n}
            for g, n in sorted(by_group.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "sla_breaches": sum(1 for t in data.tickets if _breached(t, data.now)),
        "open_tickets": len(data.open_tickets),
    }
