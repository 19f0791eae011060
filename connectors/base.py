"""The contract every chat platform implements: parse and verify inbound, deliver replies.

A connector turns the platform's webhook request into `bot.models.Inbound` messages and a
`Decision` back into the platform's reply call. It knows nothing of intents or phrasebooks.
The server does the rest (STYLE lesson 3): verify → parse → persist → answer the platform
within its time limit → process → deliver.

Rejections are precise: a connector raises `Rejected(status, reason)`; the server answers
with that status and the reason in one JSON shape, and nothing reaches the engine.

What a person does on the platform itself — writes to the customer, hands the conversation
back to the bot, closes it, takes it from the queue — comes out of `parse` as `DeskEvent`s
beside the messages. The server applies them to kefu's ticket desk (the Assistant's
``agent_replied``, ``release``, ``resolve``, ``taken_on_platform``) before it acknowledges the
request, and records each outcome in ``Parsed.desk_outcomes`` for `Connector.acknowledge`.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from bot.errors import PermanentDeliveryError, RefusedError
from bot.models import Inbound, StoredMessage


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Chinese kept readable (aiohttp's default escapes it to \\uXXXX)."""
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


class Rejected(RefusedError):
    """The request is refused; ``status`` is the HTTP status (4xx), ``reason`` says why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Undeliverable(PermanentDeliveryError, RuntimeError):
    """Delivery can never succeed (an expired reply window, no push channel): no retry, dead-letter."""


class ConnectorSettings(BaseModel):
    """Base of each connector's own settings (``extra="forbid"``: typos fail at start)."""

    model_config = ConfigDict(extra="forbid")


#: agent_message: a person wrote to the customer (→ agent_replied); release: handed back to the
#: bot; resolve: closed as done; taken: a person took it from the platform's queue; opened: the
#: platform put it in its people's queue (a ticket must exist, nobody has it yet).
DeskAction = Literal["agent_message", "release", "resolve", "taken", "opened"]


@dataclass(frozen=True)
class DeskEvent:
    """Something a person did on the platform that kefu's ticket desk must hear about."""

    action: DeskAction
    #: kefu's conversation id, exactly as this connector's `Inbound` messages carry it.
    conversation_id: str
    #: The agent's words (agent_message only).
    text: str = ""
    #: The platform's id of the event or message: a redelivered agent message is recorded once.
    event_id: str | None = None
    #: Who on the platform did it (their id or name there), for the logs.
    agent: str | None = None


@dataclass(frozen=True)
class DeskOutcome:
    """What applying a `DeskEvent` did: ``status`` is 200, or the desk error's HTTP status."""

    event: DeskEvent
    applied: bool
    detail: str = ""
    status: int = 200


@dataclass
class Parsed:
    """What a webhook request held: messages to accept, desk events, or an answer to give right away."""

    messages: list[Inbound] = field(default_factory=list)
    #: Answer now without processing (URL verification, an event we ignore).
    response: web.StreamResponse | None = None
    desk_events: list[DeskEvent] = field(default_factory=list)
    #: Filled by the server, one per desk event, before `Connector.acknowledge` is called.
    desk_outcomes: list[DeskOutcome] = field(default_factory=list)
    #: Items of the request kefu could not read: recorded (logged, counted) and skipped, so
    #: the items behind them still arrive.
    skipped: int = 0


@dataclass(frozen=True)
class Answered:
    """A processed message with its decision, for connectors that reply in the HTTP response.

    ``decision`` is the stored decision payload (``Decision`` as JSON), the same for a first
    delivery and for a duplicate one; None when nothing was decided yet (connectors that
    answer before processing get one item per accepted message, with ``decision`` None).
    """

    inbound: Inbound
    decision: dict[str, Any] | None
    duplicate: bool


def outcome_body(outcome: DeskOutcome) -> dict[str, Any]:
    """A desk outcome as JSON for a webhook answer."""
    return {"action": outcome.event.action, "conversation_id": outcome.event.conversation_id,
            "applied": outcome.applied, "detail": outcome.detail}


class Connector(abc.ABC):
    """One configured platform endpoint (``/webhook/{name}``)."""

    type: ClassVar[str]
    Settings: ClassVar[type[ConnectorSettings]]
    #: True: replies go back in the webhook's HTTP response (the server processes inline).
    sync_reply: ClassVar[bool] = False
    #: One delivery lane per chat instead of one per connector: for platforms that rate-limit
    #: (or open a reply window) per chat, so one chat's trouble never delays another's.
    lane_per_chat: ClassVar[bool] = False

    @property
    def can_push(self) -> bool:
        """kefu can send on its own, outside a webhook response (timers, agents, retries).

        A connector that cannot (the generic webhook in ``mode: sync`` without a
        ``callback_url``) gets such lines held until the next response to that conversation.
        """
        return True

    @property
    def can_respond(self) -> bool:
        """Replies can ride in the webhook's own HTTP response."""
        return bool(self.sync_reply)

    @property
    def posts_every_decision(self) -> bool:
        """Every decision on a message is delivered, a suggest-only one too (not only replies).

        For connectors whose receiver is the shop's own system, which shows suggestions to its
        agents: the generic webhook in ``mode: callback`` (it has no HTTP answer to carry them).
        """
        return False

    def lane(self, message: StoredMessage) -> str:
        """The outbox lane a reply to ``message`` waits in (order is kept within a lane)."""
        return f"{self.name}/{message.conversation_id}" if self.lane_per_chat else self.name

    def __init__(self, name: str, settings: ConnectorSettings, http: Any = None):
        self.name = name
        self.settings = settings
        self.http = http  # connectors.http.Outbound, for platform API calls

    async def verify_url(self, request: web.Request) -> web.StreamResponse:
        """GET on the webhook URL: platforms that verify the URL answer here."""
        raise Rejected(405, f"{self.type} does not verify URLs with GET")

    @abc.abstractmethod
    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        """Verify the request's authenticity over the raw ``body``, then parse it.

        Raises:
            Rejected: 401 for a missing/wrong signature or stale timestamp, 400 for a malformed
                body — with a reason a platform operator can act on.
        """

    def acknowledge(self, parsed: Parsed, answered: list[Answered]) -> web.StreamResponse:
        """The HTTP answer to the platform once messages are accepted (and, if sync, answered).

        A desk event the desk refused is still a 200: the platform would only retry it.
        """
        if parsed.desk_outcomes:
            return json_response({"ok": True, "desk": [outcome_body(o) for o in parsed.desk_outcomes]})
        return json_response({"ok": True})

    @abc.abstractmethod
    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        """Send a decision's replies through the platform API.

        ``message`` is the inbound message answered (its ``raw`` holds the reply context the
        connector stored at parse time); ``decision`` is the stored decision (``payload`` holds
        the replies). Raise on failure: the server retries and records the outcome.
        """

    def background(self, server: Any) -> Any:
        """A coroutine `kefu serve` runs beside the webhooks (a poller), or None (the default)."""
        return None

    async def hand_off(self, message: StoredMessage, decision: dict[str, Any]) -> None:  # noqa: B027
        """Tell the platform a person takes over (when the platform has such a call; default none)."""
