"""The whole `config.yaml` (`Config`) and the checks that span its sections."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from bot.config.base import Section as _Section
from bot.config.conversation import FlowSettings, IntentSettings, PhrasebookSettings, PolicySettings
from bot.config.handoff import HandoffSettings
from bot.config.service import OrderSettings, OutboxSettings, ReportSettings, ServerSettings, StoreSettings
from bot.config.shop import Shop
from intents.labels import IntentSet


def _did_you_mean(unknown: list[str], known: Iterable[str]) -> str:
    """`` (did you mean 'lost_parcel'?)`` for the first typo that is close to a known name."""
    import difflib

    for name in unknown:
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
        if close:
            return f" (did you mean {close[0]!r}?)"
    return ""


class Config(_Section):
    """The whole `config.yaml`."""

    shop: Shop = Field(default_factory=Shop)
    intents: IntentSettings = Field(default_factory=IntentSettings)
    phrasebook: PhrasebookSettings = Field(default_factory=PhrasebookSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    flows: FlowSettings = Field(default_factory=FlowSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    #: name (the {name} in /webhook/{name}) → {type: …, settings of that platform}; each
    #: connector validates its own settings (connectors/registry.py).
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Folder the config was read from; relative paths in it are relative to this.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    #: (key path, reason) → ``file:line: key: reason``, set by `load_config` for later checks.
    _locate: Any = PrivateAttr(default=None)

    @field_validator("base_dir", mode="before")
    @classmethod
    def _absolute(cls, value: object) -> Path:
        return Path(value).resolve()

    @model_validator(mode="after")
    def _intent_references(self) -> Config:
        """Every intent the config names must exist: a typo would silently switch a rule off."""
        intents = self.intents.intent_set()
        unknown = [n for n in self.policy.handoff_intents if n not in intents.groups]
        if unknown:
            raise ValueError(f"policy.handoff_intents: unknown intent {', '.join(map(repr, unknown))}"
                             f"{_did_you_mean(unknown, intents.groups)}")
        off = [n for n in self.policy.handoff_intents if n in intents.disabled]
        if off:
            raise ValueError(f"policy.handoff_intents: {', '.join(off)} is switched off in intents.disabled")
        wanted = [c.name for c in self.intents.custom if c.handoff and c.name not in self.policy.handoff_intents]
        self.policy.handoff_intents = [*self.policy.handoff_intents, *wanted]
        self.policy._aftersale = intents.aftersale
        return self

    def intent_set(self) -> IntentSet:
        """The intents this shop recognises: the defaults, its own, minus the switched-off ones."""
        return self.intents.intent_set()

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else self.base_dir / p
