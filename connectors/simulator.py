"""The customer simulator's connector: a platform that lives inside kefu itself.

`/agent/simulate` lets a newcomer type as a customer. Its messages enter the server exactly
like a webhook's (accepted, persisted, processed in order by the worker) and its replies leave
through `deliver` like any platform's — bot replies, timed follow-ups, the handoff notice and
an agent's answers from the sidebar alike — into this connector's outbox, which the
simulator page reads as a stream. So the page shows what a customer would really receive.

The outbox is in memory (bounded): the simulator is for trying kefu out, usually on a
temporary store (`kefu demo`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from bot.identity import unscoped
from bot.models import Inbound, StoredMessage
from connectors.base import Connector, ConnectorSettings, Rejected


class SimulatorSettings(ConnectorSettings):
    #: How many delivered lines the outbox keeps for pages that reconnect.
    keep: int = Field(5000, ge=10)


class SimulatorConnector(Connector):
    type = "simulator"
    Settings = SimulatorSettings

    def __init__(self, name: str, settings: SimulatorSettings, http: Any = None):
        super().__init__(name, settings, http)
        self.outbox: deque[dict[str, Any]] = deque(maxlen=settings.keep)
        self._seq = itertools.count(1)
        self._changed: asyncio.Event | None = None

    async def parse(self, request, body: bytes):
        raise Rejected(404, "the simulator takes messages from /agent/simulate only")

    def inbound(self, conversation_id: str, text: str) -> Inbound:
        """A customer line typed into the simulator page (kept in the outbox too: a reloaded page
        shows the whole exchange in order)."""
        self._put(conversation_id, "customer", text, None)
        return Inbound(platform=self.name, conversation_id=conversation_id, customer_id=conversation_id,
                       message_id=uuid.uuid4().hex, text=text, sent_at=datetime.now(UTC))

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        payload = decision["payload"]
        author = "agent" if decision.get("kind") == "agent" else "bot"
        for reply in payload.get("replies", []):
            self._put(unscoped(self.name, message.conversation_id), author, reply["text"], reply.get("id"))

    async def hand_off(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        self._put(unscoped(self.name, message.conversation_id), "system", "（会话已转接人工客服）", None)

    def _put(self, conversation_id: str, author: str, text: str, phrase_id: str | None) -> None:
        self.outbox.append({"seq": next(self._seq), "conversation_id": conversation_id, "author": author,
                            "text": text, "phrase_id": phrase_id, "at": datetime.now(UTC).isoformat()})
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def after(self, conversation_id: str, seq: int) -> list[dict[str, Any]]:
        """Lines delivered to a conversation after ``seq``, oldest first."""
        return [line for line in self.outbox if line["seq"] > seq and line["conversation_id"] == conversation_id]

    async def wait(self, timeout: float) -> None:
        """Until something is delivered (or ``timeout`` seconds)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
