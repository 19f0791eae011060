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


async def until(predicate, timeout: float = 15.0):
    """Background delivery is asynchronous: poll instead of sleeping a fixed time.

    Returns the predicate's first truthy value; raises AssertionError on timeout. The timeout
    only bounds a FAILING wait (a passing one returns at once), so it is generous: on a loaded
    2-core box a delivery lane can take seconds, and 5 s made passing tests flaky.
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


CHROMIUM = "/usr/bin/chromium"


def need_service(available: bool, reason: str) -> None:
    """Skip a test whose outside service is missing, but only outside CI: in CI it is a failure.

    `.ci/run` installs Debian's chromium and redis-server, so a missing one there is a broken
    set-up, never a reason to pass quietly.
    """
    import os

    import pytest

    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


def launch_chromium(playwright):
    """Debian's Chromium through Playwright (never `playwright install`: it cannot download here)."""
    need_service(Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])


def assistant_and_customer(engine):
    """An Assistant composed as `kefu serve` composes it (in-memory store, a fixed working-hours
    clock, no orders) and ``say(text, n)``: customer b1's message ``m<n>`` in conversation c1."""
    from datetime import datetime

    from bot.app import build
    from bot.engine import Engine
    from bot.models import Inbound
    from bot.scheduler import ManualClock
    from bot.store import SqliteStore

    bot = build(engine.config, engine=Engine(engine.config, engine.classifier, engine.phrasebook),
                store=SqliteStore(":memory:"),
                clock=ManualClock(datetime.fromisoformat("2026-11-23T10:00:00+08:00")), orders=None).assistant

    def say(text, n):
        return bot.handle_message(Inbound(platform="test", conversation_id="c1", customer_id="b1",
                                          message_id=f"m{n}", text=text))

    return bot, say
