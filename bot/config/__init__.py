"""The shop's settings: `config.yaml`, validated completely, once, at load.

Every section is a pydantic model with ``extra="forbid"`` so that a typo in a key fails at
start-up with one sentence naming the key (STYLE lesson 8); durations and time windows are
parsed into typed values here, once; cross-references (handoff intents, connectors) are checked
here. Secrets never live in the file: a value written as ``${ENV_VAR}`` stays a reference until
the server starts (`expand_env`), so lint, chat and eval work on a machine that holds none.

The package, by what each module holds: `bot.config.times` (durations, `TimeWindow`),
`bot.config.shop`, `bot.config.conversation` (intents, phrasebook, policy, flows),
`bot.config.handoff`, `bot.config.service` (server, outbox, orders, store, reports),
`bot.config.model` (`Config`) and `bot.config.loading` (`load_config`). Import from
``bot.config``: every name below is its public surface.
"""

from __future__ import annotations

from bot.config.base import Section
from bot.config.conversation import (
    DEFAULT_HANDOFF_INTENTS,
    FlowSettings,
    IntentSettings,
    PhrasebookSettings,
    PolicySettings,
    ShopIntent,
)
from bot.config.handoff import DEFAULT_SLA, Agent, HandoffSettings
from bot.config.loading import SERVER_SECRETS, config_warnings, expand_env, load_config
from bot.config.model import Config
from bot.config.service import (
    OrderSettings,
    OutboxSettings,
    ReportSettings,
    ReportTarget,
    ServerSettings,
    StoreSettings,
)
from bot.config.shop import PLATFORM_NAMES, RUNTIME_PLACEHOLDERS, Shop
from bot.config.times import TimeWindow, in_window, parse_clock, parse_duration, parse_hours, positive_duration
from bot.errors import ConfigError

__all__ = [
    "DEFAULT_HANDOFF_INTENTS",
    "DEFAULT_SLA",
    "PLATFORM_NAMES",
    "RUNTIME_PLACEHOLDERS",
    "SERVER_SECRETS",
    "Agent",
    "Config",
    "ConfigError",
    "FlowSettings",
    "HandoffSettings",
    "IntentSettings",
    "OrderSettings",
    "OutboxSettings",
    "PhrasebookSettings",
    "PolicySettings",
    "ReportSettings",
    "ReportTarget",
    "Section",
    "ServerSettings",
    "Shop",
    "ShopIntent",
    "StoreSettings",
    "TimeWindow",
    "config_warnings",
    "expand_env",
    "in_window",
    "load_config",
    "parse_clock",
    "parse_duration",
    "parse_hours",
    "positive_duration",
]
