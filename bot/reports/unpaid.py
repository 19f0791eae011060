"""Unpaid orders (未付款明细) and how the payment chase (催付) did.

An order created in the period belongs in the list when it was not paid by the period's end,
or when it was chased (then the row says whether the customer paid after the chase). Chased
means the chase line actually went out before the period ended: a chase that found the order
paid, or that the policy held back as a suggestion, chased nobody.

The "likely reason" is read from the customer's own messages of the period (a customer who
haggled and then left without paying, a question about how to pay …), so the shift that
follows up knows what to say; nothing is guessed when the customer said nothing telling.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.reports.conversion import paid_at
from bot.reports.dataset import Dataset, platform_id, turns_by_customer

#: First matching intent (customer's messages, last first) → likely reason.
REASONS = (
    ({"price_bargain", "competitor_cheaper", "bulk_discount", "returning_discount", "promotion"}, "议价/优惠未谈拢"),
    ({"payment_howto"}, "付款遇到问题"),
    ({"shipping_time", "courier_choice", "free_shipping"}, "顾虑运费或时效"),
    ({"spec_size", "stock", "product_quality", "authenticity"}, "对商品还有疑问"),
    ({"order_change", "cancel_order"}, "想改单或取消"),
)


def _reason(intents: list[str], status: str) -> str:
    if status == "closed":
        return "订单已关闭"
    for intent in reversed(intents):
        for group, reason in REASONS:
            if intent in group:
                return reason
    return "未说明"


def _chased_at(data: Dataset, order_id: str) -> datetime | None:
    job = data.chase_jobs.get(order_id)
    if job is None or job.status != "done" or job.fired_at is None or job.fired_at >= data.period.end:
        return None
    for decision in data.decisions:
        if (
            decision["trigger"] == "timer"
            and decision["conversation_id"] == job.conversation_id
            and decision["at"] == job.fired_at
            and any(r["id"].startswith("pay.chase") for r in decision["replies"])
        ):
            return job.fired_at
    return None


def _shown(customer: str, by_customer: dict) -> str:
    turns = by_customer.get(customer)
    return platform_id(customer, turns[0].message.platform) if turns else customer


def section(data: Dataset) -> dict[str, Any]:
    paid = paid_at(data)
    by_customer = turns_by_customer(data)
    intents = {c: [t.intent for t in turns] for c, turns in by_customer.items()}
    created: dict[str, dict[str, Any]] = {}
    last_status: dict[str, str] = {}
    for event in data.order_events:
        last_status[event["order_id"]] = event["status"]
        if event["status"] == "created" and event["order_id"] not in created:
            created[event["order_id"]] = event
    rows = []
    chased = paid_after = 0
    for order_id, event in created.items():
        chase = _chased_at(data, order_id)
        paid_time = paid.get(order_id)
        after = chase is not None and paid_time is not None and paid_time > chase
        chased += chase is not None
        paid_after += after
        if paid_time is not None and chase is None:
            continue
        status = last_status[order_id]
        rows.append(
            {
                "order_id": order_id,
                "customer": _shown(event["customer_id"], by_customer),
                "created_at": data.period.local(event["at"]).isoformat(timespec="seconds"),
                "amount": event["amount"],
                "status": status,
                "paid": paid_time is not None,
                "paid_at": data.period.local(paid_time).isoformat(timespec="seconds") if paid_time else None,
                "chased": chase is not None,
                "chased_at": data.period.local(chase).isoformat(timespec="seconds") if chase else None,
                "paid_after_chase": after,
                "reason": "" if paid_time else _reason(intents.get(event["customer_id"], []), status),
            }
        )
    rows.sort(key=lambda r: (r["created_at"], r["order_id"]))
    unpaid = sum(1 for r in rows if not r["paid"])
    return {
        "created": len(created),
        "paid": sum(1 for o in created if o in paid),
        "unpaid": unpaid,
        "chased": chased,
        "paid_after_chase": paid_after,
        "chase_recovery": paid_after / chased if chased else 0.0,
        "rows": rows,
    }
