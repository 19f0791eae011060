"""`kefu replay`: run a scripted conversation on a simulated clock, no network, no sleeping.

A replay file is YAML::

    clock: "2026-11-23T10:00:00+08:00"   # start time (shop time zone if no offset)
    agents_online: false
    events:
      - {customer: c1, text: 能便宜点吗}
      - {advance: 3m}                      # move the clock; jobs due meanwhile fire at their time
      - {order: {order_id: o1, customer: c1, status: created, consulted_before_order: true}}
      - {agents_online: true}              # every configured agent comes online (false: all away)
      - {presence: {agent: ajie, online: true}}
      - {presence: {agent: ajie, status: offline}}   # online | away | offline (their tickets requeue)
      - {customer: c1, text: 这是照片, images: 2}   # a message with attachments
      - {agent_reply: {customer: c1, text: 您好，我来处理}}
      - {release: c1}                       # the agent hands the conversation back to the bot
      - {resolve: c1}                       # the agent closes the ticket
      - {order: {order_id: o1, customer: c1, status: shipped, courier: 中通快递, tracking_no: "7310001"}}
      - {tmc: {id: 1001, topic: taobao_trade_TradeSellerShip,   # a Taobao order message, handled
               content: {tid: 3141, buyer_nick: c1}}}          # like the poller does (deduped on id)
      - {order_source: down}                # order look-ups fail from now on (up: they work again)

Each decision becomes one `ReplayLine`; tests, offline phrasebook testing and people all read
the same lines (``--json`` prints them as JSON, one per line).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.assistant import Assistant
from bot.config import Config, parse_duration
from bot.engine import Engine
from bot.errors import DataFileError
from bot.handoff.failed import answer_or_hand_over
from bot.models import Decision, Inbound, OrderEvent
from bot.orders.base import OrderInfo, OrderSource, SourceUnavailable
from bot.orders.store_source import StoreOrderSource
from bot.scheduler import ManualClock
from bot.store import Store, open_store
from connectors.taobao_tmc import message_content, persist_message
from connectors.taobao_top import BEIJING
from intents.yamlfile import YamlFileError, line_of, load_yaml


class ReplayError(DataFileError, ValueError):
    """The replay file is unusable; the message names file:line."""


class ReplayLine(BaseModel):
    """One decision as `kefu replay --json` prints it."""

    at: str
    customer: str
    trigger: str
    kind: str
    phrase_id: str | None = None
    text: str | None = None
    intent: str | None = None
    handoff: dict[str, Any] | None = None
    replies: list[dict[str, str]] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    said: str | None = None


class _Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str
    customer: str
    status: str
    consulted_before_order: bool = False
    amount: float | None = None
    courier: str | None = None
    tracking_no: str | None = None
    buyer_ids: list[str] = Field(default_factory=list)


class _Tmc(BaseModel):
    """A TMC message as ``taobao.tmc.messages.consume`` returns it (content as an object or JSON text)."""

    model_config = ConfigDict(extra="forbid")
    id: str | int
    topic: str
    content: dict[str, Any] | str
    pub_time: str | None = None


class _Presence(BaseModel):
    """``{agent, online: true|false}`` (false: away) or ``{agent, status: online|away|offline}``."""

    model_config = ConfigDict(extra="forbid")
    agent: str
    online: bool | None = None
    status: Literal["online", "away", "offline"] | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.online is None) == (self.status is None):
            raise ValueError("presence takes one of online (true/false) or status (online/away/offline)")
        return self

    @property
    def value(self) -> str:
        return self.status or ("online" if self.online else "away")


class _AgentReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str
    text: str


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str | None = None
    text: str | None = None
    message_id: str | None = None
    images: int = Field(0, ge=0)
    advance: str | int | None = None
    order: _Order | None = None
    agents_online: bool | None = None
    presence: _Presence | None = None
    agent_reply: _AgentReply | None = None
    release: str | None = None
    resolve: str | None = None
    tmc: _Tmc | None = None
    order_source: Literal["up", "down"] | None = None

    def kinds(self) -> int:
        actions = (self.text, self.advance, self.order, self.agents_online, self.presence,
                   self.agent_reply, self.release, self.resolve, self.tmc, self.order_source)
        return sum(x is not None for x in actions)

    @field_validator("advance")
    @classmethod
    def _duration(cls, value):
        if value is not None:
            parse_duration(value)
        return value


class _Script(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clock: datetime
    agents_online: bool = False
    events: list[dict[str, Any]]


def load_script(path: Path, config: Config) -> tuple[datetime, bool, list[tuple[int | None, _Event]]]:
    """Parse and check a replay file; every problem names file:line."""
    try:
        data, lines = load_yaml(path)
    except YamlFileError as exc:
        raise ReplayError(str(exc)) from exc
    if not isinstance(data, dict):
        raise ReplayError(f"{path}:1: a replay file is a mapping with clock and events")
    try:
        script = _Script(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = line_of(lines, *err["loc"])
        raise ReplayError(f"{path}:{where}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
    start = script.clock if script.clock.tzinfo else script.clock.replace(tzinfo=config.flows.tz)
    events = []
    for i, raw in enumerate(script.events):
        where = line_of(lines, "events", i)
        try:
            event = _Event(**raw) if isinstance(raw, dict) else None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ReplayError(f"{path}:{where}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
        if event is None or event.kinds() != 1 or (event.text is not None and not event.customer):
            raise ReplayError(
                f"{path}:{where}: an event is one of {{customer, text}}, {{advance}}, {{order}}, "
                "{agents_online}, {presence}, {agent_reply}, {release}, {resolve}, {tmc}, {order_source}"
            )
        events.append((where, event))
    return start, script.agents_online, events


class SwitchableSource(OrderSource):
    """The store's orders, or a source that is down (``{order_source: down}`` in a script)."""

    name = "replay"
    local = True

    def __init__(self, inner: OrderSource):
        self.inner, self.up = inner, True

    def get(self, order_id: str) -> OrderInfo | None:
        if not self.up:
            raise SourceUnavailable("the order source is down (replay)")
        return self.inner.get(order_id)

    def recent(self, buyer_ids, limit: int = 3) -> list[OrderInfo]:
        if not self.up:
            raise SourceUnavailable("the order source is down (replay)")
        return self.inner.recent(buyer_ids, limit)


class Replay:
    """Drives an `Assistant` through a script; collects one `ReplayLine` per decision."""

    def __init__(self, engine: Engine, start: datetime, agents_online: bool, store: Store | None = None):
        self.clock = ManualClock(start)
        self.store = store or open_store(":memory:")
        self.orders = SwitchableSource(StoreOrderSource(self.store))
        self.assistant = Assistant(engine, self.store, self.clock, agents_online=agents_online, orders=self.orders)
        self.tz = engine.config.flows.tz
        self.lines: list[ReplayLine] = []
        self._count = 0

    def run(self, events: list[tuple[int | None, _Event]]) -> list[ReplayLine]:
        for _, event in events:
            if event.text is not None:
                self._count += 1
                inbound = Inbound(
                    platform="replay", conversation_id=event.customer, customer_id=event.customer,
                    message_id=event.message_id or f"m{self._count}", text=event.text,
                    attachments=[f"image-{self._count}-{i}" for i in range(event.images)],
                )
                row, new = self.assistant.accept(inbound)
                decision = answer_or_hand_over(self.assistant, row) if new else None  # bot.handoff.failed
                if decision is not None:
                    self._emit(event.customer, "message", decision, said=event.text)
            elif event.advance is not None:
                self.advance(parse_duration(event.advance))
            elif event.order is not None:
                o = event.order
                order = OrderEvent(order_id=o.order_id, customer_id=o.customer, status=o.status,
                                   consulted_before_order=o.consulted_before_order, amount=o.amount,
                                   at=self.clock.now(), courier=o.courier, tracking_no=o.tracking_no,
                                   buyer_ids=o.buyer_ids)
                self._emit(o.customer, "order", self.assistant.handle_order(order))
            elif event.tmc is not None:
                self._tmc(event.tmc)
            elif event.order_source is not None:
                self.orders.up = event.order_source == "up"
            elif event.agents_online is not None:
                self.assistant.set_all_agents(event.agents_online)
            elif event.presence is not None:
                self.assistant.set_presence(event.presence.agent, event.presence.value)
            elif event.agent_reply is not None:
                self.assistant.agent_replied(event.agent_reply.customer, event.agent_reply.text)
            elif event.release is not None:
                self._emit(event.release, "agent", self.assistant.release(event.release))
            else:
                self._emit(event.resolve, "agent", self.assistant.resolve(event.resolve))
        return self.lines

    def _tmc(self, tmc: _Tmc) -> None:
        """Handle a TMC message exactly as the poller does; a repeated id is a redelivery."""
        message = tmc.model_dump(exclude_none=True)
        message.setdefault("pub_time", self.clock.now().astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"))
        new, decision = persist_message(self.assistant, "replay-tmc", message)
        content = message_content(message)
        customer = str(content.get("buyer_open_uid") or content.get("buyer_nick") or "-")
        if decision is None:
            why = f"TMC message {tmc.id}: " + ("stored, not an order event" if new else "duplicate, ignored")
            decision = Decision(kind="none", reasons=[why])
        self._emit(customer, "order", decision)

    def advance(self, delta) -> None:
        """Move the clock; each job due on the way fires at its own due time."""
        target = self.clock.now() + delta
        last = None
        while (due := self.assistant.scheduler.next_fire_time(target)) is not None:
            at = max(self.clock.now(), due)
            if at == last:  # a job keeps failing at this instant (no back-off): it stays pending
                break
            self.clock.set(at)
            self._tick()
            last = at
        self.clock.set(target)
        self._tick()  # nothing is due now, but idle conversations go back to the bot

    def _tick(self) -> None:
        for conversation_id, decision in self.assistant.tick():
            self._emit(self._customer(conversation_id), "timer", decision)

    def _customer(self, conversation_id: str) -> str:
        state = self.store.load_state(conversation_id)
        return state["customer_id"] if state else conversation_id

    def _emit(self, customer: str, trigger: str, decision: Decision, said: str | None = None) -> None:
        # the last reply is the answer; an away greeting, when there is one, comes before it
        suggested = decision.suggestions[0] if decision.suggestions else None
        shown = decision.replies[-1] if decision.replies else suggested
        self.lines.append(ReplayLine(
            at=self.clock.now().astimezone(self.tz).isoformat(),
            customer=customer,
            trigger=trigger,
            kind=decision.kind,
            phrase_id=shown.id if shown else None,
            text=shown.text if shown else None,
            intent=decision.intent or None,
            handoff=decision.handoff.model_dump(include={"reason", "priority", "group", "ticket_id", "assignee"})
            if decision.handoff else None,
            replies=[{"phrase_id": r.id, "text": r.text} for r in decision.replies],
            reasons=decision.reasons,
            said=said,
        ))


def format_line(line: ReplayLine) -> str:
    """A transcript line for people."""
    clock = line.at[11:19]
    if line.trigger == "message":
        head = f"{clock}  {line.customer}: {line.said}\n"
        head += f"          [{line.intent}] → {line.kind}"
    else:
        head = f"{clock}  ({line.trigger}) {line.customer} → {line.kind}"
    if line.handoff:
        head += f"  handoff {line.handoff['group']}/{line.handoff['priority']}: {line.handoff['reason']}"
    body = [f"          客服 ({r['phrase_id']}): {r['text']}" for r in line.replies]
    if not line.replies and line.phrase_id and line.kind == "suggest":
        body.append(f"          suggest ({line.phrase_id}): {line.text}")
    if line.reasons and line.kind in {"suggest", "none", "hold"}:
        body.append(f"          why: {'; '.join(line.reasons)}")
    return "\n".join([head, *body])
