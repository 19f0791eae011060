"""The composition root: the one place that puts kefu together from a config.

Every entry point — the CLI commands, `kefu serve` (`bot.web.server.build_server`), the
benchmarks and the tests — gets its engine, store, clock, order source, assistant, connectors
and server from `build`, so what a test or a benchmark runs is what a shop runs, and a part
is never wired two ways. Anything can be handed in instead of built (a store, a clock, an
HTTP client, an engine already trained, connector objects): that is how tests and benchmarks
swap a real part for a controlled one without composing the rest by hand.

Parts are built when first used: `kefu suggest` never opens the store file, `kefu report`
never loads the intent model, and connector secrets (``${VAR}``) are read only by commands
that run connectors.

Where the store is (`store_target`) is decided here, once: ``store.path`` in the config is
relative to the config file's folder (plain path or ``sqlite:///relative``), a path typed on
the command line is relative to the working directory, ``:memory:`` and other URLs pass
through to `bot.store.open_store`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Config, ConfigError

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.engine import Engine
    from bot.orders.base import OrderSource
    from bot.scheduler import Clock
    from bot.store import Store
    from bot.web.server import KefuServer
    from connectors.base import Connector
    from connectors.http import Outbound

__all__ = ["MEMORY", "App", "build", "store_target"]

MEMORY = ":memory:"
_SQLITE_URL = "sqlite:///"
#: ``orders=`` default: the source ``orders:`` in the config names (None means "no order source").
CONFIGURED: Any = object()


def store_target(config: Config, override: str | Path | None = None) -> str:
    """Where the store of ``config`` is: what `bot.store.open_store` opens.

    ``override`` is a ``--store`` typed on the command line (relative to the working
    directory); without one, ``store.path`` of the config (relative to the config file).
    """
    raw = str(override if override is not None else config.store.path).strip()
    if raw == MEMORY:
        return raw
    if raw.startswith(_SQLITE_URL):
        raw = raw[len(_SQLITE_URL):]
    elif "://" in raw:
        return raw  # another backend's URL: open_store accepts it or says which ones it knows
    if not raw:
        return str(override if override is not None else config.store.path)  # open_store names the problem
    if override is not None:
        return str(Path(raw).expanduser())
    return str(config.resolve(raw))


class App:
    """One composed kefu. Each part is built on first use, from the config or from what was handed in."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | str | Path | None = None,
        clock: Clock | None = None,
        http: Outbound | None = None,
        engine: Engine | None = None,
        connectors: Mapping[str, Connector | Mapping[str, Any]] | None = None,
        orders: OrderSource | None = CONFIGURED,
        agents_online: bool = False,
        retrain: bool = True,
        on_retrain: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self._store_given = store
        self._owns_store = store is None or isinstance(store, str | Path)
        self._orders_given = orders
        self._connectors_given = connectors
        self._agents_online = agents_online
        self._retrain = retrain
        self._on_retrain = on_retrain
        if clock is not None:
            self.clock = clock
        if http is not None:
            self.http = http
        if engine is not None:
            self.engine = engine

    @cached_property
    def engine(self) -> Engine:
        """Phrasebook and intent model (trained when missing or stale, unless ``retrain=False``)."""
        from bot.engine import Engine

        return Engine.from_config(self.config, retrain=self._retrain, on_retrain=self._on_retrain)

    @cached_property
    def store(self) -> Store:
        from bot.store import open_store

        given = self._store_given
        if given is not None and not isinstance(given, str | Path):
            return given
        target = store_target(self.config, given) if given is not None else store_target(self.config)
        return open_store(target, synchronous=self.config.store.synchronous)

    @cached_property
    def clock(self) -> Clock:
        from bot.scheduler import SystemClock

        return SystemClock(self.config.flows.tz)

    @cached_property
    def http(self) -> Outbound:
        """The one HTTP client of every platform call (connectors, order source, report pushes)."""
        from connectors.http import Outbound

        return Outbound()

    @cached_property
    def orders(self) -> OrderSource | None:
        if self._orders_given is not CONFIGURED:
            return self._orders_given
        from bot.orders.build import order_source

        return order_source(self.config, self.store)

    @cached_property
    def assistant(self) -> Assistant:
        from bot.assistant import Assistant

        return Assistant(self.engine, self.store, self.clock, agents_online=self._agents_online, orders=self.orders)

    @cached_property
    def connectors(self) -> dict[str, Connector]:
        """The ``connectors:`` of the config (or those handed in); ``${VAR}`` secrets are read here."""
        from connectors.base import Connector
        from connectors.registry import ConnectorConfigError, build_connectors

        given = self.config.connectors if self._connectors_given is None else self._connectors_given
        built = {name: c for name, c in given.items() if isinstance(c, Connector)}
        raw = {name: dict(c) for name, c in given.items() if not isinstance(c, Connector)}
        try:
            built.update(build_connectors(raw, self.http))
        except ConnectorConfigError as exc:
            raise ConfigError(str(exc)) from None
        return {name: built[name] for name in given}  # the config's order: the first is the default

    @cached_property
    def server(self) -> KefuServer:
        """The webhook server (`kefu serve`): routes, one worker, timers, the outbox."""
        from bot.web.server import KefuServer

        # connectors first: a missing ${VAR} secret fails at once, not after the intent model loads or trains
        connectors = self.connectors
        # a buyer known only from order events has no chat channel: the server chases only buyers who wrote
        self.assistant.orders.chase_only_reachable = True
        return KefuServer(self.config, self.assistant, connectors, self.http)

    def close(self) -> None:
        """Close the store if this app opened it (a store handed in stays its owner's to close)."""
        if self._owns_store and "store" in self.__dict__:
            self.store.close()


def build(
    config: Config,
    *,
    store: Store | str | Path | None = None,
    clock: Clock | None = None,
    http: Outbound | None = None,
    engine: Engine | None = None,
    connectors: Mapping[str, Connector | Mapping[str, Any]] | None = None,
    orders: OrderSource | None = CONFIGURED,
    agents_online: bool = False,
    retrain: bool = True,
    on_retrain: Callable[..., Any] | None = None,
) -> App:
    """Compose kefu from a validated config; every argument replaces the part it names.

    Args:
        store: a `Store` (kept open: its owner closes it), a path or URL typed by the user
            (relative to the working directory), or None for the config's ``store.path``.
        clock: None for the system clock in the shop's time zone (``flows.tz``).
        http: the HTTP client of platform calls; None for a new `Outbound`.
        engine: an engine already loaded (tests share one trained model); None loads it.
        connectors: settings mappings (as under ``connectors:``) or built connectors, by name;
            None for the config's.
        orders: an order source, None for none; by default the one ``orders:`` configures.
        agents_online: with no agents in the config, whether the one anonymous agent is online.
        retrain, on_retrain: passed to `Engine.from_config` when the engine is loaded here.
    """
    return App(config, store=store, clock=clock, http=http, engine=engine, connectors=connectors, orders=orders,
               agents_online=agents_online, retrain=retrain, on_retrain=on_retrain)
