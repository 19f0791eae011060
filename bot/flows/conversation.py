"""Small flows that depend on the conversation so far: away greeting, farewell, follow-ups."""

from __future__ import annotations

import re
from datetime import datetime

from bot.flows import Scripted
from bot.state import ConversationState
from intents.text import normalise

#: Intents a follow-up may inherit: a bare "那怎么查呢" after a greeting or thanks means nothing.
NO_CARRY = frozenset({"other", "greeting", "thanks", "farewell", "human_request"})
_FOLLOW_UP = re.compile(
    r"^(那|那么|然后|所以|还有|这个|这样)|怎么|咋|如何|可以吗|行吗|能吗|多久|几天|呢\??$|吗\??$|啥时"
)
_MAX_FOLLOW_UP_CHARS = 12


def away_greeting_due(state: ConversationState, now: datetime) -> bool:
    """The away greeting goes out once per conversation per shop-local day."""
    return state.away_greeted_on != now.date().isoformat()


def farewell(state: ConversationState) -> Scripted:
    if state.deal_made:
        return Scripted("farewell.deal", "farewell after an order")
    return Scripted("farewell.no_deal", "farewell without an order")


def carried_intent(text: str, confident: bool, state: ConversationState, clean: str | None = None) -> str | None:
    """The previous turn's intent, when ``text`` is a short follow-up with no intent of its own.

    ``clean`` is ``text`` normalised, when the caller has it already (the pipeline does).
    """
    previous = state.last_intent
    if confident or previous is None or previous in NO_CARRY:
        return None
    clean = normalise(text) if clean is None else clean
    if len(clean) > _MAX_FOLLOW_UP_CHARS or not _FOLLOW_UP.search(clean):
        return None
    return previous
