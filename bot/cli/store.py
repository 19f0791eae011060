"""`kefu store check`: the full SQLite ``integrity_check`` of the configured store.

`kefu serve` runs the quick check (``PRAGMA quick_check``) at every start and refuses a damaged
file; this command runs the thorough one and lists what it finds, without changing the file
(it is opened read-only, and no migration runs). Exit 0 when the store is sound, 1 otherwise.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

from bot.app import store_target
from bot.cli.core import main, with_config
from bot.config import Config

#: Problems listed before "… and N more".
SHOWN = 20


def store_file(config: Config) -> str:
    """The store path of a config, as `kefu serve` resolves it (`bot.app.store_target`)."""
    return store_target(config)


@main.group(name="store")
def store_group() -> None:
    """Look after the store file (the SQLite database of conversations, jobs and deliveries)."""


@store_group.command(name="check")
@with_config
def check(config: Config) -> None:
    """Run the full integrity check of the configured store; exit 1 on any problem."""
    path = Path(store_file(config))
    if not path.is_file():
        click.echo(f"error: {path}: no store file there; check store.path in the config", err=True)
        sys.exit(1)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            versions = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] if problems == ["ok"] \
                else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        click.echo(f"error: {path}: not a readable kefu store ({exc}); restore a backup or point store.path "
                   "at another file", err=True)
        sys.exit(1)
    if problems == ["ok"]:
        click.echo(f"ok: {path} passed the integrity check (schema version {versions})")
        return
    for problem in problems[:SHOWN]:
        click.echo(f"{path}: {problem}")
    if len(problems) > SHOWN:
        click.echo(f"… and {len(problems) - SHOWN} more")
    click.echo(f"error: {path}: {len(problems)} problem(s); stop kefu, restore the last backup (or copy what is "
               "readable with `sqlite3 {path} .recover`) before serving again", err=True)
    sys.exit(1)
