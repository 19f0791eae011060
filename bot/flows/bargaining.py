"""The bargaining ladder (DESIGN.md "Scripts the seeds describe").

First ask → the unified price; bulk → the tiered price (a 大宗 order → a person in sales);
returning customer → the member price; "other shop is cheaper" → we are the authorised store;
the third ask → "let me ask my manager" and, 2–3 minutes later, a gift instead of a discount
(once per conversation). Later asks get only what is true: "already the best we can do" after a
concession the bot really sent (`ConversationState.concessions`), "the manager is still
checking" while the follow-up is pending, and a firm unified price otherwise.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.config import FlowSettings
from bot.flows import JobSpec, Scripted
from bot.models import Handoff
from bot.state import ConversationState

PRICE_INTENTS = frozenset({"price_bargain", "bulk_discount", "returning_discount", "competitor_cheaper"})
FOLLOWUP_KIND = "bargain_followup"
_BIG_ORDER = re.compile(r"大宗|批发|公司采购|企业采购|单位采购|集采|团购|批量采购|工厂|经销|代理")


def followup_key(conversation_id: str) -> str:
    return f"{FOLLOWUP_KIND}:{conversation_id}"


def on_price_ask(
    intent: str,
    text: str,
    quantity: int | None,
    state: ConversationState,
    flows: FlowSettings,
    now: datetime,
) -> Scripted | None:
    """The ladder's answer to a price-related message (``state`` is only read).

    The ask is counted at once (``noted``: the rung); the manager follow-up is promised only
    when "let me ask my manager" really goes out (``on_sent`` and the job).
    """
    if intent not in PRICE_INTENTS:
        return None
    if intent == "bulk_discount":
        if (quantity is not None and quantity >= flows.bulk_handoff_qty) or _BIG_ORDER.search(text):
            handoff = Handoff(reason="bulk_order", group="sales", priority="high")
            return Scripted("bargain.bulk_handoff", "bulk order: a sales colleague takes over", handoff)
        return Scripted("bargain.bulk", f"bulk ask (quantity {quantity})")
    rung = state.bargain_round + 1
    noted = {"bargain_round": rung}
    if rung >= 3 and state.bargain_followup == "none":
        job = JobSpec(followup_key(state.conversation_id), FOLLOWUP_KIND, now + flows.bargain_followup_after)
        return Scripted("bargain.manager", f"ask #{rung}: ask the manager, follow up later", jobs=(job,),
                        noted=noted, on_sent={"bargain_followup": "pending"})
    if intent == "competitor_cheaper" and rung < 3:
        return Scripted("bargain.competitor", f"ask #{rung}: another shop is cheaper", noted=noted)
    if intent == "returning_discount" and not state.concessions:
        return Scripted("bargain.returning", f"ask #{rung}: returning customer → member price", noted=noted)
    # only what really happened may be claimed: a concession the bot sent, a manager it asked
    if state.concessions:
        return Scripted("bargain.after_concession", f"ask #{rung}: a concession was made, no further", noted=noted)
    if state.bargain_followup == "pending":
        return Scripted("bargain.manager_pending", f"ask #{rung}: the manager has not answered yet", noted=noted)
    if rung >= 3:
        return Scripted("bargain.firm", f"ask #{rung}: no concession, the price stays", noted=noted)
    return Scripted("bargain.first", f"ask #{rung}: unified price", noted=noted)


def on_followup_due(state: ConversationState) -> Scripted:
    """The manager's answer: no lower price, but a gift (the follow-up is done either way).

    The gift counts as a concession once it is sent (`bot.flows.truth`).
    """
    return Scripted("bargain.gift_followup", "manager follow-up: a gift instead of a discount",
                    noted={"bargain_followup": "done"})
