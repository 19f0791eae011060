"""Public test fixtures for kefu and for shops that test their own set-up.

Register the pytest plugin from a ``conftest.py``::

    pytest_plugins = ["bot.testkit.plugin"]

and a test gets kefu composed exactly as `kefu serve` composes it (`bot.app.build`), with the
parts a test controls handed in:

- ``kefu_app(config=None, **parts)``: an `App` (engine, store, clock, assistant, connectors,
  server); the trained model of the session is shared, the store is a fresh file in the test's
  ``tmp_path`` unless ``store=`` says otherwise; ``parts`` are `bot.app.build`'s arguments;
- ``kefu_client(app_or_server)``: an aiohttp test client on its routes (``client.kefu`` is the
  `KefuServer`); ``kefu_server`` / ``kefu_http``: the default app's server and a client on it;
- ``fake_platform``: a started `FakePlatform` recording the calls it gets, with canned answers.

`configured` copies a config with some settings changed, as tests need one variant each.
"""

from __future__ import annotations

from typing import Any

from bot.config import Config
from bot.testkit.fake_platform import Call, FakePlatform

__all__ = ["Call", "FakePlatform", "configured", "engine_under"]


def configured(config: Config, **sections: dict[str, Any]) -> Config:
    """A deep copy of ``config`` with ``section={key: value}`` settings replaced (the original is untouched)."""
    copy = config.model_copy(deep=True)
    for section, values in sections.items():
        part = getattr(copy, section)
        for key, value in values.items():
            setattr(part, key, value)
    return copy


def engine_under(config: Config, engine):
    """``engine``'s trained model and phrasebook under ``config`` (no retraining: a variant of the settings)."""
    if engine.config is config:
        return engine
    from bot.engine import Engine

    return Engine(config, engine.classifier, engine.phrasebook)
