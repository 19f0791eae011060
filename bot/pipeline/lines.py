"""A phrasebook line rendered for this conversation (variants rotate, the last reply is avoided)."""

from __future__ import annotations

from bot.models import Suggestion
from bot.state import ConversationState
from phrasebook.render import choose_reply


def render_line(engine, phrase_id: str, state: ConversationState, why: str, **runtime: str) -> Suggestion:
    """The line ``phrase_id`` as it would be said now, placeholders (and ``runtime`` values) filled."""
    entry = engine.phrasebook.get(phrase_id)
    uses = state.phrase_uses.get(phrase_id, 0)
    text = choose_reply(entry, {**engine.values, **runtime}, state.last_replies[-1:], uses)
    return Suggestion(id=entry.id, text=text, score=1.0, intent=entry.intent, auto_send=entry.auto_send, why=why,
                      requires=list(entry.requires))
