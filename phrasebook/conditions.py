"""What must be true before a line may be sent: the ``requires`` of a phrasebook entry.

A script that says "刚才给您的已经是会员价了" is a lie when no concession was made; "问过主管了"
is one when nobody asked. An entry states what its words assume::

    requires: [concession_made]
    requires: [manager_asked, {platform: tmall}]

and both the flows and the send policy refuse to send it unless each condition holds for the
conversation (`bot.flows.truth.facts_of`). The loader rejects unknown conditions with
``file:line``; `phrasebook.claims` (run by ``kefu lint``) flags lines whose words claim a
concession, a special price, a manager's answer or a shipping promise without the condition.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.errors import DataFileError

PLATFORMS = ("taobao", "tmall", "jd")

#: condition → what makes it true (documentation; the facts are computed in bot.flows.truth).
CONDITIONS: dict[str, str] = {
    "concession_made": "the bot sent a concession in this conversation (member price, a gift)",
    "manager_asked": "the bot told the customer it is asking the manager (bargain.manager was sent)",
    "order_placed": "an order of this conversation was placed and not closed",
    "order_paid": "an order of this conversation is paid (or shipped, delivered)",
    "order_shipped": "an order of this conversation has shipped (or was delivered)",
    "order_known": "the customer gave an order number",
    "photos_received": "the customer sent photos",
    **{f"platform:{p}": f"the shop sells on {p}" for p in PLATFORMS},
}


class ConditionError(DataFileError, ValueError):
    """A ``requires`` item is not a known condition."""


def parse_condition(item: object) -> str:
    """``"concession_made"`` or ``{"platform": "tmall"}`` → the condition's name; ConditionError otherwise."""
    if isinstance(item, dict) and len(item) == 1:
        (key, value), = item.items()
        name = f"{key}:{value}"
    elif isinstance(item, str):
        name = item.strip().replace(" ", "")
    else:
        raise ConditionError(f"a condition is a name or {{platform: …}}, not {item!r}")
    if name not in CONDITIONS:
        known = ", ".join(c for c in CONDITIONS if not c.startswith("platform:"))
        raise ConditionError(f"unknown condition {name!r} (known: {known}, {{platform: {'|'.join(PLATFORMS)}}})")
    return name


def unmet(requires: Iterable[str], facts: Iterable[str]) -> list[str]:
    """The required conditions that do not hold, in order."""
    have = set(facts)
    return [c for c in requires if c not in have]
