"""Who takes over from the bot (`handoff:`): agents, their queues, SLAs, when the bot takes back."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from bot.config.base import Section as _Section
from bot.config.base import require_unique
from bot.config.times import positive_duration


class Agent(_Section):
    """A human agent: which queues they take and how many conversations at once."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.@-]+$")
    name: str = ""
    groups: list[Literal["presale", "aftersale", "sales"]] = Field(min_length=1)
    capacity: int = Field(5, ge=1)


DEFAULT_SLA = {"presale": timedelta(minutes=3), "aftersale": timedelta(minutes=10), "sales": timedelta(minutes=30)}


class HandoffSettings(_Section):
    """Who takes over from the bot, how fast, and when the bot gets the conversation back."""

    agents: list[Agent] = Field(default_factory=list)
    #: Time to first human answer, per group; a ticket past it is flagged as breached.
    sla: dict[Literal["presale", "aftersale", "sales"], timedelta] = Field(default_factory=lambda: dict(DEFAULT_SLA))
    #: This many unsure turns in a row and a person takes over.
    low_confidence_turns: int = Field(3, ge=1)
    #: A conversation a person owns returns to the bot after this long without agent activity.
    release_after: timedelta = timedelta(minutes=30)
    #: Strong negativity: the detector's score from which a customer counts as angry even
    #: without anger words (0–1; an ordinary complaint scores 0.5–0.8).
    anger_threshold: float = Field(0.95, ge=0, le=1)

    @field_validator("release_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return positive_duration(value)

    @field_validator("sla", mode="before")
    @classmethod
    def _sla(cls, value: object) -> object:
        # a shop that sets one queue's SLA keeps the defaults of the others
        if isinstance(value, dict):
            return {**DEFAULT_SLA, **{k: positive_duration(v) for k, v in value.items()}}
        return value

    @field_validator("agents")
    @classmethod
    def _unique_agents(cls, agents: list[Agent]) -> list[Agent]:
        require_unique([a.id for a in agents], "agent ids")
        return agents
