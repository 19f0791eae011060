"""The extra outputs of `kefu eval`: cross-validation, the errors file and the HTML report.

Kept beside `bot.evaluate` (which computes the headline figures) so the evaluation itself
stays one small module; `kefu eval` calls these when asked for ``--cross-validation``,
``--errors`` or ``--html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.config import Config
from bot.engine import Engine, load_shop_training_set
from bot.evaluate import Example, run_examples
from bot.suites.crossval import CrossValidationError, cross_validate
from bot.suites.intents import details, write_errors


def cross_validation_report(config: Config, folds: int, seed: int, quiet: bool = False) -> dict:
    """Cross-validate on the shop's training examples, with a rich progress bar on stderr."""
    from click import ClickException
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    data = load_shop_training_set(config)
    console = Console(stderr=True)
    columns = (TextColumn("cross-validation"), BarColumn(), MofNCompleteColumn(), TextColumn("folds"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, disable=quiet or not sys.stderr.isatty(), transient=True) as bar:
        task = bar.add_task("folds", total=folds)
        try:
            return cross_validate(
                data, folds=folds, seed=seed, min_confidence=config.intents.min_confidence,
                min_margin=config.intents.min_margin, auto_intent_min=config.policy.auto_intent_min,
                progress=lambda done, total: bar.update(task, completed=done),
            )
        except CrossValidationError as exc:
            raise ClickException(str(exc)) from exc


def details_report(engine: Engine, examples: list[Example], report: dict, decisions=None) -> None:
    """Add per-message details (confusion, histogram, errors, lines reached) to a `kefu eval` report."""
    decisions = decisions if decisions is not None else run_examples(engine, examples)
    report["details"] = details([e.text for e in examples], [e.intent for e in examples],
                                [d.intent for d in decisions], [d.intent_score for d in decisions])
    report["details"]["reached"] = sorted({s.id for d in decisions for s in [*d.replies, *d.suggestions[:1]]})


def write_outputs(config: Config, engine: Engine | None, report: dict, errors_path: Path | None,
                  html_path: Path | None) -> None:
    if errors_path is not None:
        write_errors(errors_path, report["details"]["errors"])
    if html_path is None:
        return
    from bot.engine import load_shop_phrasebook
    from bot.lint_report import MIN_EXAMPLES
    from bot.suites.coverage import coverage
    from bot.suites.html import render_report

    book = engine.phrasebook if engine is not None else load_shop_phrasebook(config)
    cv = report.get("cross_validation")
    title = f"kefu eval — {config.shop.shop_name}"
    summary = [("shop", config.shop.shop_name), ("messages", str(report["n"])),
               ("accuracy", f"{report['accuracy']:.3f}"), ("macro-F1", f"{report['macro_f1']:.3f}"),
               ("method", f"{cv['folds']}-fold cross-validation, seed {cv['seed']}" if cv else "labelled file")]
    reached = report["details"].get("reached", [])
    html_path.write_text(render_report(
        title, summary, intents=report,
        coverage=coverage(book, reached, load_shop_training_set(config).examples, MIN_EXAMPLES),
    ), encoding="utf-8")


def format_histogram(rows: list[dict]) -> str:
    """The confidence histogram as text bars (right ▇, wrong ░)."""
    top = max((r["right"] + r["wrong"] for r in rows), default=1) or 1
    lines = ["confidence     right  wrong"]
    for r in rows:
        bar = "▇" * round(30 * r["right"] / top) + "░" * round(30 * r["wrong"] / top)
        lines.append(f"{r['low']:.1f}–{r['high']:.1f}  {r['right']:>7}{r['wrong']:>7}  {bar}")
    return "\n".join(lines)
