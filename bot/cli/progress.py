"""What the CLI shows while it trains: why, a live progress display, and a closing line.

Training takes seconds to a minute; a command that goes quiet that long looks hung. Output goes
to stderr so `--json` output on stdout stays one clean document. On a terminal the display is
live (rich); elsewhere only the opening and closing lines are printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bot.i18n import _, localise


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )


@contextmanager
def training(reason: str | None = None, examples: int | None = None) -> Iterator[None]:
    """Wrap one training run: say why (for a retrain), show progress, close with the time taken."""
    console = Console(stderr=True)
    if reason:
        click.echo(_("retraining the intent model: {reason}").format(reason=localise(reason)), err=True)
    what = _("training on {n} examples").format(n=examples) if examples else _("training the intent model")
    started = time.perf_counter()
    with _progress(console) as progress:
        progress.add_task(what, total=None)
        yield
    click.echo(_("intent model trained in {s:.1f}s").format(s=time.perf_counter() - started), err=True)


def retraining(reason: str):
    """The `on_retrain` hook every command that loads the engine passes (see Engine.from_config)."""
    return training(reason)
