"""Intake that ends: each question before a handoff is asked once and then closed.

Before a person takes an after-sale case the bot asks for what they will need (the order
number, photos of the problem) — once per item, never the same question twice, and each
step ends with the customer's next message:

* **satisfied** — the order number or a photo arrived;
* **declined** — the customer cannot or will not ("没有订单号", "不想拍", "没有", "不知道"), or
  answers with something that is not it: asking again would only annoy them;
* **abandoned** — the customer changes the subject (a new pre-sale question), thanks or says
  goodbye.

A bare "好的"/"嗯" means the customer is fetching it: the step waits for one more message,
once. Then the next missing item is asked for, or the case goes to a person — after a topic
change the bot answers the new question instead and the case is dropped (the customer can
raise it again; nothing already asked is asked again). Pure functions over the turn and the
state; the assistant applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.config import PolicySettings
from bot.models import Decision
from bot.state import ConversationState
from intents.answers import Act, answer_acts
from intents.clauses import NON_CONTENT
from intents.text import normalise

Outcome = Literal["satisfied", "declined", "abandoned", "waiting"]
#: Acts that end a step without giving what it asked for.
_DECLINING: frozenset[Act] = frozenset({"no", "not_yet", "unsure"})
_CLOSING: frozenset[Act] = frozenset({"thanks", "bye"})
_DECLINE = {
    "order": re.compile(
        r"(?:没有|没|不知道|找不到|忘了|记不得|不记得|查不到|看不到|不清楚)(?:订单号?|单号|订单编号)"
        r"|(?:订单号?|单号)(?:找不到|没有|不知道|忘了|查不到|丢了)|不是我下的单|别人(?:帮我)?(?:下|买)的"
    ),
    "photos": re.compile(
        r"(?:不想|不能|不会|没法|不方便|懒得|不用|不|没)(?:拍|照|发图|发照片|上传)|拍不了|照片没有|没有照片|扔了|丢了"
    ),
}


@dataclass(frozen=True)
class Turn:
    """What the customer's message gave the intake step."""

    acts: tuple[Act, ...]
    intent: str
    confident: bool
    has_order: bool
    has_images: bool
    text: str
    #: The new intent is a pre-sale (or other unrelated) question, not more of the same trouble.
    unrelated: bool


def outcome(item: str, turn: Turn, waited: bool) -> Outcome:
    """How the customer's message ends the step that asked for ``item`` (order | photos)."""
    if (item == "order" and turn.has_order) or (item == "photos" and turn.has_images):
        return "satisfied"
    if any(a in _CLOSING for a in turn.acts) or (turn.confident and turn.intent in {"thanks", "farewell"}):
        return "abandoned"
    if any(a in _DECLINING for a in turn.acts) or _DECLINE[item].search(turn.text):
        return "declined"
    if turn.confident and turn.unrelated:
        return "abandoned"
    if turn.acts and set(turn.acts) <= {"ok", "yes"} and not waited:
        return "waiting"
    return "declined"


def asked_item(state: ConversationState) -> str | None:
    """The item the open step of the pending handoff asked for, or None.

    A step left open by a handoff that cut intake short (anger, "转人工") stays "asked" in
    ``state.intake`` — never asked again — but is not the open step of a later case.
    """
    pending = state.pending_handoff or {}
    asked = [item for item in pending.get("asked", []) if state.intake.get(item) == "asked"]
    return asked[-1] if asked else None


def close_step(state: ConversationState, item: str, result: Outcome) -> None:
    if result != "waiting":
        state.intake[item] = result


def next_item(needs: list[str], state: ConversationState) -> str | None:
    """The first missing item never asked for in this conversation (None: go on to the handoff)."""
    for item in needs:
        if item not in state.intake:
            return item
    return None


def note_asked(state: ConversationState, item: str) -> None:
    state.intake[item] = "asked"


def turn_of(text: str, decision: Decision, confident: bool, has_images: bool, policy: PolicySettings) -> Turn:
    """The facts of a customer message the intake step looks at."""
    intent = decision.intent
    unrelated = confident and not policy.is_aftersale(intent) and intent not in NON_CONTENT | {"human_request"}
    return Turn(tuple(answer_acts(text)), intent, confident, bool(decision.slots.get("order_id")), has_images,
                normalise(text), unrelated)


def closing_words(text: str, decision: Decision) -> bool:
    """The customer thanks or says goodbye (rather than changing the subject)."""
    return any(a in _CLOSING for a in answer_acts(text)) or decision.intent in {"thanks", "farewell"}


def intake_step(
    state: ConversationState, text: str, decision: Decision, confident: bool, has_images: bool,
    policy: PolicySettings,
) -> Outcome:
    """Close (or, once, keep waiting on) the open intake step with this message; return how it ended."""
    item = asked_item(state)
    if item is None:
        return "declined"
    pending = state.pending_handoff or {}
    result = outcome(item, turn_of(text, decision, confident, has_images, policy), bool(pending.get("waited")))
    if result == "waiting":
        pending["waited"] = True
    close_step(state, item, result)
    return result
