"""Lines that claim something happened must say what has to be true (``requires``).

"刚才给您的已经是会员价了", "特意为您申请的VIP价", "主管说…", "今天一定发出": each is true only in
some conversations. `kefu lint` flags a reply whose words make such a claim when its entry
does not require a condition that makes it true (`phrasebook.conditions`); the flows and the
send policy then check that condition before the line goes out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from phrasebook.render import render
from phrasebook.schema import Phrasebook


@dataclass(frozen=True)
class ClaimRule:
    name: str
    pattern: re.Pattern[str]
    #: Any one of these in ``requires`` makes the claim checkable.
    accepts: frozenset[str]


RULES = (
    ClaimRule(
        "concession",
        re.compile(
            r"刚才给您的|已经(?:是|给您)[^，。！～]{0,6}(?:优惠|会员价|折扣|便宜)|(?:已经|刚才)[^，。！～]{0,4}(?:帮您|为您|给您)"
            r"(?:争取|申请|优惠|便宜)|特意为您|为您申请的|给您申请到|帮您争取到|额外送您|给您便宜了|已经给您优惠"
        ),
        frozenset({"concession_made", "manager_asked"}),
    ),
    ClaimRule("special_price", re.compile(r"vip价|专属价|内部价|员工价|特价|专享价|底价"),
              frozenset({"concession_made"})),
    ClaimRule("manager_answer", re.compile(r"主管(?:说|同意|答应|回复)|问过主管|主管那边(?:还在|已经)"),
              frozenset({"manager_asked"})),
    ClaimRule(
        "shipping_promise",
        re.compile(
            r"(?:保证|一定|肯定|绝对)(?:会|能)?(?:今天|明天|当天|按时|准时)?(?:给您)?(?:发货|发出|送达|到货|送到)"
            r"|今天(?:就)?(?:给您)?(?:发出|发货)了|已经(?:为您|给您)?(?:安排)?发货了"
        ),
        frozenset({"order_paid", "order_shipped"}),
    ),
)


def find_claims(text: str) -> list[tuple[ClaimRule, str]]:
    clean = text.lower()
    return [(rule, m.group(0)) for rule in RULES for m in [rule.pattern.search(clean)] if m]


def lint_claims(book: Phrasebook, values: Mapping[str, str], runtime=()) -> list[str]:
    """One ``file:line: id: reply N: claims … without requires: …`` per unchecked claim."""
    sample = {**{name: "5" for name in runtime}, **values}
    problems = []
    for entry in book:
        for number, template in enumerate(entry.replies, 1):
            for rule, found in find_claims(render(template, sample)):
                if not rule.accepts & set(entry.requires):
                    need = " or ".join(sorted(rule.accepts))
                    problems.append(
                        f"{entry.source}: {entry.id}: reply {number}: claims a {rule.name.replace('_', ' ')} "
                        f"({found!r}) without requires: [{need}]"
                    )
    return problems
