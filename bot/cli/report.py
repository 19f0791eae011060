"""`kefu report`: the shop's daily lists and numbers from the store.

``kefu report [--since DATE] [--until DATE] [--format table|csv|json|html] [--out PATH]
[--store PATH]``: days in the shop's time zone (``flows.timezone``), both ends inclusive,
yesterday by default. JSON is one object with the keys of `bot.reports.REPORT_KEYS`; CSV is
UTF-8 with a BOM (opens in a Chinese spreadsheet); HTML is one self-contained page.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from bot.app import build, store_target
from bot.cli.core import main, with_config
from bot.config import Config

FORMATS = ("table", "csv", "json", "html")


def _store_target(config: Config, store: str | None) -> str:
    """The store to read (`bot.app.store_target`); a report never creates an empty one."""
    target = store_target(config, store or None)
    if "://" in target or target == ":memory:":
        return target
    if not Path(target).exists():
        raise click.ClickException(f"no store at {target}: nothing to report (serve or replay first, or pass --store)")
    return target


@main.command()
@click.option("--since", default=None, metavar="DATE", help="First day, YYYY-MM-DD in shop time [default: yesterday].")
@click.option("--until", default=None, metavar="DATE", help="Last day, inclusive [default: yesterday].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report here instead of to the terminal.",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="PATH",
    help="The SQLite store to read [default: store.path of the config].",
)
@with_config
def report(
    config: Config, since: str | None, until: str | None, fmt: str, out: Path | None, store_url: str | None
) -> None:
    """Inquiry log, unpaid orders, conversion, response times, handoffs, intents, unanswered questions."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot.engine import load_shop_phrasebook
    from bot.reports import build_report, render_csv, render_html, render_table
    from bot.reports.period import PeriodError, resolve_period
    from phrasebook.matcher import Matcher

    now = datetime.now(config.flows.tz)
    try:
        period = resolve_period(since, until, config.flows.tz, now)
    except PeriodError as exc:
        raise click.UsageError(str(exc)) from None
    store = build(config, store=_store_target(config, store_url)).store
    matcher = Matcher(load_shop_phrasebook(config))
    err = Console(stderr=True)
    try:
        with Progress(TextColumn("读取消息"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
            task = bar.add_task("read", total=None)
            result = build_report(
                store,
                config,
                period,
                now,
                matcher=matcher,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        store.close()
    if fmt == "table":
        if out is None:
            render_table.render(result, Console())
        else:
            with out.open("w", encoding="utf-8") as fh:
                render_table.render(result, Console(file=fh, width=160, color_system=None))
        return
    if fmt == "json":
        text = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    elif fmt == "csv":
        text = render_csv.render(result)
    else:
        text = render_html.render(result)
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8", newline="")
        click.echo(f"{period.label()} 报表已写入 {out}", err=True)
