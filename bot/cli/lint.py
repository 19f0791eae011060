"""`kefu lint`: the whole config checked — config.yaml, phrasebook, training data — file:line each.

Output contract: one ``file:line: reason`` per error on stdout (``ok: …`` first when there is
none), warnings after them, exit 1 when there is any error; ``--json`` prints one JSON document.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bot.cli.core import config_option, main
from bot.config import Config, ConfigError, load_config
from bot.i18n import _
from phrasebook.schema import Phrasebook


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with every problem.")
@click.option("--min-examples", default=20, show_default=True, help="Warn about intents with fewer training examples.")
@config_option
def lint(config_path: Path | None, as_json: bool, min_examples: int) -> None:
    """Check the whole config: config.yaml, phrasebook and training data; file:line for each problem.

    Config problems (unknown keys, bad values, unknown connector types, broken references between
    sections) are listed all at once, like the phrasebook's; then the phrasebook and training files
    are checked (structure, red lines, clashes, platform limits).
    """
    from bot.config import config_warnings
    from bot.lint_report import LintReport, collect, format_text
    from phrasebook.lint_checks import Problem

    try:
        config = load_config(config_path)
    except ConfigError as exc:  # nothing else can be checked without the config: list its problems
        report = LintReport([Problem.parse(p, "config") for p in (exc.problems or [str(exc)])])
    else:
        report = collect(config, min_examples)
        report.problems += [Problem.parse(w, "config", "warning") for w in config_warnings(config)]
        report.problems += [Problem("", None, "warning", "shop_intent", w)
                            for w in shop_intent_warnings(config, report.book, report.data)]
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        out, err = format_text(report)
        for line in out:
            click.echo(line)
        for line in err:
            click.echo(line, err=True)
    if report.errors:
        sys.exit(1)


#: A shop intent with fewer training lines than this is hard to learn: lint says so.
FEW_EXAMPLES = 20


def shop_intent_warnings(config: Config, phrasebook: Phrasebook, data) -> list[str]:
    """What a shop's own intent still lacks: enough examples, a reply (warnings: lint still passes)."""
    warnings = []
    for intent in config.intents.custom:
        count = len(data.examples.get(intent.name, ())) if data is not None else 0
        if count < FEW_EXAMPLES:
            warnings.append(_("intents.custom: {name} has {count} training examples; write at least {want} lines"
                              " of how customers ask it (intents.data_paths)").format(
                name=intent.name, count=count, want=FEW_EXAMPLES))
        if not any(e.intent == intent.name and e.matchable for e in phrasebook):
            warnings.append(_("intents.custom: {name} has no phrasebook entry to suggest").format(name=intent.name))
    return warnings
