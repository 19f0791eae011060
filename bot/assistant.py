"""The auto-replier: the stateless engine plus memory, scripts, timers and the store.

`Engine` answers one message in isolation; `Assistant` answers it as the n-th turn of a
conversation. For each message it loads the conversation state, lets the flows speak
(bargaining ladder, farewell, follow-up context, away greeting), applies the send policy and
writes everything — the inbound message, the decision, the replies, the new state and any
scheduled job — in one store transaction, so a crash leaves either the whole turn or none
of it. Timers and order events take the same path.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.config import in_window, parse_hours
from bot.engine import Context, Engine
from bot.flows import JobSpec, Scripted
from bot.flows.bargaining import FOLLOWUP_KIND, on_followup_due, on_price_ask
from bot.flows.conversation import away_greeting_due, carried_intent, farewell
from bot.flows.payment import CHASE_KIND, STOPS_CHASE, chase_job, chase_key, on_chase_due
from bot.models import Decision, Inbound, OrderEvent, Suggestion
from bot.policy import Gate, script_blockers
from bot.scheduler import Clock, Scheduler
from bot.state import ConversationState
from bot.store import Job, Store
from intents.classifier import IntentResult
from phrasebook.render import choose_reply

_LOGGER = logging.getLogger(__name__)

FOLLOW_UP_REASON = "follow-up read from the previous turn: an agent confirms"


class Assistant:
    """Conversations of one shop: message, order-event and timer handling over a store."""

    def __init__(self, engine: Engine, store: Store, clock: Clock, *, agents_online: bool = False):
        self.engine = engine
        self.config = engine.config
        self.store = store
        self.clock = clock
        self.scheduler = Scheduler(store, clock)
        #: Set by presence updates (the replay file, later the agents' API).
        self.agents_online = agents_online

    # --- presence ---------------------------------------------------------------------------

    def agents_available(self, now: datetime) -> bool:
        """An agent is online and it is within working hours (shop time)."""
        local = now.astimezone(self.config.flows.tz)
        return self.agents_online and in_window(local.time(), parse_hours(self.config.flows.working_hours))

    def _gate(self, state: ConversationState, now: datetime) -> Gate:
        return Gate(
            agents_online=self.agents_available(now),
            platform=self.config.shop.platform,
            owner=state.owner,
            recent_auto_sends=state.recent_auto_sends(now),
            max_auto_per_minute=self.config.flows.max_auto_per_minute,
        )

    # --- messages ---------------------------------------------------------------------------

    def handle_message(self, inbound: Inbound) -> Decision | None:
        """Answer one customer message; None for a duplicate delivery (already handled)."""
        now = self.clock.now()
        with self.store.transaction():
            row, new = self.store.add_message(
                inbound.conversation_id, "in", inbound.text, now,
                platform=inbound.platform, message_id=inbound.message_id,
            )
            if not new:
                return None
            state = self._state(inbound.conversation_id, inbound.customer_id, inbound.platform)
            decision = self._answer(inbound.text, state, now)
            self._commit(state, decision, "message", now)
            self.store.mark_processed(row)
        return decision

    def _answer(self, text: str, state: ConversationState, now: datetime) -> Decision:
        engine = self.engine
        result = engine.classifier.predict(text)
        carried = carried_intent(text, result.confident, state)
        if carried:
            ranking = [(carried, 1.0), *[(n, p) for n, p in result.ranking if n != carried]]
            result = IntentResult(carried, 1.0, ranking, True)
        context = Context(
            agents_online=self.agents_available(now),
            avoid=tuple(state.last_replies[-1:]),
            uses=state.phrase_uses,
            owner=state.owner,
            recent_auto_sends=state.recent_auto_sends(now),
        )
        decision = engine.suggest_with(text, result, context)
        if carried:
            decision = decision.model_copy(
                update={"kind": "suggest", "replies": [], "reasons": [FOLLOW_UP_REASON, *decision.reasons]}
            )
        state.turns += 1
        if decision.intent != "other" or not state.last_intents:
            state.note_intent(decision.intent)
        scripted = self._script(decision, text, state, now)
        if scripted is not None:
            decision = self._apply(decision, scripted, state, now)
        return self._away(decision, state, now)

    def _script(self, decision: Decision, text: str, state: ConversationState, now: datetime) -> Scripted | None:
        if decision.kind == "handoff" and decision.intent not in {"bulk_discount"}:
            return None
        if decision.intent == "farewell":
            return farewell(state)
        quantity = decision.slots.get("quantity")
        return on_price_ask(decision.intent, text, quantity, state, self.config.flows, now)

    def _line(self, phrase_id: str, state: ConversationState, score: float, why: str, **runtime: str) -> Suggestion:
        entry = self.engine.phrasebook.get(phrase_id)
        text = choose_reply(
            entry, {**self.engine.values, **runtime}, state.last_replies[-1:], state.phrase_uses.get(phrase_id, 0)
        )
        return Suggestion(id=entry.id, text=text, score=score, intent=entry.intent, auto_send=entry.auto_send, why=why)

    def _apply(self, decision: Decision, scripted: Scripted, state: ConversationState, now: datetime) -> Decision:
        """Put a flow's line first and decide again with the script gate."""
        line = self._line(scripted.phrase_id, state, 1.0, scripted.why)
        suggestions = [line, *[s for s in decision.suggestions if s.id != line.id]][: self.config.policy.top_k]
        for job in scripted.jobs:
            self._schedule(job, state.conversation_id)
        reasons = [scripted.why]
        if scripted.handoff is not None:
            return decision.model_copy(update={
                "kind": "handoff", "suggestions": suggestions, "replies": [line] if line.auto_send else [],
                "handoff": scripted.handoff, "reasons": reasons,
            })
        blockers = script_blockers(self.config.policy, line, self._gate(state, now))
        kind = "suggest" if blockers else "auto_send"
        return decision.model_copy(update={
            "kind": kind, "suggestions": suggestions, "replies": [] if blockers else [line],
            "handoff": None, "reasons": reasons + blockers,
        })

    def _away(self, decision: Decision, state: ConversationState, now: datetime) -> Decision:
        """Away mode: greet once a day with the shop notices; hold what an agent must answer."""
        policy = self.config.policy
        local = now.astimezone(self.config.flows.tz)
        if policy.mode != "away" or self.agents_available(now) or state.owner != "bot":
            return decision
        if not away_greeting_due(state, local):
            return decision
        greeting = self._line("greeting.away", state, 1.0, "away: shop notices, once a day")
        if script_blockers(policy, greeting, self._gate(state, now)):
            return decision
        state.away_greeted_on = local.date().isoformat()
        if decision.intent == "greeting":
            return decision.model_copy(update={"kind": "auto_send", "replies": [greeting]})
        kind = {"suggest": "hold"}.get(decision.kind, decision.kind)
        return decision.model_copy(update={"kind": kind, "replies": [greeting, *decision.replies]})

    # --- order events -----------------------------------------------------------------------

    def handle_order(self, event: OrderEvent) -> Decision:
        """Record an order event; schedule or cancel the payment chase. Nothing is sent now."""
        now = self.clock.now()
        at = event.at or now
        conversation_id = self.store.conversation_for_customer(event.customer_id) or event.customer_id
        with self.store.transaction():
            self.store.add_order_event(
                event.order_id, event.customer_id, event.status, at, event.model_dump(mode="json")
            )
            state = self._state(conversation_id, event.customer_id, "order")
            state.note_order(event.order_id, event.status, event.consulted_before_order)
            reasons = [f"order {event.order_id} {event.status}"]
            if event.status == "created":
                job = chase_job(event.order_id, event.consulted_before_order, at, self.config.flows)
                if self._schedule(job, conversation_id):
                    reasons.append(f"payment chase at {job.due_at.astimezone(self.config.flows.tz).isoformat()}")
            elif event.status in STOPS_CHASE and self.scheduler.cancel(chase_key(event.order_id)):
                reasons.append("payment chase cancelled")
            decision = Decision(kind="none", reasons=reasons)
            self._commit(state, decision, "order", now)
        return decision

    # --- timers -----------------------------------------------------------------------------

    def tick(self) -> list[Decision]:
        """Fire every due job once; return what each produced."""
        produced: list[Decision] = []
        self.scheduler.run_due(lambda job: produced.append(self.handle_timer(job)))
        return produced

    def handle_timer(self, job: Job) -> Decision:
        """Fire one job (called inside the scheduler's claim transaction)."""
        now = self.clock.now()
        state = self._state(job.conversation_id, job.payload.get("customer_id", job.conversation_id), "timer")
        if job.kind == FOLLOWUP_KIND:
            scripted = on_followup_due(state)
        elif job.kind == CHASE_KIND:
            order_id = job.payload["order_id"]
            scripted = on_chase_due(self.store.order_status(order_id), bool(job.payload.get("consulted")))
        else:
            _LOGGER.error("unknown job kind %r (job %s): dropped", job.kind, job.key)
            scripted = None
        if scripted is None:
            decision = Decision(kind="none", reasons=[f"{job.kind}: nothing to send"])
        else:
            line = self._line(scripted.phrase_id, state, 1.0, scripted.why)
            blockers = script_blockers(self.config.policy, line, self._gate(state, now))
            decision = Decision(
                kind="suggest" if blockers else "auto_send", intent=line.intent, suggestions=[line],
                replies=[] if blockers else [line], reasons=[scripted.why, *blockers],
            )
        self._commit(state, decision, "timer", now)
        return decision

    # --- plumbing ---------------------------------------------------------------------------

    def _state(self, conversation_id: str, customer_id: str, platform: str) -> ConversationState:
        saved = self.store.load_state(conversation_id)
        if saved is None:
            return ConversationState(conversation_id=conversation_id, customer_id=customer_id, platform=platform)
        return ConversationState.model_validate(saved)

    def _schedule(self, job: JobSpec, conversation_id: str) -> bool:
        payload = {**job.payload}
        return self.scheduler.schedule(job.key, job.kind, job.due_at, conversation_id, payload)

    def _commit(self, state: ConversationState, decision: Decision, trigger: str, now: datetime) -> None:
        auto = decision.kind in {"auto_send", "hold", "handoff"}
        for line in decision.replies:
            self.store.add_message(state.conversation_id, "out", line.text, now)
            state.note_sent(line.id, line.text, now, auto)
        self.store.add_decision(
            state.conversation_id, now, trigger, decision.kind,
            decision.model_dump(mode="json", exclude={"trace"}),
        )
        self.store.save_state(state.conversation_id, state.customer_id, state.model_dump(mode="json"), now)

