"""Shared fixtures: a shop config pointing at a per-session model file, and the real engine.

The engine fixture trains the default model once per test session (a few seconds) into a temp
folder, so tests never touch the user's cache and never depend on a model left by a
previous run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.config import load_config

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def write_config(folder: Path, **sections) -> Path:
    """A copy of the repo's config.yaml with the model in ``folder`` and sections overridden."""
    raw = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    raw["intents"]["model_path"] = str(folder / "intent-model.joblib")
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kefu")


@pytest.fixture(scope="session")
def config_path(session_dir) -> Path:
    return write_config(session_dir)


@pytest.fixture(scope="session")
def engine(config_path):
    from bot.engine import Engine

    return Engine.from_config(load_config(config_path))
