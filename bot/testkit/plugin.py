"""The pytest plugin of `bot.testkit`: kefu composed by `bot.app.build`, a client, a fake platform.

Fixtures (see `bot.testkit` for how to use them): ``kefu_config`` (session; override it to
point at your config — by default ``./config.yaml``), ``kefu_engine`` (session: the model is
trained or loaded once), ``kefu_app``, ``kefu_server``, ``kefu_client``, ``kefu_http``,
``fake_platform``. Needs pytest-aiohttp (its ``aiohttp_client`` and ``aiohttp_server``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import App, build
from bot.testkit import engine_under
from bot.testkit.fake_platform import FakePlatform


@pytest.fixture(scope="session")
def kefu_config():
    """The shop config the fixtures compose (override in a conftest.py)."""
    from bot.config import load_config

    return load_config(None)


@pytest.fixture(scope="session")
def kefu_engine(kefu_config):
    """The engine of ``kefu_config``, loaded once per session (trained if its model is missing or stale)."""
    from bot.engine import Engine

    return Engine.from_config(kefu_config)


@pytest.fixture
def kefu_app(kefu_engine, tmp_path: Path):
    """``kefu_app(config=None, **parts) -> App``: `bot.app.build` with the session's model and a fresh store.

    ``config`` defaults to the engine's; a store the factory opened is closed after the test.
    """
    apps: list[App] = []

    def make(config=None, /, **parts) -> App:
        config = config if config is not None else kefu_engine.config
        parts.setdefault("engine", engine_under(config, kefu_engine))
        parts.setdefault("store", tmp_path / ("kefu.sqlite" if not apps else f"kefu-{len(apps)}.sqlite"))
        app = build(config, **parts)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def kefu_server(kefu_app):
    """The server of a default ``kefu_app()`` (the config's connectors)."""
    return kefu_app().server


@pytest.fixture
def kefu_client(aiohttp_client):
    """``await kefu_client(app_or_server)``: an aiohttp test client on its routes; ``client.kefu`` is the server."""

    async def make(target, **kwargs):
        server = target.server if isinstance(target, App) else target
        client = await aiohttp_client(server.app(), **kwargs)
        client.kefu = server
        return client

    return make


@pytest.fixture
async def kefu_http(kefu_client, kefu_server):
    """A test client on ``kefu_server``."""
    return await kefu_client(kefu_server)


@pytest.fixture
async def fake_platform(aiohttp_server) -> FakePlatform:
    """A started `FakePlatform`: point a connector's API at ``fake_platform.url()``."""
    return await FakePlatform().start(aiohttp_server)
