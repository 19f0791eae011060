"""The composition root (`bot.app.build`): one way to put kefu together, parts replaceable,
built only when used, and one rule for where the store is."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot.app import build, store_target
from bot.config import ConfigError
from bot.orders.store_source import StoreOrderSource
from bot.scheduler import ManualClock, SystemClock
from bot.store import SqliteStore
from bot.web.server import KefuServer, build_server
from connectors.generic import GenericConnector
from connectors.http import Outbound


def test_every_part_is_wired_to_the_same_store_clock_and_http(engine, tmp_path):
    app = build(engine.config, engine=engine, store=tmp_path / "kefu.sqlite",
                connectors={"shop": {"type": "generic", "secret": "s" * 16}})
    server = app.server
    assert isinstance(server, KefuServer)
    assert server.assistant is app.assistant and server.store is app.store is app.assistant.store
    assert app.assistant.clock is app.clock and isinstance(app.clock, SystemClock)
    assert app.clock.now().tzinfo is engine.config.flows.tz  # the shop's time zone
    assert server.http is app.http and app.connectors["shop"].http is app.http
    assert app.assistant.engine is engine
    assert app.assistant.orders.chase_only_reachable is True  # the server chases only buyers who wrote
    app.close()


def test_parts_handed_in_are_used_and_a_store_handed_in_stays_open(engine, tmp_path):
    store, http = SqliteStore(tmp_path / "mine.sqlite"), Outbound(retries=0)
    clock = ManualClock(datetime(2026, 1, 5, 10, tzinfo=engine.config.flows.tz))
    connector = GenericConnector("shop", GenericConnector.Settings(secret="s" * 16), http)
    orders = StoreOrderSource(store)
    app = build(engine.config, engine=engine, store=store, clock=clock, http=http, connectors={"shop": connector},
                orders=orders)
    assert app.store is store and app.clock is clock and app.http is http and app.connectors == {"shop": connector}
    assert app.assistant.orders.source is orders and app.assistant.clock.now() == clock.now()
    app.close()
    assert store.decisions() == []  # still open: its owner closes it
    store.close()


def test_parts_are_built_only_when_used(config_path, tmp_path, monkeypatch):
    from bot.config import load_config

    config = load_config(config_path)
    monkeypatch.delenv("KEFU_GENERIC_SECRET", raising=False)  # config.yaml's connector needs it
    app = build(config, store=tmp_path / "never.sqlite")
    assert not (tmp_path / "never.sqlite").exists()
    with pytest.raises(ConfigError, match="KEFU_GENERIC_SECRET"):
        _ = app.connectors  # read only by commands that run connectors
    assert not (tmp_path / "never.sqlite").exists()


def test_build_server_is_the_composition_root(config_path, engine, monkeypatch, tmp_path):
    from bot.config import load_config

    monkeypatch.setenv("KEFU_GENERIC_SECRET", "s" * 16)
    config = load_config(config_path)
    config.store.path = str(tmp_path / "served.sqlite")
    server = build_server(config, retrain=False)
    assert list(server.connectors) == list(config.connectors)
    assert server.store.path == tmp_path / "served.sqlite"
    assert server.assistant.orders.chase_only_reachable is True
    server.store.close()


@pytest.mark.parametrize("path, expected", [
    ("kefu.sqlite", "{base}/kefu.sqlite"),
    ("data/kefu.sqlite", "{base}/data/kefu.sqlite"),
    ("sqlite:///data/kefu.sqlite", "{base}/data/kefu.sqlite"),
    ("sqlite:////var/lib/kefu.sqlite", "/var/lib/kefu.sqlite"),
    ("/var/lib/kefu.sqlite", "/var/lib/kefu.sqlite"),
    ("~/kefu.sqlite", "{home}/kefu.sqlite"),
    (":memory:", ":memory:"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
])
def test_the_store_of_a_config_is_relative_to_the_config_file(engine, path, expected):
    config = engine.config.model_copy(deep=True)
    config.store.path = path
    assert store_target(config) == expected.format(base=config.base_dir, home=Path.home())


def test_a_store_typed_on_the_command_line_is_relative_to_the_working_directory(engine):
    assert store_target(engine.config, "out/kefu.sqlite") == "out/kefu.sqlite"
    assert store_target(engine.config, "sqlite:///out/kefu.sqlite") == "out/kefu.sqlite"
    assert store_target(engine.config, "~/k.sqlite") == str(Path.home() / "k.sqlite")
    assert store_target(engine.config, ":memory:") == ":memory:"


def test_cli_store_commands_use_the_same_rule(engine):
    from bot.cli.store import store_file

    config = engine.config.model_copy(deep=True)
    config.store.path = "sqlite:///data/kefu.sqlite"
    assert store_file(config) == store_target(config) == str(config.base_dir / "data" / "kefu.sqlite")
