"""Scoped identity: a platform's ids mean something only inside that platform.

Two connectors may both call a chat ``123``, and an in-house system may reuse ``m1`` as a
message id in every conversation. So every conversation and customer id kefu stores is
namespaced by the connector it came through — ``<connector>:<id>`` — and inbound messages are
deduplicated on (connector, conversation, message id, text): a reused message id in another
conversation, or with another text, is a new message and is never answered with another
message's decision. The platform's own ids stay in the message's reply context (``raw``),
which is what connectors answer with.
"""

from __future__ import annotations

from bot.models import Inbound

SEPARATOR = ":"


def scope(connector: str, platform_id: str) -> str:
    """``<connector>:<platform id>``."""
    return f"{connector}{SEPARATOR}{platform_id}"


def scoped(inbound: Inbound) -> Inbound:
    """The message with its conversation and customer ids namespaced by its connector."""
    return inbound.model_copy(update={
        "conversation_id": scope(inbound.connector, inbound.conversation_id),
        "customer_id": scope(inbound.connector, inbound.customer_id),
    })


def unscoped(connector: str, scoped_id: str) -> str:
    """The platform's id back from a scoped one (unchanged when it is not scoped by ``connector``)."""
    prefix = scope(connector, "")
    return scoped_id[len(prefix):] if scoped_id.startswith(prefix) else scoped_id
