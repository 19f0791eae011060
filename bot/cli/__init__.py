"""The `kefu` command line: one group, commands in the modules of this package.

``core`` holds the first commands (suggest, train, eval, replay, serve) and the
shared helpers (``with_config``, ``config_option``). A new command lives in its own module here
that decorates ``main`` from ``bot.cli.core``, and is imported below so it registers.
"""

from __future__ import annotations

from bot.cli import (
    agent,  # noqa: F401  (registers `kefu agent`)
    chat,  # noqa: F401  (registers `kefu chat`)
    demo,  # noqa: F401  (registers `kefu demo`)
    init,  # noqa: F401  (registers `kefu init`)
    lint,  # noqa: F401  (registers `kefu lint`)
    outbox,  # noqa: F401  (registers `kefu outbox`)
    report,  # noqa: F401  (registers `kefu report`)
    store,  # noqa: F401  (registers `kefu store check`)
    test,  # noqa: F401  (registers `kefu test`)
)
from bot.cli.core import REPLAY_KEYS, main, suggest_payload, with_config

__all__ = ["REPLAY_KEYS", "main", "suggest_payload", "with_config"]
