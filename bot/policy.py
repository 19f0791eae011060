"""The send policy: may the bot answer on its own, or must a person see this first?

Auto-sending a wrong reply costs far more than asking an agent, so every condition must
hold: the shop's mode allows it, the intent is confidently known and is not one a human must
handle, the best reply belongs to that intent, is marked ``auto_send``, scores at least
``auto_send_min`` and crosses no platform red line (`phrasebook.redlines`). Every reason
for not auto-sending is recorded in the decision.
"""

from __future__ import annotations

from bot.config import PolicySettings
from bot.models import DecisionKind, Handoff, Suggestion
from intents.classifier import IntentResult
from intents.labels import AFTERSALE
from phrasebook.redlines import find_red_lines


def decide(
    policy: PolicySettings,
    result: IntentResult,
    suggestions: list[Suggestion],
    agents_online: bool,
    platform: str = "taobao",
) -> tuple[DecisionKind, list[str], Handoff | None]:
    """Pick the decision kind for one message; return it with the reasons and any handoff."""
    if result.confident and result.intent in policy.handoff_intents:
        group = "aftersale" if result.intent in AFTERSALE else "presale"
        reason = f"intent {result.intent} is handled by a person"
        return "handoff", [reason], Handoff(reason=result.intent, group=group)
    reasons = auto_send_blockers(policy, result, suggestions, agents_online, platform)
    return ("suggest", reasons, None) if reasons else ("auto_send", [], None)


def auto_send_blockers(
    policy: PolicySettings,
    result: IntentResult,
    suggestions: list[Suggestion],
    agents_online: bool,
    platform: str = "taobao",
) -> list[str]:
    """Why the best suggestion may not be sent on its own (empty list: it may)."""
    reasons = []
    if policy.mode == "suggest":
        reasons.append("mode is suggest")
    elif policy.mode == "away" and agents_online:
        reasons.append("an agent is online")
    if not result.confident:
        reasons.append(f"intent unsure ({result.ranking[0][0]} p={result.score:.2f})")
    elif result.score < policy.auto_intent_min:
        reasons.append(f"intent p={result.score:.2f} < auto_intent_min {policy.auto_intent_min}")
    if not suggestions:
        reasons.append("no matching reply")
        return reasons
    best = suggestions[0]
    if best.intent != result.intent:
        reasons.append(f"best reply {best.id} is for {best.intent}, not {result.intent}")
    if not best.auto_send:
        reasons.append(f"{best.id} is marked auto_send: false")
    if best.score < policy.auto_send_min:
        reasons.append(f"score {best.score:.2f} < auto_send_min {policy.auto_send_min}")
    reasons += [str(hit) for hit in find_red_lines(best.text, platform, policy.banned_words)]
    return reasons
