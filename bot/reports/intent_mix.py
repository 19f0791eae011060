"""Intent mix of the customer messages and its trend against the previous period.

The previous period has the same number of days and ends where this one starts; ``delta``
is the change of the intent's share in percentage points (a busier day does not make every
intent "rise").
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bot.reports.dataset import Dataset
from bot.reports.labels import intent_name


def section(data: Dataset) -> dict[str, Any]:
    counts = Counter(turn.intent for turn in data.turns if turn.kind)
    previous = {k: v for k, v in data.previous_intents.items() if k}
    total, previous_total = sum(counts.values()), sum(previous.values())
    rows = []
    for intent in sorted(set(counts) | set(previous), key=lambda i: (-counts.get(i, 0), -previous.get(i, 0), i)):
        share = counts.get(intent, 0) / total if total else 0.0
        before = previous.get(intent, 0) / previous_total if previous_total else 0.0
        rows.append(
            {
                "intent": intent,
                "name": intent_name(intent),
                "count": counts.get(intent, 0),
                "share": share,
                "previous": previous.get(intent, 0),
                "previous_share": before,
                "delta_pp": (share - before) * 100,
            }
        )
    return {"total": total, "previous_total": previous_total, "rows": rows}
