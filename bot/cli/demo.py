"""`kefu demo`: the whole loop on one machine in one command.

A server on a temporary store (deleted on exit) with the built-in customer simulator as its
only connector, a sign-in token for a demo agent, and the two URLs to open: the agent sidebar
and the simulator. Two settings change so a newcomer sees everything in a few minutes at any
hour: agents are "on duty" all day (otherwise, outside working hours, the bot answers alone and
going online changes nothing) and the bargaining follow-up comes after ``--followup`` instead of
the shop's 2½ minutes. Everything else is the shop's own config.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
from datetime import timedelta
from pathlib import Path

import click

from bot.cli.core import app_for, main, with_config
from bot.config import Config, ConfigError, TimeWindow, parse_duration


def demo_config(config: Config, folder: Path, followup: timedelta) -> Config:
    """The shop's config on a temporary store, with the simulator as the only connector."""
    return config.model_copy(update={
        "store": config.store.model_copy(update={"path": str(folder / "kefu-demo.sqlite")}),
        "connectors": {"simulator": {"type": "simulator"}},
        "flows": config.flows.model_copy(update={"working_hours": TimeWindow.parse("00:00-23:59"),
                                                 "bargain_followup_after": followup}),
    })


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0: any free port).")
@click.option("--agent", "agent_id", default=None, help="The demo agent [default: the first of handoff.agents].")
@click.option("--followup", default="20s", show_default=True,
              help="When the bargaining follow-up comes (the shop's own setting is usually 2m30s).")
@with_config
def demo(config: Config, host: str, port: int, agent_id: str | None, followup: str) -> None:
    """Try kefu as a customer and as an agent: prints the sidebar and simulator URLs."""
    import logging

    from bot.web.agent.tokens import issue_token

    agents = {a.id: a for a in config.handoff.agents}
    if not agents:
        raise ConfigError("kefu demo needs at least one agent under handoff.agents in config.yaml")
    agent_id = agent_id or next(iter(agents))
    if agent_id not in agents:
        raise ConfigError(f"unknown agent {agent_id!r}; configured agents: {', '.join(agents)}")
    try:
        after = parse_duration(followup)
    except ValueError as exc:
        raise ConfigError(f"--followup: {exc}") from None
    folder = Path(tempfile.mkdtemp(prefix="kefu-demo-"))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        click.echo("loading the intent model (trained on first use, a few seconds)…")
        server = app_for(demo_config(config, folder, after)).server
        token = issue_token(server.store, agent_id)
        asyncio.run(_serve(server, host, port, agents[agent_id], token, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _serve(server, host: str, port: int, agent, token: str, folder: Path) -> None:
    from aiohttp import web

    runner = web.AppRunner(server.app(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    actual = runner.addresses[0][1]
    base = f"http://{host}:{actual}"
    name = agent.name or agent.id
    click.echo(f"kefu demo on {base} — temporary store in {folder} (deleted when you stop with Ctrl-C)")
    click.echo(f"客服工作台 agent sidebar ({name}, {agent.id}):  {base}/agent#token={token}")
    click.echo(f"顾客模拟器 customer simulator:              {base}/agent/simulate#token={token}")
    click.echo("open both side by side; in the sidebar set yourself 在线 to take over from the bot")
    click.echo(f"demo token for {agent.id}:")
    click.echo(token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
