"""The agent API's OpenAPI 3.1 description, served at ``GET /api/openapi.json``.

Written by hand next to the handlers it describes; the tests check that every ``/api`` route
of the application is in it, and validate real responses against its schemas (OpenAPI 3.1
schemas are JSON Schema 2020-12, so `jsonschema` reads them as they are).
"""

from __future__ import annotations

from typing import Any

from bot.web.agent.workspace import MAX_TEXT

NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | None = None, extra: bool = False) -> dict[str, Any]:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required, "additionalProperties": extra}


AGENT = {
    "id": {"type": "string"}, "name": {"type": "string"},
    "groups": {"type": "array", "items": {"enum": ["presale", "aftersale", "sales"]}},
    "capacity": {"type": "integer"}, "status": {"enum": ["online", "away", "offline"]},
}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"ok": {"const": False}, "error": {"type": "string"}, "status": {"type": "integer"}}),
    "Ok": _obj({"ok": {"const": True}}),
    "Agent": _obj(AGENT),
    "Me": _obj({**AGENT, "load": {"type": "integer", "description": "Tickets I hold now"}}),
    "Presence": _obj({"agents": {"type": "array", "items": _ref("Agent")}}),
    "PresenceRequest": _obj({"status": {"enum": ["online", "away", "offline"]}}),
    "Ticket": _obj({
        "id": {"type": "integer"}, "conversation_id": {"type": "string"},
        "status": {"enum": ["queued", "assigned", "resolved", "released"]},
        "reason": {"type": "string"}, "group": {"enum": ["presale", "aftersale", "sales"]},
        "priority": {"enum": ["urgent", "high", "normal"]}, "assignee": NULLABLE_STRING,
        "waiting_s": {"type": "integer", "minimum": 0, "description": "Seconds from creation to the first human "
                      "answer (or until now while unanswered)."},
        "sla_due": TIME, "summary": {"type": "object", "description": "Intents, slots (masked), orders, last "
                                     "messages and what the bot said."},
    }),
    "Tickets": _obj({"tickets": {"type": "array", "items": _ref("Ticket")}}),
    "TicketAnswer": _obj({"ticket": _ref("Ticket")}),
    "TransferRequest": {"oneOf": [
        _obj({"group": {"enum": ["presale", "aftersale", "sales"]}}),
        _obj({"agent": {"type": "string"}}),
    ]},
    "Message": _obj({
        "id": {"type": "integer"}, "at": TIME, "author": {"enum": ["customer", "bot", "agent"]},
        "agent": NULLABLE_STRING, "text": {"type": "string", "description": "Phone numbers masked."},
    }),
    "Decision": _obj({
        "id": {"type": "integer"}, "at": TIME, "trigger": {"type": "string"}, "kind": {"type": "string"},
        "intent": NULLABLE_STRING, "replies": {"type": "array", "items": {"type": ["string", "null"]}},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "delivery": NULLABLE_STRING, "message_row": {"type": ["integer", "null"]},
    }),
    "Suggestion": _obj({"id": {"type": "string"}, "text": {"type": "string"}, "score": {"type": "number"},
                        "intent": {"type": "string"}}),
    "Conversation": _obj({
        "conversation_id": {"type": "string"}, "customer_id": {"type": "string"}, "platform": {"type": "string"},
        "owner": {"type": "string"}, "stage": {"type": "string"},
        "ticket": {"oneOf": [_ref("Ticket"), {"type": "null"}]}, "summary": {"type": "string"},
        "messages": {"type": "array", "items": _ref("Message")},
        "decisions": {"type": "array", "items": _ref("Decision")},
        "slots": {"type": "object", "description": "phone and address masked unless revealed."},
        "masked": {"type": "array", "items": {"enum": ["phone", "address"]}},
        "orders": {"type": "array", "items": _obj({"order_id": {"type": "string"}, "status": {"type": "string"}})},
        "suggestions": {"type": "array", "items": _ref("Suggestion"), "description": "Top k for the latest "
                        "customer message."},
        "suggestions_for": {"type": ["integer", "null"], "description": "The message they answer."},
    }),
    "ConversationItem": _obj({
        "conversation_id": {"type": "string"}, "customer_id": {"type": "string"}, "updated_at": TIME,
        "ticket_id": {"type": ["integer", "null"]},
        "ticket_status": {"enum": ["queued", "assigned", None]}, "mine": {"type": "boolean"},
        "last_message": _ref("Message"),
    }),
    "Conversations": _obj({"conversations": {"type": "array", "items": _ref("ConversationItem")}}),
    "SendRequest": _obj({"text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
                         "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200}}),
    "SendResult": _obj({"ok": {"const": True}, "duplicate": {"type": "boolean"},
                        "delivery": {"enum": ["pending", "held", "done", "dead", "expired", "dropped", None],
                                     "description": "The outbox item's status (held: the connector cannot push; "
                                                    "it rides on the next webhook answer)"},
                        "message": _ref("Message")}),
    "RevealRequest": _obj({"slot": {"enum": ["phone", "address"]}}),
    "RevealResult": _obj({"slot": {"enum": ["phone", "address"]}, "value": {}}),
    "SearchResult": _obj({"query": {"type": "string"}, "results": {"type": "array", "items": _obj({
        "id": {"type": "string"}, "text": {"type": "string"}, "score": {"type": "number"},
        "intent": {"type": "string"}, "question": {"type": "string"}})}}),
    "Session": _obj({"ok": {"const": True}, "agent": {"type": "string"}, "name": {"type": "string"}}),
}

_ERRORS = {
    "400": ("Bad request (the reason is in `error`)", "Error"),
    "401": ("No token, or a wrong or revoked one", "Error"),
    "403": ("Another agent holds this ticket", "Error"),
    "404": ("No such ticket or conversation", "Error"),
    "409": ("Not possible in the current state", "Error"),
}


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(schema)}}}


def _op(summary: str, ok: str, *, status: str = "200", body: str | None = None, errors: str = "401",
        params: list[dict[str, Any]] | None = None, description: str = "") -> dict[str, Any]:
    responses: dict[str, Any] = {status: {"description": "OK", **_json(ok)}}
    for code in errors.split():
        text, schema = _ERRORS[code]
        responses[code] = {"description": text, **_json(schema)}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if body:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    return op


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


TICKET = _path("ticket_id", {"type": "integer"})
CONVERSATION = _path("conversation_id")


def _ticket_action(summary: str, body: str | None = None) -> dict[str, Any]:
    return {"post": _op(summary, "TicketAnswer", body=body, errors="400 401 403 404 409", params=[TICKET])}


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "kefu agent API", "version": "1",
                 "description": "The human side of kefu: presence, the ticket queue, conversations, suggestions "
                                "and sending as the agent. Every route but this description needs "
                                "`Authorization: Bearer <token>` (`kefu agent token AGENT_ID`)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "cookie": {"type": "apiKey", "in": "cookie", "name": "kefu_agent"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/api/openapi.json": {"get": {"summary": "This description", "security": [],
                                          "responses": {"200": {"description": "OpenAPI 3.1 document"}}}},
            "/api/session": {
                "post": _op("Sign the page in: the Bearer token becomes an HttpOnly cookie", "Session"),
                "delete": _op("Sign out (clears the cookie)", "Ok"),
            },
            "/api/me": {"get": _op("The signed-in agent, presence and load", "Me")},
            "/api/presence": {
                "get": _op("Every configured agent's presence", "Presence"),
                "put": _op("Set my presence (drives the away policy, routing and the customer's wait message)",
                           "Agent", body="PresenceRequest", errors="400 401"),
            },
            "/api/tickets": {"get": _op(
                "The queue: open tickets of my groups and mine, most urgent first", "Tickets", errors="400 401",
                params=[_query("status", {"enum": ["open", "all", "queued", "assigned", "resolved", "released"]},
                               "Which tickets (default open = queued and assigned)"),
                        _query("scope", {"enum": ["all"]}, "all: every group's tickets")])},
            "/api/tickets/{ticket_id}/accept": _ticket_action("Take the ticket"),
            "/api/tickets/{ticket_id}/release": _ticket_action("Hand the conversation back to the bot"),
            "/api/tickets/{ticket_id}/resolve": _ticket_action("Close the ticket as solved; the bot takes over"),
            "/api/tickets/{ticket_id}/transfer": _ticket_action("Give the ticket to a group or an agent",
                                                                "TransferRequest"),
            "/api/conversations": {"get": _op("My conversations and the latest ones nobody else holds",
                                              "Conversations")},
            "/api/conversations/{conversation_id}": {"get": _op(
                "Messages, decisions with reasons, slots (masked), orders, top suggestions", "Conversation",
                errors="401 403 404", params=[CONVERSATION])},
            "/api/conversations/{conversation_id}/messages": {"post": _op(
                "Send as the agent through the conversation's connector", "SendResult", status="201",
                body="SendRequest", errors="400 401 403 404 409", params=[CONVERSATION],
                description="Never sent twice for the same idempotency_key: a retry answers 200 with "
                            "duplicate=true and the first send's message.")
                | {"responses": {
                    "201": {"description": "Sent (or being delivered)", **_json("SendResult")},
                    "200": {"description": "Already sent with this idempotency_key", **_json("SendResult")},
                    **{code: {"description": text, **_json(schema)}
                       for code, (text, schema) in _ERRORS.items()}}}},
            "/api/conversations/{conversation_id}/reveal": {"post": _op(
                "The full phone or address (the reveal is logged, never the value)", "RevealResult",
                body="RevealRequest", errors="400 401 403 404", params=[CONVERSATION])},
            "/api/phrasebook": {"get": _op(
                "Phrasebook search as you type (the suggestions' matcher)", "SearchResult", errors="400 401",
                params=[_query("q", {"type": "string"}, "What the agent typed"),
                        _query("k", {"type": "integer", "minimum": 1, "maximum": 20}, "How many (default 8)")])},
            "/api/events": {"get": {
                "summary": "Live channel (Server-Sent Events): message, ticket and presence events",
                "description": "Each event has an id; send Last-Event-ID (EventSource does on reconnect) or "
                               "?after=ID to catch up. Without either the stream starts with a `hello` "
                               "event holding the current id.",
                "parameters": [_query("after", {"type": "integer"}, "Catch up from this event id")],
                "responses": {"200": {"description": "text/event-stream",
                                      "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                              "400": {"description": "Bad cursor", **_json("Error")},
                              "401": {"description": "No token, or a wrong one", **_json("Error")}},
            }},
        },
    }
