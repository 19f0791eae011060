"""A turn that cannot be processed goes to a person, once — it is never left to fail again.

When answering an accepted message raises (a bug, a phrasebook line that cannot render, a
state the code no longer reads), the customer got no reply and nobody knows. Leaving the
message unprocessed would retry it at every restart and fail the same way each time, still
with no reply and no person. Instead `hand_over_failed_turn` opens (or joins) a **high**
priority ticket with reason ``processing_failed`` whose summary says what was lost (the
customer's words, the error's type), gives the conversation to people, records a ``handoff``
decision for the message (so the platform hears a person takes over) and marks the message
processed — all in one transaction.

A store that cannot write (SQLite's OperationalError) is not the turn's fault: that message
stays unprocessed and is retried, as before; `is_turn_failure` says which is which.

It uses only the assistant's public parts (``store``, ``desk``, ``clock``, ``config``), so
whatever answers turns can change without this rule changing.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from bot.handoff.summary import build_summary
from bot.handoff.triggers import Trigger
from bot.models import Decision, Handoff
from bot.state import ConversationState

_LOGGER = logging.getLogger(__name__)

REASON = "processing_failed"
PRIORITY = "high"
#: The customer's words shown in the detail line are cut to this many characters.
_SHOWN = 80


def is_turn_failure(exc: BaseException) -> bool:
    """True when the turn itself failed (hand it over); False for a store that cannot write (retry)."""
    from bot.errors import StoreError

    return not isinstance(exc, sqlite3.OperationalError | StoreError)


def lost_detail(text: str, exc: BaseException) -> str:
    """What the agent must know first: the bot did not answer, what the customer said, why."""
    words = text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
    return (f"processing failed ({type(exc).__name__}): the bot did not answer this message;"
            f" reply to it yourself: “{words}”")


def _state_of(assistant: Any, conversation_id: str, customer_id: str, platform: str) -> tuple[ConversationState, bool]:
    """The saved state, or a fresh one when it cannot be read (maybe why the turn failed);
    the flag says whether the saved one is safe to overwrite."""
    saved = assistant.store.load_state(conversation_id)
    if saved is None:
        return ConversationState(conversation_id=conversation_id, customer_id=customer_id, platform=platform), True
    try:
        return ConversationState.model_validate(saved), True
    except Exception:  # an unreadable state must not also stop the hand-over
        _LOGGER.warning("conversation %s: saved state unreadable; the ticket carries no history", conversation_id)
        return ConversationState(conversation_id=conversation_id, customer_id=customer_id, platform=platform), False


def answer_or_hand_over(assistant: Any, row: int, on_failure: Any = None) -> Decision | None:
    """``assistant.process(row)``; when the turn fails, `hand_over_failed_turn` instead.

    The one call every place that processes accepted messages makes (the server's worker and
    its inline answers, `kefu replay`). A store failure is re-raised: the message stays
    unprocessed for a retry. ``on_failure(exc)`` hears of each hand-over (the server's metrics).
    """
    try:
        return assistant.process(row)
    except Exception as exc:
        if not is_turn_failure(exc):
            raise
        _LOGGER.exception("processing message row %s failed; handing it to a person", row)
        if on_failure is not None:
            on_failure(exc)
        return hand_over_failed_turn(assistant, row, exc)


def hand_over_failed_turn(assistant: Any, row: int, exc: BaseException) -> Decision | None:
    """Give the failed turn of message ``row`` to a person and mark the message processed.

    Returns the recorded ``handoff`` decision (with its id), or None when the message is
    unknown or was processed meanwhile. Raises whatever the store raises: then the message
    stays unprocessed, as it would without this rule.
    """
    store, now = assistant.store, assistant.clock.now()
    with store.transaction():
        message = store.get_message(row)
        if message is None or message.processed:
            return None
        conversation_id = message.conversation_id
        customer_id = message.customer_id or conversation_id
        state, writable = _state_of(assistant, conversation_id, customer_id, message.platform or "unknown")
        detail = lost_detail(message.text, exc)
        group = "aftersale" if state.stage == "aftersale" else "presale"
        trigger = Trigger(REASON, PRIORITY, group, True, detail)
        summary = build_summary(state, store.recent_messages(conversation_id, 10), trigger)
        summary["lost"] = {"text": message.text, "message_id": message.message_id, "error": type(exc).__name__}
        ticket = assistant.desk.open(conversation_id, customer_id, reason=REASON, priority=PRIORITY,
                                     group=group, summary=summary)
        decision = Decision(
            kind="handoff", text=message.text, reasons=[detail],
            handoff=Handoff(reason=REASON, priority=ticket.priority, group=ticket.group, summary=detail,
                            ticket_id=ticket.id, assignee=ticket.assignee),
        )
        decision_id = store.add_decision(conversation_id, now, "message", "handoff",
                                         decision.model_dump(mode="json", exclude={"trace", "id"}),
                                         message_row=row, delivery="pending")
        if writable:
            state.owner, state.ticket_id, state.pending_handoff = "human", ticket.id, None
            store.save_state(conversation_id, customer_id, state.model_dump(mode="json"), now)
        store.mark_processed(row)
    _LOGGER.error("message row %s (%s) could not be processed (%s); handed to a person, ticket %s",
                  row, conversation_id, type(exc).__name__, ticket.id)
    return decision.model_copy(update={"id": decision_id})
