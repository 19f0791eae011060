"""The inquiry log (询盘明细): customers who asked in the period and did not order.

One row per customer, for tomorrow's follow-up: who (the platform's customer id), when they
first asked, what they asked first and last (masked), the intents of their messages and
whether the bot, a person, both or nobody answered them. The seeds' shops keep exactly this
list by hand (旺旺名 + 询盘时间 + 咨询到的问题) and work through it first during campaigns.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bot.masking import mask
from bot.reports.conversion import inquiry_customers, orders_created
from bot.reports.dataset import Dataset, platform_id
from bot.reports.labels import intent_name

_OPENERS = frozenset({"greeting"})


def answered_by(data: Dataset) -> dict[str, str]:
    """Conversation → "bot", "human", "bot+human" for replies written in the period."""
    who: dict[str, set[str]] = defaultdict(set)
    for message, author in data.replies:
        if data.in_period(message.at):
            who[message.conversation_id].add(author)
    return {cid: "+".join(sorted(authors)) for cid, authors in who.items()}


def section(data: Dataset) -> dict[str, Any]:
    created = orders_created(data)
    answered = answered_by(data)
    rows = []
    for customer, turns in inquiry_customers(data).items():
        if created.get(customer):
            continue
        first = next((t for t in turns if t.intent not in _OPENERS), turns[0])
        intents: list[str] = []
        for turn in turns:
            if turn.intent and turn.intent != "other" and turn.intent not in intents:
                intents.append(turn.intent)
        authors = {answered.get(cid) for cid in {t.message.conversation_id for t in turns}} - {None}
        merged = sorted({a for group in authors for a in group.split("+")})
        rows.append(
            {
                "customer": platform_id(customer, turns[0].message.platform),
                "platform": turns[0].message.platform or "",
                "first_at": data.period.local(turns[0].message.at).isoformat(timespec="seconds"),
                "first_question": mask(first.message.text),
                "intents": intents,
                "intent_names": [intent_name(i) for i in intents],
                "last_message": mask(turns[-1].message.text),
                "last_at": data.period.local(turns[-1].message.at).isoformat(timespec="seconds"),
                "messages": len(turns),
                "answered_by": "+".join(merged) if merged else "none",
            }
        )
    rows.sort(key=lambda r: (r["first_at"], r["customer"]))
    return {"count": len(rows), "rows": rows}
