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
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.engine import Context, Engine
from bot.flows import JobSpec, Scripted
from bot.flows.answering import note_sent as note_prompt
from bot.flows.answering import read_against
from bot.flows.bargaining import FOLLOWUP_KIND, on_followup_due, on_price_ask
from bot.flows.conversation import away_greeting_due, carried_intent, farewell
from bot.flows.payment import CHASE_KIND, STOPS_CHASE, chase_job, chase_key, on_chase_due, quiet_until
from bot.flows.truth import facts_of, record_sent
from bot.handoff.actions import DeskActions
from bot.handoff.desk import TicketDesk
from bot.handoff.intake import asked_item, closing_words, intake_step, next_item, note_asked
from bot.handoff.summary import build_summary, headline
from bot.handoff.triggers import Trigger, find_trigger, intake_needs
from bot.models import Decision, Handoff, Inbound, OrderEvent, Suggestion
from bot.orders import OrderSource
from bot.orders.desk import OrderDesk
from bot.policy import Gate, line_blockers, mode_blockers, script_blockers
from bot.scheduler import Clock, Scheduler
from bot.state import ConversationState
from bot.store import Job, Store
from intents.anger import detect as detect_anger
from intents.classifier import IntentResult
from intents.labels import FALLBACK
from phrasebook.render import choose_reply

_LOGGER = logging.getLogger(__name__)

FOLLOW_UP_REASON = "follow-up read from the previous turn: an agent confirms"


class Assistant(DeskActions):
    """Conversations of one shop: message, order-event and timer handling over a store.

    What people do (presence, accept, transfer, answer, release, resolve) is `DeskActions`.
    """

    def __init__(
        self, engine: Engine, store: Store, clock: Clock, *, agents_online: bool = False,
        orders: OrderSource | None = None,
    ):
        self.engine = engine
        self.config = engine.config
        self.store = store
        self.clock = clock
        self.scheduler = Scheduler(store, clock)
        self.desk = TicketDesk(store, self.config.handoff, clock)
        #: Job kinds fired by other parts of kefu (e.g. the daily report push) instead of
        #: `handle_timer`; each handler runs inside the job's claim transaction.
        self.job_handlers: dict[str, Callable[[Job], None]] = {}
        #: Order look-ups before answering about an order, buyer ↔ conversation links (bot/orders).
        self.orders = OrderDesk(store, orders, self.config.orders.timeout_seconds)
        #: With no agents in config, presence is this one flag (a shop that only uses suggest).
        self._anonymous_online = False
        #: Connectors whose every decision on a message is delivered, suggest-only ones too
        #: (the generic webhook in callback mode); others get decisions with replies or a handoff.
        self.post_every_decision: frozenset[str] = frozenset()
        if agents_online:
            self.set_all_agents(True)

    def _gate(self, state: ConversationState, now: datetime) -> Gate:
        return Gate(
            agents_online=self.agents_available(now),
            platform=self.config.shop.platform,
            owner=state.owner,
            recent_auto_sends=state.recent_auto_sends(now),
            max_auto_per_minute=self.config.flows.max_auto_per_minute,
            facts=facts_of(state, self.config.shop.platform),
        )

    # --- messages ---------------------------------------------------------------------------

    def handle_message(self, inbound: Inbound) -> Decision | None:
        """Accept and answer one customer message; None for a duplicate delivery."""
        row, new = self.accept(inbound)
        return self.process(row) if new else None

    def accept(self, inbound: Inbound) -> tuple[int, bool]:
        """Persist an inbound message (deduplicated on the platform's id) and nothing else.

        The webhook server answers the platform right after this; `process` runs later, and
        `pending` lists what a crash left accepted but unprocessed.
        """
        context = {"attachments": inbound.attachments, "context": inbound.raw}
        return self.store.add_message(
            inbound.conversation_id, "in", inbound.text, self.clock.now(),
            platform=inbound.platform, message_id=inbound.message_id, customer_id=inbound.customer_id,
            raw=context,
        )

    def process(self, row: int) -> Decision | None:
        """Answer an accepted message exactly once; None if it was processed already."""
        now = self.clock.now()
        with self.store.transaction():
            message = self.store.get_message(row)
            if message is None:
                raise KeyError(f"no message row {row}")
            if message.processed:
                return None
            customer = message.customer_id or message.conversation_id
            state = self._state(message.conversation_id, customer, message.platform or "unknown")
            buyer_ids = self.orders.on_message(state, message)
            has_images = bool(message.raw.get("attachments"))
            decision = self._answer(message.text, state, now, has_images, buyer_ids)
            decision = self._commit(state, decision, "message", now, message_row=row)
            self.store.mark_processed(row)
        return decision

    def pending(self) -> list[int]:
        """Rows accepted but never processed (a crash came in between), oldest first."""
        return [m.id for m in self.store.unprocessed_messages()]

    def _answer(
        self, text: str, state: ConversationState, now: datetime, has_images: bool = False,
        buyer_ids: tuple[str, ...] | list[str] = (),
    ) -> Decision:
        engine = self.engine
        reading = engine.read(text)
        result = reading.result
        # "not understood": even the best intent is below what the policy would act on alone, or
        # it is `other` (calibrated, "surely none of our intents" is still nothing to act on);
        # a bare answer is understood: it just asks for nothing
        below = result.score < self.config.policy.auto_intent_min or result.intent == FALLBACK
        unsure = below and not reading.bare_answer
        answered = read_against(reading, state.prompt)
        state.prompt = None  # this message answers the last question, or moves on
        if answered is not None:
            reading, result = answered[0], answered[0].result
        carried = None if answered else carried_intent(text, result.confident, state)
        if carried:
            ranking = [(carried, 1.0), *[(n, p) for n, p in result.ranking if n != carried]]
            result = IntentResult(carried, 1.0, ranking, True)
            reading = replace(reading, result=result)
        # a queued ticket: nobody is with this customer yet, so the bot decides as if it owned it
        queued = self.queued_ticket(state)
        context = Context(
            agents_online=self.agents_available(now),
            avoid=tuple(state.last_replies[-1:]),
            uses=state.phrase_uses,
            owner="bot" if queued else state.owner,
            recent_auto_sends=state.recent_auto_sends(now),
            facts=facts_of(state, self.config.shop.platform),
        )
        decision = engine.suggest_with(text, reading, context)
        if carried:
            decision = decision.model_copy(
                update={"kind": "suggest", "replies": [], "reasons": [FOLLOW_UP_REASON, *decision.reasons]}
            )
        self._remember(decision, state, has_images, unsure and not carried)
        if queued is not None:
            return self.queued_turn(queued, decision, text, state, now, result.confident, has_images)
        if state.owner != "bot":
            reasons = ["a person owns this conversation: suggestions only"]
            return decision.model_copy(update={"kind": "suggest", "replies": [], "handoff": None, "reasons": reasons})
        handed = self._handoff_step(decision, text, state, now, result.confident, has_images)
        if handed is not None:
            return self._away(handed, state, now)
        scripted = self._script(decision, text, state, now, buyer_ids) if answered is None else None
        if scripted is not None:
            decision = self._apply(decision, scripted, state, now)
        return self._away(decision, state, now)

    def _remember(self, decision: Decision, state: ConversationState, has_images: bool, unsure: bool) -> None:
        state.turns += 1
        if decision.intent != "other" or not state.last_intents:
            state.note_intent(decision.intent, self.config.policy.is_aftersale(decision.intent))
        state.slots.update(decision.slots)
        state.photos_received = state.photos_received or has_images
        state.unsure_streak = state.unsure_streak + 1 if unsure else 0

    # --- handoff ----------------------------------------------------------------------------

    def _handoff_step(
        self,
        decision: Decision,
        text: str,
        state: ConversationState,
        now: datetime,
        confident: bool,
        has_images: bool,
    ) -> Decision | None:
        """Hand off now, ask an intake question first, or None (no trigger: the bot goes on)."""
        anger = detect_anger(text)
        angry = anger.angry or anger.score >= self.config.handoff.anger_threshold
        found = find_trigger(
            intent=decision.intent, confident=confident, angry=angry, anger_words=list(anger.fired),
            has_images=has_images, state=state, policy=self.config.policy, settings=self.config.handoff,
        )
        may_speak = not mode_blockers(self.config.policy, self._gate(state, now))
        pending = state.pending_handoff
        closing = False
        if pending is not None:
            # during intake only anger or a request for a person cuts the questions short
            escalate = found is not None and found.reason in {"angry", "human_request"}
            if not escalate:
                step = intake_step(state, text, decision, confident, has_images, self.config.policy)
                if step == "waiting":
                    return decision.model_copy(update={
                        "kind": "suggest", "replies": [], "handoff": None,
                        "reasons": [f"intake: the customer is fetching the {asked_item(state)}, waiting once"]})
                if step == "abandoned" and not closing_words(text, decision):
                    state.pending_handoff = None  # a new subject: the bot answers it, the case is dropped
                    return None
                closing = step == "abandoned"
            trigger = found if escalate else Trigger(
                pending["reason"], pending["priority"], pending["group"], False, pending["detail"]
            )
            intent = pending["intent"]
        elif found is not None:
            trigger, intent = found, decision.intent
        else:
            return None
        if not trigger.immediate and may_speak and not closing:
            needs = intake_needs(intent, bool(state.slots.get("order_id")), state.photos_received)
            item = next_item(needs, state)
            if item is not None:
                line = self._line(f"aftersale.ask_{item}", state, 1.0, f"intake before handoff: {item}")
                if not line_blockers(self.config.policy, line, self._gate(state, now)):
                    note_asked(state, item)
                    state.pending_handoff = {
                        "reason": trigger.reason, "priority": trigger.priority, "group": trigger.group,
                        "detail": trigger.detail, "intent": intent,
                        "asked": [i for i, status in state.intake.items() if status != "satisfied"],
                    }
                    return decision.model_copy(update={
                        "kind": "auto_send", "replies": [line], "suggestions": [line, *decision.suggestions],
                        "handoff": None, "reasons": [f"{trigger.detail}; intake asks for {item} first"],
                    })
        return self._hand_off(trigger, decision, state, now)

    def _hand_off(
        self,
        trigger: Trigger,
        decision: Decision,
        state: ConversationState,
        now: datetime,
        phrase_id: str | None = None,
    ) -> Decision:
        """Open (or join) a ticket, tell the customer honestly, and step back."""
        summary = build_summary(state, self.store.recent_messages(state.conversation_id, 10), trigger)
        ticket = self.desk.open(
            state.conversation_id, state.customer_id, reason=trigger.reason, priority=trigger.priority,
            group=trigger.group, summary=summary,
        )
        gate = self._gate(state, now)  # still the bot's turn: may it tell the customer?
        if phrase_id is not None:
            line = self._line(phrase_id, state, 1.0, trigger.detail)
        else:
            line = self.wait_line(ticket, state, now)
        blockers = script_blockers(self.config.policy, line, gate)
        state.owner = "human"
        state.ticket_id = ticket.id
        state.pending_handoff = None
        handoff = Handoff(
            reason=trigger.reason, priority=ticket.priority, group=ticket.group, summary=headline(summary),
            ticket_id=ticket.id, assignee=ticket.assignee,
        )
        return decision.model_copy(update={
            "kind": "handoff", "replies": [] if blockers else [line],
            "suggestions": [line, *[s for s in decision.suggestions if s.id != line.id]],
            "handoff": handoff, "reasons": [trigger.detail, *blockers],
        })

    def _script(
        self, decision: Decision, text: str, state: ConversationState, now: datetime, buyer_ids=()
    ) -> Scripted | None:
        if decision.intent == "farewell":
            return farewell(state)
        about_order = self.orders.scripted(
            decision, text, buyer_ids or [state.customer_id], lambda pid: self._line(pid, state, 1.0, "").text,
            state.last_replies,
        )
        if about_order is not None:
            return about_order
        quantity = decision.slots.get("quantity")
        return on_price_ask(decision.intent, text, quantity, state, self.config.flows, now)

    def _line(self, phrase_id: str, state: ConversationState, score: float, why: str, **runtime: str) -> Suggestion:
        entry = self.engine.phrasebook.get(phrase_id)
        text = choose_reply(
            entry, {**self.engine.values, **runtime}, state.last_replies[-1:], state.phrase_uses.get(phrase_id, 0)
        )
        return Suggestion(id=entry.id, text=text, score=score, intent=entry.intent, auto_send=entry.auto_send, why=why,
                          requires=list(entry.requires))

    def _apply(self, decision: Decision, scripted: Scripted, state: ConversationState, now: datetime) -> Decision:
        """Put a flow's line first and decide again with the script gate."""
        if scripted.suggest_only:
            return decision.model_copy(update={"kind": "suggest", "replies": [], "handoff": None,
                                               "reasons": [scripted.why, *decision.reasons]})
        line = self._line(scripted.phrase_id, state, 1.0, scripted.why, **scripted.values)
        suggestions = [line, *[s for s in decision.suggestions if s.id != line.id]][: self.config.policy.top_k]
        for job in scripted.jobs:
            self._schedule(job, state.conversation_id)
        reasons = [scripted.why]
        if scripted.handoff is not None:
            h = scripted.handoff
            trigger = Trigger(h.reason, h.priority, h.group, True, scripted.why)
            return self._hand_off(trigger, decision, state, now, phrase_id=scripted.phrase_id)
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
        with self.store.transaction():
            conversation_id = self.orders.conversation_for_event(event)
            self.store.add_order_event(
                event.order_id, event.customer_id, event.status, at, event.model_dump(mode="json"),
                buyer_ids=event.buyer_ids,
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
            decision = self._commit(state, Decision(kind="none", reasons=reasons), "order", now)
        return decision

    # --- timers -----------------------------------------------------------------------------

    def tick(self) -> list[tuple[str, Decision]]:
        """Fire every due job once and hand idle conversations back.

        Returns (conversation id, decision) for each, in the order they happened.
        """
        produced: list[tuple[str, Decision]] = []

        def fire(job: Job) -> None:
            handler = self.job_handlers.get(job.kind)
            if handler is not None:
                handler(job)
            else:
                produced.append((job.conversation_id, self.handle_timer(job)))

        self.scheduler.run_due(fire)
        for ticket in self.desk.idle():
            released = self.release(ticket.conversation_id, "released: no agent activity")
            produced.append((ticket.conversation_id, released))
        return produced

    def handle_timer(self, job: Job) -> Decision:
        """Fire one job (called inside the scheduler's claim transaction)."""
        now = self.clock.now()
        conversation_id = job.conversation_id
        if job.kind == CHASE_KIND:  # the buyer may have written from another conversation since
            conversation_id = self.orders.chase_target(job.payload["order_id"], job.conversation_id)
        state = self._state(conversation_id, job.payload.get("customer_id", conversation_id), "timer")
        nothing = f"{job.kind}: nothing to send"
        if job.kind == FOLLOWUP_KIND:
            scripted = on_followup_due(state)
        elif job.kind == CHASE_KIND:
            later = quiet_until(now, self.config.flows)
            if later is not None:  # the rules are checked again when the line fires
                return self._defer(job, state, later, "quiet hours", now)
            order_id = job.payload["order_id"]
            scripted = on_chase_due(self.store.order_status(order_id), bool(job.payload.get("consulted")))
            if scripted is not None and not self.orders.reachable(conversation_id):
                scripted, nothing = None, f"{job.kind}: the buyer never wrote, no conversation to chase in"
        else:
            _LOGGER.error("unknown job kind %r (job %s): dropped", job.kind, job.key)
            scripted = None
        if scripted is None:
            decision = Decision(kind="none", reasons=[nothing])
        else:
            line = self._line(scripted.phrase_id, state, 1.0, scripted.why)
            gate = self._gate(state, now)
            blockers = script_blockers(self.config.policy, line, gate)
            if blockers and gate.owner == "bot" and gate.recent_auto_sends >= gate.max_auto_per_minute \
                    and len(blockers) == 1:  # only the rate limit stands in the way: try again in a minute
                return self._defer(job, state, now + timedelta(minutes=1), "rate limit", now)
            decision = Decision(
                kind="suggest" if blockers else "auto_send", intent=line.intent, suggestions=[line],
                replies=[] if blockers else [line], reasons=[scripted.why, *blockers],
            )
        return self._commit(state, decision, "timer", now)

    def _defer(self, job: Job, state: ConversationState, due: datetime, why: str, now: datetime) -> Decision:
        """Fire ``job`` again at ``due`` (a new key: this one is claimed); nothing is sent now."""
        when = due.astimezone(self.config.flows.tz).isoformat()
        self.scheduler.schedule(f"{job.key}@{when}", job.kind, due, job.conversation_id, dict(job.payload))
        return self._commit(state, Decision(kind="none", reasons=[f"{job.kind}: {why}, moved to {when}"]),
                            "timer", now)

    # --- plumbing ---------------------------------------------------------------------------

    def _state(self, conversation_id: str, customer_id: str, platform: str) -> ConversationState:
        saved = self.store.load_state(conversation_id)
        if saved is None:
            return ConversationState(conversation_id=conversation_id, customer_id=customer_id, platform=platform)
        return ConversationState.model_validate(saved)

    def _schedule(self, job: JobSpec, conversation_id: str) -> bool:
        payload = {**job.payload}
        return self.scheduler.schedule(job.key, job.kind, job.due_at, conversation_id, payload)

    def _commit(
        self,
        state: ConversationState,
        decision: Decision,
        trigger: str,
        now: datetime,
        message_row: int | None = None,
    ) -> Decision:
        """Write the turn: replies, decision (pending delivery when there are replies), state."""
        auto = decision.kind in {"auto_send", "hold", "handoff"}
        for line in decision.replies:
            self.store.add_message(state.conversation_id, "out", line.text, now)
            state.note_sent(line.id, line.text, now, auto)
        note_prompt(state, decision.replies)
        record_sent(state, decision.replies)
        decision_id = self.store.add_decision(
            state.conversation_id, now, trigger, decision.kind,
            decision.model_dump(mode="json", exclude={"trace", "id"}),
            message_row=message_row,
            delivery="pending" if decision.replies or decision.kind == "handoff" or (
                message_row is not None and state.platform in self.post_every_decision) else None,
        )
        self.store.save_state(state.conversation_id, state.customer_id, state.model_dump(mode="json"), now)
        return decision.model_copy(update={"id": decision_id})

