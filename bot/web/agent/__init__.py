"""The agent workspace: the JSON API under ``/api/``, the sidebar at ``/agent`` and the customer
simulator at ``/agent/simulate``.

`mount(app, server)` adds all of it to the webhook server's application, so `kefu serve` runs
one process for the bot and the people who take over from it.
"""

from __future__ import annotations

from bot.web.agent.routes import mount

__all__ = ["mount"]
