"""The terminal report of `kefu test`: one row per case, the first difference of each failure.

Rendered with rich (it measures Chinese characters as two columns, so the table stays
aligned) into plain text without colour codes, so it reads the same in a terminal, a CI log
or a file.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from bot.i18n import _
from bot.suites.runner import CaseResult


def format_results(results: list[CaseResult], seconds: float, width: int = 120) -> str:
    """The table, then each failing case's first difference in full (never cut or wrapped)."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column(_("result"), no_wrap=True)
    table.add_column(_("case"), overflow="fold")
    table.add_column(_("where"), no_wrap=True)
    table.add_column(_("checks"), justify="right", no_wrap=True)
    for r in results:
        status = _("PASS") if r.passed else (_("ERROR") if r.error else _("FAIL"))
        table.add_row(status, r.case.name, f"{r.case.file.name}:{r.case.line}", str(r.checks))
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False, soft_wrap=False)
    console.print(table)
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    failed = [r for r in results if not r.passed]
    if failed:
        lines += ["", _("first difference of each failing case:")]
        for r in failed:
            head, _sep, bot = r.first_difference().partition(" — bot: ")
            lines.append(f"✗ {r.case.name}  ({r.case.where})")
            lines.append(f"    {head}")
            if bot:
                lines.append(f"    bot: {bot}")
    checks = sum(r.checks for r in results)
    lines.append(_("{passed} passed, {failed} failed — {cases} cases, {checks} checks in {seconds:.2f}s").format(
        passed=len(results) - len(failed), failed=len(failed), cases=len(results), checks=checks, seconds=seconds))
    return "\n".join(lines)
