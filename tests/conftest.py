"""Shared fixtures: a shop config pointing at a per-session model file, and the real engine.

The engine fixture trains the default model once per test session (a few seconds) into a temp
folder, so tests never touch the user's cache and never depend on a model left by a
previous run. The composed app, the test client and the fake platform come from the public
plugin `bot.testkit.plugin` (``kefu_app``, ``kefu_client``, ``fake_platform``), fed with this
config and engine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from bot.config import load_config
from tests_support import write_config

pytest_plugins = ["bot.testkit.plugin", "redis_support"]  # redis_support: the redis_server / redis_url fixtures

# jieba's dictionary cache goes to a throw-away folder, never the user's ~/.cache/kefu
os.environ.setdefault("KEFU_CACHE_DIR", tempfile.mkdtemp(prefix="kefu-test-cache-"))
# messages are asserted in English unless a test asks for Chinese (tests/test_i18n.py)
os.environ["KEFU_LANG"] = "en"


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kefu")


@pytest.fixture(scope="session")
def config_path(session_dir) -> Path:
    # deliveries that fail are retried quickly, so tests of failures finish in well under a second
    return write_config(session_dir, outbox={"attempts": 3, "backoff": 0.1, "max_backoff": 0.5})


@pytest.fixture(scope="session")
def kefu_config(config_path):
    return load_config(config_path)


@pytest.fixture(scope="session")
def engine(kefu_engine):
    """The real engine of the test config, trained once per session (`bot.testkit.plugin`)."""
    return kefu_engine
