"""The send policy: may the bot answer on its own, or must a person see this first?

Auto-sending a wrong reply costs far more than asking an agent, so every condition must
hold: the shop's mode allows it, the intent is confidently known and is not one a human must
handle, the best reply belongs to that intent, is marked ``auto_send``, scores at least
``auto_send_min`` and crosses no platform red line (`phrasebook.redlines`). Every reason
for not auto-sending is recorded in the decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.config import PolicySettings
from bot.handoff.triggers import priority_for, queue_for
from bot.models import DecisionKind, Handoff, Suggestion
from intents.classifier import IntentResult
from intents.clauses import STATED
from phrasebook.conditions import unmet
from phrasebook.redlines import find_red_lines

if TYPE_CHECKING:
    from bot.engine import Answer
    from bot.reading import Reading


@dataclass(frozen=True)
class Gate:
    """Who is there and what was sent lately: the conditions any line must pass to go out alone."""

    #: An agent is online within working hours: in away mode the bot only suggests.
    available: bool = False
    #: The shop's platform (taobao | tmall | jd …): its red lines apply.
    platform: str = "taobao"
    owner: str = "bot"
    recent_auto_sends: int = 0
    max_auto_per_minute: int = 6
    #: Conditions that hold in the conversation (`bot.flows.truth`); None: only the platform is known.
    facts: frozenset[str] | None = None

    def known_facts(self) -> frozenset[str]:
        return self.facts if self.facts is not None else frozenset({f"platform:{self.platform}"})


def below(value: float, threshold: float) -> str:
    """``value`` for a "value < threshold" reason, never shown equal to the threshold.

    0.4952 rounds to "0.50", which reads as "0.50 < 0.5"; the reason shows as many decimals as
    it takes (up to 6) for the printed figure to be below the threshold.
    """
    for digits in range(2, 7):
        shown = f"{value:.{digits}f}"
        if float(shown) < threshold:
            return shown
    return f"{math.floor(value * 1e6) / 1e6:.6f}"  # truncated: still below


def decide(
    policy: PolicySettings,
    result: IntentResult,
    suggestions: list[Suggestion],
    gate: Gate = Gate(),  # noqa: B008 - frozen, so sharing the default is safe
) -> tuple[DecisionKind, list[str], Handoff | None]:
    """Pick the decision kind for one message; return it with the reasons and any handoff."""
    if result.confident and result.intent in policy.handoff_intents and gate.owner == "bot":
        reason = f"intent {result.intent} is handled by a person"
        group, priority = queue_for("presale", result.intent, policy), priority_for(result.intent, result.intent)
        return "handoff", [reason], Handoff(reason=result.intent, group=group, priority=priority)
    reasons = auto_send_blockers(policy, result, suggestions, gate)
    return ("suggest", reasons, None) if reasons else ("auto_send", [], None)


@dataclass(frozen=True)
class Verdict:
    """The policy's decision on what goes out: the kind, the lines sent now, why, any handoff."""

    kind: DecisionKind
    replies: list[Suggestion] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    handoff: Handoff | None = None


def decide_answer(policy: PolicySettings, answer: Answer, gate: Gate) -> Verdict:
    """The engine's answer to a message, decided on its own merits.

    A further question is answered alone only when its own reply passes every auto-send
    check; otherwise the whole message goes to an agent (half an answer is no answer).
    """
    kind, reasons, handoff = decide(policy, answer.result, answer.suggestions, gate)
    if kind == "auto_send" and (why := unasked(answer.reading)):
        kind, reasons = "suggest", [why]
    reasons = [*answer.reading.notes, *reasons]
    extra: list[Suggestion] = []
    blocked: list[str] = []
    for clause, result in answer.questions:
        why = auto_send_blockers(policy, result, clause.suggestions, gate)
        if why:
            blocked.append(f"further question {clause.text!r} ({result.intent}): {'; '.join(why)}")
        elif clause.suggestions:
            extra.append(clause.suggestions[0])
    if kind == "auto_send" and blocked:
        kind, reasons = "suggest", blocked
    replies = [*answer.suggestions[:1], *extra] if kind == "auto_send" else []
    return Verdict(kind, replies, reasons, handoff)


def unasked(reading: Reading) -> str:
    """Why a reply to ``reading`` may not go out alone because the message asks nothing ("" if it asks).

    A reply answers a question or carries out a request. When the customer states only ("我已经
    付款了，没填写啊", "取消了 你看下", "你好 京东快递(移动端)"), what they want is in the conversation,
    not in the message, and the classifier's confident topic is a guess about it: on jddc dev 7 of
    the 68 auto-sends asked nothing and 5 of those 7 answered the wrong question. Intents a customer expresses
    by stating (`intents.clauses.STATED`: thanks, a parcel that does not move, a missing part …)
    still go out alone.
    """
    intent = reading.result.intent
    if intent in STATED or reading.asks:
        return ""
    return f"the message asks nothing (a statement): what it wants from {intent} is left to a person"


def below_auto_intent(policy: PolicySettings, score: float) -> str:
    """Why an intent read at ``score`` is too unsure for a line to go out alone ("" when it is not)."""
    if score >= policy.auto_intent_min:
        return ""
    return f"intent p={below(score, policy.auto_intent_min)} < auto_intent_min {policy.auto_intent_min}"


def intent_blocker(policy: PolicySettings, result: IntentResult) -> str:
    """Why a line answering ``result`` may not go out alone on that reading ("" when it may):
    an unsure reading (a lone "没有了" reads as an unsure goodbye, whatever its p) or one below
    ``auto_intent_min``."""
    if not result.confident:
        return f"intent unsure ({result.ranking[0][0]} p={result.score:.2f})"
    return below_auto_intent(policy, result.score)


def auto_send_blockers(
    policy: PolicySettings,
    result: IntentResult,
    suggestions: list[Suggestion],
    gate: Gate = Gate(),  # noqa: B008
) -> list[str]:
    """Why the best matched suggestion may not be sent on its own (empty list: it may)."""
    reasons = []
    if unsure := intent_blocker(policy, result):
        reasons.append(unsure)
    if not suggestions:
        return [*mode_blockers(policy, gate), *reasons, "no matching reply"]
    best = suggestions[0]
    if best.intent != result.intent:
        reasons.append(f"best reply {best.id} is for {best.intent}, not {result.intent}")
    if best.score < policy.auto_send_min:
        reasons.append(f"score {below(best.score, policy.auto_send_min)} < auto_send_min {policy.auto_send_min}")
    return [*mode_blockers(policy, gate), *reasons, *line_blockers(policy, best, gate)]


def mode_blockers(policy: PolicySettings, gate: Gate) -> list[str]:
    """Whether the bot may speak alone at all right now."""
    reasons = []
    if policy.mode == "suggest":
        reasons.append("mode is suggest")
    elif policy.mode == "away" and gate.available:
        reasons.append("an agent is online")
    if gate.owner != "bot":
        reasons.append("a person owns this conversation")
    if gate.recent_auto_sends >= gate.max_auto_per_minute:
        reasons.append(f"rate limit: {gate.recent_auto_sends} auto-sends in the last minute")
    return reasons


def line_blockers(policy: PolicySettings, line: Suggestion, gate: Gate) -> list[str]:
    """Whether this particular text may go out alone."""
    reasons = []
    if not line.auto_send:
        reasons.append(f"{line.id} is marked auto_send: false")
    for condition in unmet(line.requires, gate.known_facts()):
        reasons.append(f"{line.id} requires {condition}, which does not hold")
    reasons += [str(hit) for hit in find_red_lines(line.text, gate.platform, policy.banned_words)]
    return reasons


def script_blockers(policy: PolicySettings, line: Suggestion, gate: Gate) -> list[str]:
    """Blockers for a scripted line: the flow chose it, so intent and score checks do not apply."""
    return [*mode_blockers(policy, gate), *line_blockers(policy, line, gate)]
