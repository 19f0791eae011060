"""Conversion (询单转化): customers who asked → ordered → paid, overall and by first intent.

Definitions (the tests pin each one):

- **asked**: a customer with a message in the period that asks something before a sale
  (a presale intent), or whose messages hold no after-sale intent at all (在吗, questions kefu
  did not understand); a customer who only chased a parcel or a refund is not an inquiry
  (售后咨询不计入询单), even when one of their messages was just an order number.
- **ordered**: an asked customer with an order created in the period (before or after asking:
  a customer who orders and then asks to change the address did not get lost).
- **paid**: an ordered customer with one of those orders paid before the period ended, so a
  report of a past day never changes when it is run again.
- **first intent**: the first intent of the customer's messages that is not a greeting or
  ``other`` (a chat opened with 在吗 is about what follows), else the very first one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from bot.reports.dataset import PAID, Dataset, Turn, turns_by_customer
from bot.reports.labels import intent_name
from intents.labels import AFTERSALE, PRESALE

_OPENERS = frozenset({"greeting", "other", ""})


def inquiry_customers(data: Dataset) -> dict[str, list[Turn]]:
    """Customers who asked in the period → their messages (first-message order)."""
    return {
        customer: turns
        for customer, turns in turns_by_customer(data).items()
        if any(turn.intent in PRESALE for turn in turns) or not any(turn.intent in AFTERSALE for turn in turns)
    }


def orders_created(data: Dataset) -> dict[str, list[str]]:
    """Customer → orders created in the period (event order)."""
    created: dict[str, list[str]] = defaultdict(list)
    for event in data.order_events:
        if event["status"] == "created" and event["order_id"] not in created[event["customer_id"]]:
            created[event["customer_id"]].append(event["order_id"])
    return dict(created)


def paid_at(data: Dataset) -> dict[str, datetime]:
    """Order → when it was first paid (or shipped, delivered) within the period."""
    paid: dict[str, datetime] = {}
    for event in data.order_events:
        if event["status"] in PAID and event["order_id"] not in paid:
            paid[event["order_id"]] = event["at"]
    return paid


def first_intent(turns: list[Turn]) -> str:
    for turn in turns:
        if turn.intent not in _OPENERS:
            return turn.intent
    return turns[0].intent if turns else ""


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def section(data: Dataset) -> dict[str, Any]:
    asked = inquiry_customers(data)
    created = orders_created(data)
    paid = paid_at(data)
    rows: dict[str, dict[str, int]] = defaultdict(lambda: {"asked": 0, "ordered": 0, "paid": 0})
    totals = {"asked": 0, "ordered": 0, "paid": 0}
    for customer, turns in asked.items():
        row = rows[first_intent(turns)]
        orders = created.get(customer, [])
        hits = {"asked": True, "ordered": bool(orders), "paid": any(o in paid for o in orders)}
        for key, hit in hits.items():
            row[key] += hit
            totals[key] += hit
    by_intent = [
        {
            "intent": intent,
            "name": intent_name(intent),
            **counts,
            "order_rate": _rate(counts["ordered"], counts["asked"]),
            "pay_rate": _rate(counts["paid"], counts["asked"]),
        }
        for intent, counts in sorted(rows.items(), key=lambda kv: (-kv[1]["asked"], kv[0]))
    ]
    return {
        **totals,
        "order_rate": _rate(totals["ordered"], totals["asked"]),
        "paid_of_ordered": _rate(totals["paid"], totals["ordered"]),
        "conversion": _rate(totals["paid"], totals["asked"]),
        "by_first_intent": by_intent,
    }
