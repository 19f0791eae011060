"""Shop reports over the store: the lists and numbers a shop's customer service runs on.

`build_report` reads a period once (`dataset.load`) and lets each section module compute its
part; renderers (`render_table`, `render_csv`, `render_html`, JSON) only format the result,
and `push` sends the daily summary to the team's group robots. The report is a plain dict
of JSON values — its top-level keys are the JSON contract of ``kefu report --format json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.config import Config
from bot.reports import conversion, inquiries, intent_mix, response_times, shares, unanswered, unpaid
from bot.reports.dataset import Progress, load
from bot.reports.period import Period
from bot.store import Store
from phrasebook.matcher import Matcher

#: ``kefu report --format json`` top-level keys.
REPORT_KEYS = (
    "shop",
    "period",
    "generated_at",
    "inquiries",
    "unpaid",
    "conversion",
    "response_times",
    "shares",
    "intent_mix",
    "unanswered",
)


def build_report(
    store: Store,
    config: Config,
    period: Period,
    now: datetime,
    *,
    matcher: Matcher | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every section of the report for ``period``; ``now`` is when "still open" is judged."""
    data = load(store, period, now, progress)
    return {
        "shop": config.shop.shop_name,
        "period": {
            "label": period.label(),
            "first": period.first.isoformat(),
            "last": period.last.isoformat(),
            "timezone": period.tz.key,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "generated_at": now.astimezone(period.tz).isoformat(timespec="seconds"),
        "inquiries": inquiries.section(data),
        "unpaid": unpaid.section(data),
        "conversion": conversion.section(data),
        "response_times": response_times.section(data, config.reports.answer_within),
        "shares": shares.section(data),
        "intent_mix": intent_mix.section(data),
        "unanswered": unanswered.section(data, matcher, config.policy.auto_intent_min, config.reports.top_questions),
    }


def has_traffic(report: dict[str, Any]) -> bool:
    """Any customer message or order event in the period (the push is skipped otherwise)."""
    return bool(
        report["shares"]["messages"]
        or report["intent_mix"]["total"]
        or report["unpaid"]["created"]
        or report["response_times"]["waits"]
    )
