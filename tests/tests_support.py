"""Helpers shared by test modules (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def write_config(folder: Path, **sections) -> Path:
    """A copy of the repo's config.yaml with the model in ``folder`` and sections overridden."""
    raw = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    raw["intents"]["model_path"] = str(folder / "intent-model.joblib")  # sections may override
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


async def until(predicate, timeout: float = 5.0):
    """Background delivery is asynchronous: poll instead of sleeping a fixed time.

    Returns the predicate's first truthy value; raises AssertionError on timeout.
    """
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {getattr(predicate, '__name__', 'it')}")
        await asyncio.sleep(0.02)
