"""A due job as a turn: the flow registered for its kind, the policy once.

When only the rate limit stands in the way the job fires again a minute later; a chase due in
quiet hours waits for their end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.flows.payment import CHASE_KIND, quiet_until
from bot.models import Decision
from bot.pipeline.lines import render_line
from bot.pipeline.proposal import NO_EFFECTS, Effects
from bot.pipeline.registry import JobInput, job_flow
from bot.policy import Gate, script_blockers
from bot.state import ConversationState
from bot.store import Job

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimerTurn:
    """What a due job does: a decision to write (with its effects), or fire again at ``defer_to``."""

    decision: Decision | None = None
    effects: Effects = NO_EFFECTS
    defer_to: datetime | None = None
    defer_why: str = ""


def run_job(engine, job: Job, state: ConversationState, now: datetime, gate: Gate, order_status,
            reachable: bool) -> TimerTurn:
    """Fire one job in its conversation."""
    config = engine.config
    nothing = f"{job.kind}: nothing to send"
    flow = job_flow(job.kind)
    if flow is None:
        _LOGGER.error("unknown job kind %r (job %s): dropped", job.kind, job.key)
        return TimerTurn(Decision(kind="none", reasons=[nothing]))
    if job.kind == CHASE_KIND:
        later = quiet_until(now, config.flows)
        if later is not None:  # the rules are checked again when the line fires
            return TimerTurn(defer_to=later, defer_why="quiet hours")
    scripted = flow(JobInput(dict(job.payload), state, order_status))
    if scripted is not None and job.kind == CHASE_KIND and not reachable:
        scripted, nothing = None, f"{job.kind}: the buyer never wrote, no conversation to chase in"
    if scripted is None:
        return TimerTurn(Decision(kind="none", reasons=[nothing]))
    for name, value in scripted.noted.items():
        setattr(state, name, value)
    line = render_line(engine, scripted.phrase_id, state, scripted.why)
    blockers = script_blockers(config.policy, line, gate)
    if blockers and gate.owner == "bot" and gate.recent_auto_sends >= gate.max_auto_per_minute \
            and len(blockers) == 1:  # only the rate limit stands in the way: try again in a minute
        return TimerTurn(defer_to=now + timedelta(minutes=1), defer_why="rate limit")
    decision = Decision(
        kind="suggest" if blockers else "auto_send", intent=line.intent, suggestions=[line],
        replies=[] if blockers else [line], reasons=[scripted.why, *blockers],
    )
    effects = NO_EFFECTS if blockers else Effects(dict(scripted.on_sent), scripted.jobs)
    return TimerTurn(decision, effects)
