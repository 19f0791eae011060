"""`kefu agent token AGENT_ID`: a sign-in token for the agent workspace.

Prints the new token as the last line of stdout (scripts take ``| tail -1``); the store keeps
only its scrypt hash, and the agent's previous token stops working.
"""

from __future__ import annotations

import click

from bot.app import build
from bot.cli.core import main, with_config
from bot.config import Config, ConfigError


@main.group()
def agent() -> None:
    """Agents of the workspace (the `handoff.agents` of config.yaml)."""


@agent.command()
@click.argument("agent_id")
@with_config
def token(config: Config, agent_id: str) -> None:
    """Print a new sign-in token for AGENT_ID (older tokens of the agent are revoked)."""
    from bot.web.agent.tokens import issue_token

    known = {a.id: a for a in config.handoff.agents}
    if agent_id not in known:
        raise ConfigError(f"unknown agent {agent_id!r}; configured agents (handoff.agents): "
                          f"{', '.join(known) or 'none'}")
    store = open_config_store(config)
    try:
        value = issue_token(store, agent_id)
    finally:
        store.close()
    who = known[agent_id].name or agent_id
    click.echo(f"token for {who} ({agent_id}); the previous one no longer works. Sign in at /agent with:")
    click.echo(value)


def open_config_store(config: Config):
    """The store `kefu serve` uses (`bot.app.store_target`: store.path, relative to the config file)."""
    return build(config).store
