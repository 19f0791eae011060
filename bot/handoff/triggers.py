"""When a person must take over, and how urgently.

Pure rules over what the turn and the conversation already know; the assistant applies them.
Order matters: a customer who asks for a human or is angry is handed over at once (no
questions first), after-sale trouble goes through intake, and a bot that keeps not
understanding gives up after ``low_confidence_turns`` unsure turns in a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.config import HandoffSettings, PolicySettings
from bot.models import Group, Priority
from bot.state import ConversationState, Stage

#: Threats and disputes cost a shop its rating: first in the queue.
URGENT_INTENTS = frozenset({"bad_review_threat", "platform_dispute", "counterfeit_claim"})
#: Intents whose intake also wants photos of the problem.
PHOTO_INTENTS = frozenset({"quality_complaint", "missing_item"})


@dataclass(frozen=True)
class Trigger:
    """Why a person takes over; ``immediate`` skips intake."""

    reason: str
    priority: Priority
    group: Group
    immediate: bool
    detail: str = ""


def queue_for(stage: Stage, intent: str | None = None, policy: PolicySettings | None = None) -> Group:
    """The queue for a handoff — the one rule every handoff uses (triggers, the policy, the desk).

    After-sale once the conversation is about an order's trouble (its stage) or the intent is an
    after-sale one; pre-sale otherwise. Sales is chosen only by a flow (a bulk order).
    """
    aftersale = (policy or PolicySettings()).is_aftersale(intent)
    return "aftersale" if stage == "aftersale" or aftersale else "presale"


def priority_for(reason: str, intent: str | None = None, angry: bool = False) -> Priority:
    """How urgent a handoff is — the one rule: anger and threats first, a plain request last."""
    if reason == "angry" or intent in URGENT_INTENTS:
        return "urgent"
    if reason == "human_request":
        return "high" if angry else "normal"
    if reason in {"low_confidence", "agent_joined", "taken_on_platform", "opened_on_platform"}:
        return "normal"
    return "high"


def group_for(state: ConversationState, intent: str | None = None, policy: PolicySettings | None = None) -> Group:
    """The queue for a conversation (`queue_for` on its stage)."""
    return queue_for(state.stage, intent, policy)


def find_trigger(
    *,
    intent: str,
    confident: bool,
    angry: bool,
    anger_words: list[str],
    has_images: bool,
    state: ConversationState,
    policy: PolicySettings,
    settings: HandoffSettings,
) -> Trigger | None:
    """The first rule that fires for this turn, or None (the bot keeps the conversation)."""
    if intent == "human_request" and confident:
        return _trigger("human_request", None, state, policy, True, "customer asked for a person", angry)
    if angry:
        return _trigger("angry", intent, state, policy, True, "angry: " + ", ".join(anger_words[:5]))
    if confident and intent in policy.handoff_intents:
        return _trigger(intent, intent, state, policy, False, f"intent {intent}")
    if has_images and state.stage == "aftersale":
        return _trigger("images", None, state, policy, True, "photos sent in an after-sale conversation")
    if state.unsure_streak >= settings.low_confidence_turns:
        detail = f"{state.unsure_streak} unsure turns in a row"
        return _trigger("low_confidence", None, state, policy, True, detail)
    return None


def _trigger(reason: str, intent: str | None, state: ConversationState, policy: PolicySettings, immediate: bool,
             detail: str, angry: bool = False) -> Trigger:
    return Trigger(reason, priority_for(reason, intent, angry), queue_for(state.stage, intent, policy), immediate,
                   detail)


def intake_needs(intent: str, has_order: bool, has_photos: bool) -> list[Literal["order", "photos"]]:
    """What the human will need that the customer has not given yet (asked for once each)."""
    needs: list[Literal["order", "photos"]] = []
    if not has_order:
        needs.append("order")
    if intent in PHOTO_INTENTS and not has_photos:
        needs.append("photos")
    return needs
