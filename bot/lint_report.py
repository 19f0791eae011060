"""`kefu lint`: every check of the shop's phrasebook and training files, as one list of problems.

Errors (the phrasebook or training data cannot be loaded, a red line, a reply a configured
platform refuses) make `kefu lint` exit 1. Warnings (clashing questions, near-duplicate
replies, intents with few examples, empty shop values) are printed but do not fail, so a
shop can adopt them without its CI going red on day one.

Text output keeps the old contract (``file:line: reason`` per error, ``ok: …`` first when
there is none); ``--json`` prints one JSON document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import RUNTIME_PLACEHOLDERS, Config
from bot.engine import load_shop_phrasebook, load_shop_training_set
from bot.i18n import _, localise
from intents.dataset import TrainingDataError, TrainingSet
from phrasebook.claims import lint_claims
from phrasebook.lint import lint_phrasebook
from phrasebook.lint_checks import (
    Problem,
    clashes,
    empty_placeholders,
    few_examples,
    length_limits,
    near_duplicate_replies,
)
from phrasebook.loader import PhrasebookError
from phrasebook.schema import Phrasebook

#: An intent with fewer training examples than this is flagged (`kefu lint --min-examples`).
MIN_EXAMPLES = 20


@dataclass
class LintReport:
    problems: list[Problem] = field(default_factory=list)
    entries: int | None = None
    examples: int | None = None
    #: what loaded (partly, when there were errors): for checks that live elsewhere
    book: Phrasebook | None = None
    data: TrainingSet | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def as_json(self) -> dict:
        return {
            "ok": not self.errors,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "entries": self.entries,
            "examples": self.examples,
            "problems": [p.as_json() for p in self.problems],
        }


def collect(config: Config, min_examples: int = MIN_EXAMPLES) -> LintReport:
    report = LintReport()
    values = config.shop.placeholders()
    sample = {**{name: "5" for name in RUNTIME_PLACEHOLDERS}, **values}
    try:
        book = load_shop_phrasebook(config)
        report.entries = len(book)
    except PhrasebookError as exc:
        # every kind of problem in one pass: the entries that did load are checked too
        report.problems += [Problem.parse(p, "phrasebook") for p in exc.problems]
        book = Phrasebook(exc.entries)
    report.book = book
    if len(book):
        red = lint_phrasebook(book, values, config.shop.platform, config.policy.banned_words, RUNTIME_PLACEHOLDERS)
        report.problems += [Problem.parse(p, "red_line") for p in red]
        claims = lint_claims(book, values, RUNTIME_PLACEHOLDERS)
        report.problems += [Problem.parse(p, "unchecked_claim") for p in claims]
        types = [str(c.get("type", "")) for c in config.connectors.values()]
        report.problems += length_limits(book, sample, types)
        report.problems += clashes(book, config.policy.auto_send_min)
        report.problems += near_duplicate_replies(book, sample)
        report.problems += empty_placeholders(book, values)
    try:
        data = load_shop_training_set(config)
    except TrainingDataError as exc:
        report.problems += [Problem.parse(p, "training_data") for p in exc.problems]
    else:
        report.data = data
        report.examples = len(data)
        report.problems += few_examples(data.examples, data.sources, min_examples)
    return report


def _warning(problem: Problem) -> str:
    where = f"{problem.file}:{problem.line}" if problem.line else problem.file
    text = _("warning: {text}").format(text=localise(problem.message))
    return f"{where}: {text}" if where else text


def format_text(report: LintReport) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) of the text output."""
    errors = [localise(str(p)) for p in report.errors]
    warnings = [_warning(p) for p in report.warnings]
    if errors:
        counts = [f"{len(warnings)} warning(s)"] if warnings else []
        return errors + warnings, [*counts, _("{n} problem(s)").format(n=len(errors))]
    head = _("ok: {entries} phrasebook entries, {examples} training examples").format(
        entries=report.entries, examples=report.examples)
    return [head, *warnings], [f"{len(warnings)} warning(s)"] if warnings else []
