"""`kefu outbox`: what waits to be delivered, what ended in dead-letter, and putting it right.

``kefu outbox`` lists the counts per status and every item in dead-letter (or ``--status S``,
``--json`` for one JSON object); ``kefu outbox retry [ID…] [--all]`` puts dead items back in
their lanes with a fresh retry budget — a running ``kefu serve`` picks them up within a second;
``kefu outbox drop ID… [--all]`` gives up on them (never sent, their decisions stay marked failed).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from bot.app import build
from bot.cli.core import main, with_config
from bot.config import Config
from bot.outbox import STATUSES, Outbox


def _outbox(config: Config) -> Outbox:
    from bot.outbox import outbox_for

    return outbox_for(build(config).store)  # SQLite rows, or Redis (bot.store.redis_outbox)


@main.group(name="outbox", invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), default="dead", show_default=True,
              help="Which items to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def outbox_group(config: Config, status: str, as_json: bool) -> None:
    """List deliveries waiting or in dead-letter; `retry` or `drop` them."""
    if click.get_current_context().invoked_subcommand is None:
        show(config, status, as_json)


def show(config: Config, status: str, as_json: bool) -> None:
    outbox = _outbox(config)
    try:
        counts, items = outbox.counts(), outbox.items(status)
    finally:
        outbox.store.close()
    if as_json:
        click.echo(json.dumps({"counts": counts, "items": [i.as_json() for i in items]}, ensure_ascii=False))
        return
    click.echo("  ".join(f"{name} {n}" for name, n in counts.items()))
    if not items:
        click.echo(f"no items {status}")
        return
    click.echo(f"{'id':>6}  {'lane':<24} {'conversation':<28} {'tries':>5}  {'updated':<20} last error")
    for item in items:
        updated = item.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{item.id:>6}  {item.lane[:24]:<24} {item.conversation_id[:28]:<28} {item.attempts:>5}  "
                   f"{updated:<20} {item.last_error or ''}")
    if status == "dead":
        click.echo("retry: kefu outbox retry ID… (or --all) · give up: kefu outbox drop ID… (or --all)")


def _ids(ids: tuple[int, ...], every: bool) -> list[int] | None:
    if bool(ids) == every:
        click.echo("error: name the item ids, or --all (not both)", err=True)
        sys.exit(1)
    return None if every else list(ids)


@outbox_group.command(name="retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every item in dead-letter.")
@with_config
def retry(config: Config, ids: tuple[int, ...], every: bool) -> None:
    """Put dead (or dropped) items back in their lanes with a fresh retry budget."""
    outbox = _outbox(config)
    try:
        n = outbox.retry(_ids(ids, every), datetime.now(UTC))
    finally:
        outbox.store.close()
    click.echo(f"{n} item(s) back in their lanes; a running kefu serve delivers them within a second")
    if ids and n < len(ids):
        click.echo(f"error: {len(ids) - n} id(s) are not in dead-letter (see kefu outbox --status …)", err=True)
        sys.exit(1)


@outbox_group.command(name="drop")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every item in dead-letter.")
@with_config
def drop(config: Config, ids: tuple[int, ...], every: bool) -> None:
    """Give up on items: never sent, their decisions stay marked failed."""
    outbox = _outbox(config)
    try:
        n = outbox.drop(_ids(ids, every), datetime.now(UTC))
    finally:
        outbox.store.close()
    click.echo(f"{n} item(s) dropped")
    if ids and n < len(ids):
        click.echo(f"error: {len(ids) - n} id(s) are not waiting or in dead-letter", err=True)
        sys.exit(1)
