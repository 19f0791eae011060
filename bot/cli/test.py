"""`kefu test`: run conversation suites against the shop's phrasebook, intents and policy.

``kefu test [PATHS…] [--junit FILE] [--html FILE] [--json] [--baseline REF] [--data FILE]``
runs every case of the suite files (or folders) given — the default suite that ships with
kefu when none is — prints one row per case with the first difference of each failure, and
exits 1 when any case fails. ``--json`` prints one JSON document instead of the table.
``--baseline REF`` runs the same cases (and the ``--data`` evaluation set) on the shop's files
at REF too and lists every case and message whose answer changed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from bot.cli.core import engine_for, main, with_config
from bot.config import Config
from bot.engine import Engine
from bot.evaluate import read_examples, run_examples
from bot.i18n import _, localise
from bot.lint_report import MIN_EXAMPLES
from bot.suites import DEFAULT_SUITE_DIR
from bot.suites.baseline import BaselineError
from bot.suites.loader import SuiteError, load_suites
from bot.suites.runner import run_suites
from intents.dataset import TrainingDataError
from phrasebook.loader import PhrasebookError


def _load_cases(engine: Engine, paths: tuple[Path, ...]):
    try:
        return load_suites(paths or (DEFAULT_SUITE_DIR,), intents=engine.classifier.intents,
                           phrase_ids=[e.id for e in engine.phrasebook])
    except SuiteError as exc:
        for problem in exc.problems:
            click.echo(localise(problem), err=True)
        click.echo(_("error: {n} problem(s) in the test suites").format(n=len(exc.problems)), err=True)
        sys.exit(1)


@main.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write JUnit XML for CI.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write one self-contained HTML report.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
@click.option("--baseline", "baseline", default=None, metavar="REF",
              help="A folder or git revision of the shop's files: list every case and message whose answer changed.")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='An evaluation set (JSON lines {"text", "intent"}) for the report and the --baseline diff.')
@click.option("--min-examples", default=MIN_EXAMPLES, show_default=True,
              help="Coverage: intents with fewer training examples are listed.")
@with_config
def test_command(config: Config, paths: tuple[Path, ...], junit_path: Path | None, html_path: Path | None,
                 as_json: bool, baseline: str | None, data_path: Path | None, min_examples: int) -> None:
    """Run conversation test suites (default: the suite that ships with kefu)."""
    engine = engine_for(config)
    cases = _load_cases(engine, paths)
    examples = read_examples(data_path, engine.classifier.intents) if data_path else []
    started = time.perf_counter()
    results = run_suites(engine, cases)
    seconds = time.perf_counter() - started
    decisions = run_examples(engine, examples) if examples else []
    diff = None
    if baseline is not None:
        try:
            diff = _diff(config, engine, baseline, cases, results, examples, decisions)
        except (BaselineError, PhrasebookError, TrainingDataError) as exc:
            for problem in getattr(exc, "problems", []):
                click.echo(problem, err=True)
            click.echo(_("error: baseline {ref}: {reason}").format(ref=baseline, reason=str(exc).splitlines()[0]),
                       err=True)
            sys.exit(1)
    failed = sum(not r.passed for r in results)
    payload = {
        "ok": failed == 0,
        "passed": len(results) - failed,
        "failed": failed,
        "seconds": round(seconds, 3),
        "cases": [r.as_json() for r in results],
    }
    if examples:
        payload["evaluation"] = _evaluation(examples, decisions)
    if diff is not None:
        payload["diff"] = diff
    if junit_path is not None:
        from bot.suites.junit import junit_xml

        junit_path.write_text(junit_xml(results), encoding="utf-8")
    if html_path is not None:
        html_path.write_text(_html(config, engine, payload, results, decisions, min_examples), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        from bot.suites.text import format_results

        click.echo(format_results(results, seconds))
        if diff is not None:
            from bot.suites.diff import format_diff

            click.echo("")
            click.echo(format_diff(diff))
    if failed:
        sys.exit(1)


def _evaluation(examples, decisions) -> dict:
    from bot.evaluate import score
    from bot.suites.intents import details

    predicted = [d.intent for d in decisions]
    report = score(examples, predicted, [d.kind == "auto_send" for d in decisions])
    report["details"] = details([e.text for e in examples], [e.intent for e in examples], predicted,
                                [d.intent_score for d in decisions])
    return report


def _suite_intents(results) -> dict | None:
    """Per-intent figures from the turns that expect one intent (when no evaluation set is given)."""
    from bot.evaluate import Example, score
    from bot.suites.intents import details

    texts, gold, predicted, scores = [], [], [], []
    for r in results:
        for t in r.turns:
            e = t.turn.expect
            if e is None or e.intent is None or t.turn.event.text is None or not t.seen.decisions:
                continue
            d = t.seen.decisions[0][1]
            texts.append(t.turn.event.text)
            gold.append(d.intent if d.intent in e.intent else e.intent[0])
            predicted.append(d.intent)
            scores.append(d.intent_score)
    if not texts:
        return None
    report = score([Example(t, g) for t, g in zip(texts, gold)], predicted, [False] * len(texts))
    report["details"] = details(texts, gold, predicted, scores)
    return report


def _html(config, engine, payload, results, decisions, min_examples) -> str:
    from bot.engine import load_shop_training_set
    from bot.suites.coverage import coverage, reached_by_cases
    from bot.suites.html import render_report

    reached = reached_by_cases(results)
    for d in decisions:
        reached.update(s.id for s in [*d.replies, *d.suggestions[:1]])
    examples = load_shop_training_set(config).examples
    intents = payload.get("evaluation") or _suite_intents(results)
    title = "evaluation set" if payload.get("evaluation") else "the suites' intent expectations"
    summary = [("shop", config.shop.shop_name), ("cases", f"{payload['passed']} passed, {payload['failed']} failed"),
               ("time", f"{payload['seconds']:.2f}s")]
    if "diff" in payload:
        summary.append(("baseline", payload["diff"]["baseline"]))
    return render_report(
        f"kefu test — {config.shop.shop_name}", summary, cases=payload["cases"], intents=intents,
        intents_title=f"意图 Per-intent figures ({title})",
        coverage=coverage(engine.phrasebook, reached, examples, min_examples), diff=payload.get("diff"),
    )


def _diff(config, engine, baseline, cases, results, examples, decisions) -> dict:
    from bot.suites.baseline import baseline_engine
    from bot.suites.diff import diff_cases, diff_messages

    with baseline_engine(config, baseline, engine) as old:
        old_results = run_suites(old, cases)
        old_decisions = run_examples(old, examples) if examples else []
    return {
        "baseline": baseline,
        "cases": diff_cases(old_results, results),
        "messages": diff_messages(examples, old_decisions, decisions),
    }
