"""What a step of the turn proposes, and what carrying it out would change.

A step never writes: it returns a `Proposal` — say this line, hand over to a person, only
suggest — with the `Effects` that follow *if* the proposal is carried out (state fields, jobs).
`bot.pipeline.decide` picks what goes out and returns an `Outcome` holding only the effects of
what really does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.flows import JobSpec
from bot.handoff.triggers import Trigger
from bot.models import DecisionKind, Handoff, Suggestion


@dataclass(frozen=True)
class Effects:
    """Changes a proposal makes when it is carried out: state fields (field → value) and jobs."""

    state: Mapping[str, Any] = field(default_factory=dict)
    jobs: tuple[JobSpec, ...] = ()

    def __add__(self, other: Effects) -> Effects:
        return Effects({**self.state, **other.state}, (*self.jobs, *other.jobs))


NO_EFFECTS = Effects()


@dataclass(frozen=True)
class Proposal:
    """One step's answer to the turn.

    ``line``: a scripted line to send (the policy may keep it as a suggestion); ``handoff``: a
    person takes over (``line``, when given, is the notice, else the desk's wait line);
    ``hold``: nothing goes out alone, the agent gets the suggestions (``reasons`` say why);
    ``fallback``: what happens instead when ``line`` may not go out (intake → the handoff).
    ``effects`` apply only when the proposal is carried out; ``keep`` caps the suggestions kept
    after the line (None: all of the engine's).
    """

    step: str
    why: str = ""
    line: Suggestion | None = None
    handoff: Trigger | None = None
    hold: bool = False
    reasons: tuple[str, ...] = ()
    fallback: Proposal | None = None
    effects: Effects = NO_EFFECTS
    keep: int | None = None
    #: A hold also shows the policy's reasons about the engine's answer after its own.
    answer_reasons: bool = False
    #: The line answers the message's own intent (an intake question starting a case): it goes out
    #: alone only when the intent is as sure as any auto-sent answer (policy.auto_intent_min).
    on_intent: bool = False


@dataclass(frozen=True)
class Outcome:
    """The decision on a turn before it is written: what goes out, and the effects that follow.

    ``handoff_trigger`` is set when a person takes over: the service opens (or joins) the
    ticket, and ``notice`` (or the desk's wait line) is the line that tells the customer.
    """

    kind: DecisionKind
    replies: list[Suggestion] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    handoff: Handoff | None = None
    handoff_trigger: Trigger | None = None
    notice: Suggestion | None = None
    effects: Effects = NO_EFFECTS
