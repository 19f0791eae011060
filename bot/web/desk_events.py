"""Applying what people did on a platform (`connectors.base.DeskEvent`) to the Assistant's desk.

One function, so every connector's events take the same path and a refusal (the conversation
is unknown, the ticket is closed already, a retried "resolved") becomes a logged outcome, not a
failed webhook: platforms retry failures, and a retry would not make the refusal go away.
"""

from __future__ import annotations

import logging

from bot.assistant import Assistant
from bot.handoff import DeskError
from bot.identity import scope
from connectors.base import DeskEvent, DeskOutcome

_LOGGER = logging.getLogger(__name__)


def apply_desk_event(assistant: Assistant, connector: str, event: DeskEvent) -> DeskOutcome:
    """Run one desk event; its outcome (applied, or the desk error's reason and HTTP status)."""
    conversation = scope(connector, event.conversation_id)  # as the connector's messages are stored
    try:
        if event.action == "agent_message":
            ticket = assistant.agent_replied(conversation, event.text, message_id=event.event_id)
            detail = f"ticket {ticket.id} answered"
        elif event.action == "release":
            assistant.release(conversation, f"released on {connector}")
            detail = "back to the bot"
        elif event.action == "resolve":
            assistant.resolve(conversation)
            detail = "resolved"
        else:
            ticket = assistant.taken_on_platform(conversation, assigned=event.action == "taken")
            detail = f"ticket {ticket.id} is {ticket.status}"
    except DeskError as exc:
        _LOGGER.info("connector %s: %s of %s not applied: %s", connector, event.action, conversation, exc)
        return DeskOutcome(event, False, str(exc), exc.status)
    _LOGGER.info("connector %s: %s of %s by %s: %s", connector, event.action, conversation,
                 event.agent or "a person", detail)
    return DeskOutcome(event, True, detail)
