"""What the sidebar shows of a conversation, read from the store (runs on the worker thread).

Messages carry their author (customer, bot or agent): inbound rows are the customer's, an
outbound row is an agent's when an agent send recorded it (or the row says so), else the bot's.
Phone numbers and addresses are masked everywhere here (`privacy`).
"""

from __future__ import annotations

from typing import Any

from bot.state import ConversationState
from bot.store import StoredMessage
from bot.web.agent.privacy import PRIVATE_SLOTS, mask_slots, mask_text

HISTORY = 200


def author_of(message: StoredMessage, agent_rows: dict[int, str]) -> tuple[str, str | None]:
    if message.direction == "in":
        return "customer", None
    agent = agent_rows.get(message.id) or message.raw.get("agent_id") or message.raw.get("agent")
    return ("agent", str(agent)) if agent else ("bot", None)


def message_payload(message: StoredMessage, agent_rows: dict[int, str]) -> dict[str, Any]:
    author, agent = author_of(message, agent_rows)
    return {"id": message.id, "at": message.at.isoformat(), "author": author, "agent": agent,
            "text": mask_text(message.text)}


def decision_payload(row: dict[str, Any]) -> dict[str, Any]:
    payload = row["payload"]
    return {
        "id": row["id"], "at": row["at"].isoformat(), "trigger": row["trigger"], "kind": row["kind"],
        "intent": payload.get("intent") or None,
        "replies": [r.get("id") for r in payload.get("replies", [])],
        "reasons": [mask_text(str(r)) for r in payload.get("reasons", [])],
        "delivery": row["delivery"],
        "message_row": row["message_row"],
    }


def suggestion_payload(s: dict[str, Any]) -> dict[str, Any]:
    return {"id": s["id"], "text": s["text"], "score": s["score"], "intent": s["intent"]}


def load_state(store, conversation_id: str) -> ConversationState | None:
    saved = store.load_state(conversation_id)
    return ConversationState.model_validate(saved) if saved is not None else None


def latest_inbound(messages: list[StoredMessage]) -> StoredMessage | None:
    return next((m for m in reversed(messages) if m.direction == "in"), None)


def suggestions(engine, store, messages: list[StoredMessage], k: int) -> tuple[int | None, list[dict[str, Any]]]:
    """Top ``k`` replies for the latest customer message: the ones decided with it (they saw the
    conversation's state), or, before it is processed, the engine's ranking of its text."""
    last = latest_inbound(messages)
    if last is None:
        return None, []
    decided = store.decision_for_message(last.id)
    ranked = (decided or {}).get("payload", {}).get("suggestions") if decided else None
    if not ranked:
        ranked = [s.model_dump() for s in engine.suggest(last.text).suggestions]
    return last.id, [suggestion_payload(s) for s in ranked[:k]]


def conversation_view(workspace, conversation_id: str, state: ConversationState) -> dict[str, Any]:
    store, assistant = workspace.store, workspace.assistant
    messages = store.recent_messages(conversation_id, HISTORY)
    agent_rows = store.agent_message_rows(conversation_id)
    ticket = assistant.desk.open_ticket(conversation_id)
    now = assistant.clock.now()
    for_message, ranked = suggestions(assistant.engine, store, messages, workspace.config.policy.top_k)
    inbound = latest_inbound(messages)
    summary = ticket.summary if ticket else None
    return {
        "conversation_id": conversation_id,
        "customer_id": state.customer_id,
        "platform": inbound.platform if inbound else state.connector,
        "owner": state.owner,
        "stage": state.stage,
        "ticket": workspace.ticket_payload(ticket, now) if ticket else None,
        "summary": summary_line(state, summary),
        "messages": [message_payload(m, agent_rows) for m in messages],
        "decisions": [decision_payload(d) for d in store.decisions(conversation_id)][-HISTORY:],
        "slots": mask_slots(dict(state.slots)),
        "masked": [name for name in PRIVATE_SLOTS if name in state.slots],
        "orders": [{"order_id": order_id, "status": status} for order_id, status in state.orders.items()],
        "suggestions": ranked,
        "suggestions_for": for_message,
    }


STAGES = {"presale": "售前", "insale": "售中", "aftersale": "售后"}


def summary_line(state: ConversationState, ticket_summary: dict[str, Any] | None) -> str:
    """One line in Chinese: stage, what the customer asked about, orders, why a person is here."""
    parts = [STAGES.get(state.stage, state.stage)]
    intents = list(dict.fromkeys(i for i in state.last_intents if i != "other"))
    if intents:
        parts.append("意图：" + "、".join(intents[-4:]))
    if state.orders:
        parts.append("订单：" + "，".join(f"{o}（{s}）" for o, s in state.orders.items()))
    if ticket_summary:
        parts.append("转人工：" + mask_text(str(ticket_summary.get("detail") or ticket_summary.get("reason", ""))))
    return " · ".join(parts)
