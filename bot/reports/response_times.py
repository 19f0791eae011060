"""First-response times (首次响应), bot and human, by hour of day; the share answered in time.

A *wait* starts with a customer message while nothing is pending in that conversation and
ends with the next outbound message, whoever wrote it; further customer messages meanwhile
join the same wait. Its first response time is end minus start, credited to the bot or to
the person who answered. A wait nobody answered (within `REPLY_GRACE` after the period) is
unanswered: it counts against the in-time share and has no time. Hours are the wait's start
in shop time.

Percentiles are nearest-rank (the value at rank ⌈p·n⌉), so every figure is one of the
measured times, never an interpolation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from bot.reports.dataset import Dataset


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (0 < p <= 100); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def waits(data: Dataset) -> list[tuple[datetime, float | None, str | None]]:
    """(start, seconds to the first response or None, "bot" | "human" | None) per wait."""
    events: dict[str, list[tuple[datetime, int, str]]] = defaultdict(list)
    for turn in data.turns:
        events[turn.message.conversation_id].append((turn.message.at, turn.message.id, "in"))
    for message, author in data.replies:
        events[message.conversation_id].append((message.at, message.id, author))
    found: list[tuple[datetime, float | None, str | None]] = []
    for timeline in events.values():
        # equal times (a simulated clock, or the bot answering within the clock's resolution):
        # the row id is the order the store wrote them in
        timeline.sort(key=lambda e: (e[0], e[1]))
        started: datetime | None = None
        for at, _, who in timeline:
            if who == "in":
                if started is None:
                    started = at
            elif started is not None:
                found.append((started, (at - started).total_seconds(), who))
                started = None
        if started is not None:
            found.append((started, None, None))
    return sorted(found, key=lambda w: w[0])


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "max": max(values) if values else None,
    }


def section(data: Dataset, answer_within: timedelta) -> dict[str, Any]:
    limit = answer_within.total_seconds()
    all_waits = waits(data)
    times: dict[str, list[float]] = {"bot": [], "human": []}
    hours: dict[int, dict[str, Any]] = {h: {"waits": 0, "within": 0, "bot": [], "human": []} for h in range(24)}
    within = 0
    for start, seconds, who in all_waits:
        hour = hours[data.period.local(start).hour]
        hour["waits"] += 1
        if seconds is None:
            continue
        times[who].append(seconds)
        hour[who].append(seconds)
        if seconds <= limit:
            within += 1
            hour["within"] += 1
    by_hour = [
        {
            "hour": h,
            "waits": v["waits"],
            "within": v["within"],
            "within_share": v["within"] / v["waits"] if v["waits"] else 0.0,
            "bot_p50": percentile(v["bot"], 50),
            "bot_p90": percentile(v["bot"], 90),
            "human_p50": percentile(v["human"], 50),
            "human_p90": percentile(v["human"], 90),
        }
        for h, v in hours.items()
    ]
    total = len(all_waits)
    return {
        "waits": total,
        "answered": len(times["bot"]) + len(times["human"]),
        "unanswered": sum(1 for w in all_waits if w[1] is None),
        "within_seconds": limit,
        "within": within,
        "within_share": within / total if total else 0.0,
        "bot": _stats(times["bot"]),
        "human": _stats(times["human"]),
        "by_hour": by_hour,
    }
