"""The auto-replier's service: load a turn, run the pipeline, commit — in one store transaction.

`bot.pipeline` decides a turn (understand once → the steps' proposals → one policy decision);
`Assistant` is the stateful part around it: it accepts and deduplicates messages, loads the
conversation state, gives the pipeline its ports (presence, the queued ticket, order answers),
carries out what was decided — opens the ticket of a handoff, applies the effects of what goes
out, schedules the jobs — and writes everything (the inbound message, the decision, the
replies, the new state, the jobs) in one transaction, so a crash leaves either the whole turn or
none of it. Order events and timers take the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bot.engine import Answer, Engine
from bot.flows import JobSpec, Scripted
from bot.flows.answering import note_sent as note_prompt
from bot.flows.payment import CHASE_KIND, STOPS_CHASE, chase_job, chase_key
from bot.flows.truth import record_sent
from bot.handoff.actions import DeskActions
from bot.handoff.desk import TicketDesk
from bot.handoff.summary import build_summary, headline
from bot.handoff.ticket import Ticket
from bot.handoff.triggers import Trigger
from bot.models import Decision, Handoff, Inbound, OrderEvent, Suggestion
from bot.orders import OrderSource
from bot.orders.desk import OrderDesk
from bot.pipeline.lines import render_line
from bot.pipeline.proposal import Effects
from bot.pipeline.timers import run_job
from bot.pipeline.turn import MessageTurn, gate_of, run_message
from bot.pipeline.understand import understand
from bot.policy import Verdict, script_blockers
from bot.reading import Reading
from bot.scheduler import Clock, Scheduler
from bot.state import ConversationState
from bot.store import Job, Store


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

    # --- messages ---------------------------------------------------------------------------

    def handle_message(self, inbound: Inbound, reading: Reading | None = None) -> Decision | None:
        """Accept and answer one customer message; None for a duplicate delivery.

        ``reading`` is the message already read (`kefu eval` reads its whole file in one batch).
        """
        row, new = self.accept(inbound)
        return self.process(row, reading) if new else None

    def accept(self, inbound: Inbound) -> tuple[int, bool]:
        """Persist an inbound message (deduplicated on the connector's message id) and nothing else.

        The webhook server answers the platform right after this; `process` runs later, and
        `pending` lists what a crash left accepted but unprocessed.
        """
        context = {"attachments": inbound.attachments, "context": inbound.raw}
        return self.store.add_message(
            inbound.conversation_id, "in", inbound.text, self.clock.now(),
            platform=inbound.connector, message_id=inbound.message_id, customer_id=inbound.customer_id,
            raw=context,
        )

    def process(self, row: int, reading: Reading | None = None) -> Decision | None:
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
            u = understand(self.engine, message.text, has_images=bool(message.raw.get("attachments")),
                           reading=reading)
            turn = run_message(self, u, state, now, buyer_ids)
            decision = self._carry_out(turn, state, now)
            decision = self._commit(state, decision, "message", now, message_row=row)
            self.store.mark_processed(row)
        return decision

    def pending(self) -> list[int]:
        """Rows accepted but never processed (a crash came in between), oldest first."""
        return [m.id for m in self.store.unprocessed_messages()]

    def _carry_out(self, turn: MessageTurn, state: ConversationState, now: datetime) -> Decision:
        """Do what the turn decided — the ticket of a handoff, the effects of what goes out — and
        build its one `Decision`."""
        outcome = turn.outcome
        replies, suggestions, reasons, handoff = outcome.replies, outcome.suggestions, outcome.reasons, outcome.handoff
        if outcome.handoff_trigger is not None:
            trigger = outcome.handoff_trigger
            summary = build_summary(state, self.store.recent_messages(state.conversation_id, 10), trigger)
            ticket = self.desk.open(state.conversation_id, state.customer_id, reason=trigger.reason,
                                    priority=trigger.priority, group=trigger.group, summary=summary)
            line = outcome.notice or self.wait_line(ticket, state, now)
            blockers = script_blockers(self.config.policy, line, turn.gate)  # still the bot's turn
            replies = [] if blockers else [line]
            suggestions = [line, *[s for s in suggestions if s.id != line.id]]
            reasons = [*reasons, *blockers]
            state.owner, state.ticket_id, state.pending_handoff = "human", ticket.id, None
            handoff = Handoff(reason=trigger.reason, priority=ticket.priority, group=ticket.group,
                              summary=headline(summary), ticket_id=ticket.id, assignee=ticket.assignee)
        self._apply(outcome.effects, state)
        verdict = Verdict(outcome.kind, list(replies), list(reasons), handoff)
        return turn.answer.decision(verdict, suggestions=suggestions)

    def _apply(self, effects: Effects, state: ConversationState) -> None:
        for name, value in effects.state.items():
            setattr(state, name, value)
        for job in effects.jobs:
            self._schedule(job, state.conversation_id)

    # --- the pipeline's ports ---------------------------------------------------------------

    def escalate(self, ticket: Ticket, trigger: Trigger, state: ConversationState) -> Ticket:
        """Anger or "转人工" on a queued ticket: its priority goes up (same ticket, same group)."""
        return self.desk.open(state.conversation_id, state.customer_id, reason=trigger.reason,
                              priority=trigger.priority, group=ticket.group)

    def order_answer(self, answer: Answer, said: str, buyer_ids: Sequence[str],
                     state: ConversationState) -> Scripted | None:
        return self.orders.scripted(
            answer, said, buyer_ids or [state.customer_id], lambda pid: self._line(pid, state, 1.0, "").text,
            state.last_replies,
        )

    def _line(self, phrase_id: str, state: ConversationState, score: float, why: str, **runtime: str) -> Suggestion:
        return render_line(self.engine, phrase_id, state, why, **runtime)

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
        turn = run_job(self.engine, job, state, now, gate_of(self, state, now), self.store.order_status,
                       job.kind != CHASE_KIND or self.orders.reachable(conversation_id))
        if turn.defer_to is not None:
            return self._defer(job, state, turn.defer_to, turn.defer_why, now)
        self._apply(turn.effects, state)
        return self._commit(state, turn.decision, "timer", now)

    def _defer(self, job: Job, state: ConversationState, due: datetime, why: str, now: datetime) -> Decision:
        """Fire ``job`` again at ``due`` (a new key: this one is claimed); nothing is sent now."""
        when = due.astimezone(self.config.flows.tz).isoformat()
        self.scheduler.schedule(f"{job.key}@{when}", job.kind, due, job.conversation_id, dict(job.payload))
        return self._commit(state, Decision(kind="none", reasons=[f"{job.kind}: {why}, moved to {when}"]),
                            "timer", now)

    # --- plumbing ---------------------------------------------------------------------------

    def _state(self, conversation_id: str, customer_id: str, connector: str) -> ConversationState:
        saved = self.store.load_state(conversation_id)
        if saved is None:
            return ConversationState(conversation_id=conversation_id, customer_id=customer_id, connector=connector)
        return ConversationState.model_validate(saved)

    def _schedule(self, job: JobSpec, conversation_id: str) -> bool:
        payload = {**job.payload}
        return self.scheduler.schedule(job.key, job.kind, job.due_at, conversation_id, payload)

    def delivery_pending(self, decision: Decision, connector: str | None) -> bool:
        """Whether `_commit` writes ``decision`` as pending delivery: replies to send, a handoff
        the platform must hear about, or (``connector``: the connector of the message it answers)
        a message's decision on a connector that is posted every decision."""
        return bool(decision.replies) or decision.kind == "handoff" or (
            connector is not None and connector in self.post_every_decision)

    def _commit(
        self,
        state: ConversationState,
        decision: Decision,
        trigger: str,
        now: datetime,
        message_row: int | None = None,
    ) -> Decision:
        """Write the turn: replies, decision (pending delivery when there are replies), state.

        Only the store's id is added to the decision written (it exists once it is stored).
        """
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
            delivery="pending" if self.delivery_pending(
                decision, state.connector if message_row is not None else None) else None,
        )
        self.store.save_state(state.conversation_id, state.customer_id, state.model_dump(mode="json"), now)
        return decision.model_copy(update={"id": decision_id})
