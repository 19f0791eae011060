"""`kefu test`: run conversation suites against the shop's phrasebook, intents and policy.

``kefu test [PATHS…] [--junit FILE] [--html FILE] [--json] [--baseline REF] [--data FILE]``
runs every case of the suite files (or folders) given — the default suite that ships with
kefu when none is — prints one row per case with the first difference of each failure, and
exits 1 when any case fails. ``--json`` prints one JSON document instead of the table.
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
from bot.suites import DEFAULT_SUITE_DIR
from bot.suites.loader import SuiteError, load_suites
from bot.suites.runner import run_suites


def _load_cases(engine: Engine, paths: tuple[Path, ...]):
    try:
        return load_suites(paths or (DEFAULT_SUITE_DIR,), intents=engine.classifier.intents,
                           phrase_ids=[e.id for e in engine.phrasebook])
    except SuiteError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"error: {len(exc.problems)} problem(s) in the test suites", err=True)
        sys.exit(1)


@main.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write JUnit XML for CI.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
@with_config
def test_command(config: Config, paths: tuple[Path, ...], junit_path: Path | None, as_json: bool) -> None:
    """Run conversation test suites (default: the suite that ships with kefu)."""
    engine = engine_for(config)
    cases = _load_cases(engine, paths)
    started = time.perf_counter()
    results = run_suites(engine, cases)
    seconds = time.perf_counter() - started
    failed = sum(not r.passed for r in results)
    if junit_path is not None:
        from bot.suites.junit import junit_xml

        junit_path.write_text(junit_xml(results), encoding="utf-8")
    if as_json:
        payload = {
            "ok": failed == 0,
            "passed": len(results) - failed,
            "failed": failed,
            "seconds": round(seconds, 3),
            "cases": [r.as_json() for r in results],
        }
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        from bot.suites.text import format_results

        click.echo(format_results(results, seconds))
    if failed:
        sys.exit(1)
