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
from bot.state import ConversationState

Priority = Literal["urgent", "high", "normal"]
Group = Literal["presale", "aftersale", "sales"]

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


def group_for(state: ConversationState, intent: str | None = None, policy: PolicySettings | None = None) -> Group:
    """The queue for a conversation: after-sale once it is about an order's trouble."""
    aftersale = (policy or PolicySettings()).is_aftersale(intent)
    return "aftersale" if state.stage == "aftersale" or aftersale else "presale"


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
        priority: Priority = "high" if angry else "normal"
        return Trigger("human_request", priority, group_for(state, policy=policy), True, "customer asked for a person")
    if angry:
        detail = "angry: " + ", ".join(anger_words[:5])
        return Trigger("angry", "urgent", group_for(state, intent, policy), True, detail)
    if confident and intent in policy.handoff_intents:
        priority = "urgent" if intent in URGENT_INTENTS else "high"
        group: Group = "aftersale" if policy.is_aftersale(intent) or state.stage == "aftersale" else "presale"
        return Trigger(intent, priority, group, False, f"intent {intent}")
    if has_images and state.stage == "aftersale":
        return Trigger("images", "high", "aftersale", True, "photos sent in an after-sale conversation")
    if state.unsure_streak >= settings.low_confidence_turns:
        detail = f"{state.unsure_streak} unsure turns in a row"
        return Trigger("low_confidence", "normal", group_for(state, policy=policy), True, detail)
    return None


def intake_needs(intent: str, has_order: bool, has_photos: bool) -> list[Literal["order", "photos"]]:
    """What the human will need that the customer has not given yet (asked for once each)."""
    needs: list[Literal["order", "photos"]] = []
    if not has_order:
        needs.append("order")
    if intent in PHOTO_INTENTS and not has_photos:
        needs.append("photos")
    return needs
