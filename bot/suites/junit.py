"""JUnit XML for CI tools: one ``<testsuite>`` per suite file, one ``<testcase>`` per case.

The shape follows what pytest writes (``testsuites/testsuite/testcase`` with ``failure`` and
``error`` children, counts and times as attributes), which Jenkins, GitLab and GitHub
annotations all read. A failed case carries its first difference as the failure message and
every difference, turn by turn, in the body.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from bot.suites.runner import CaseResult


def junit_xml(results: list[CaseResult], name: str = "kefu test") -> str:
    root = ET.Element("testsuites", name=name)
    by_file: dict[Path, list[CaseResult]] = {}
    for r in results:
        by_file.setdefault(r.case.file, []).append(r)
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    host = socket.gethostname()
    for path, rows in by_file.items():
        failures = sum(1 for r in rows if not r.passed and not r.error)
        errors = sum(1 for r in rows if r.error)
        seconds = sum(r.seconds for r in rows)
        suite = ET.SubElement(root, "testsuite", name=str(path), tests=str(len(rows)), failures=str(failures),
                              errors=str(errors), skipped="0", time=f"{seconds:.3f}", timestamp=stamp,
                              hostname=host)
        for r in rows:
            case = ET.SubElement(suite, "testcase", classname=path.stem, name=r.case.name, file=str(path),
                                 line=str(r.case.line), time=f"{r.seconds:.3f}")
            if r.error:
                ET.SubElement(case, "error", message=r.error, type="CaseError").text = _transcript(r)
            elif not r.passed:
                ET.SubElement(case, "failure", message=r.first_difference(),
                              type="ExpectationFailed").text = _transcript(r)
        totals["tests"] += len(rows)
        totals["failures"] += failures
        totals["errors"] += errors
        totals["time"] += seconds
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", f"{totals['time']:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _transcript(result: CaseResult) -> str:
    """Every turn: what happened, and each difference under the turn it belongs to."""
    lines = []
    for t in result.turns:
        mark = "✗" if t.problems else "·"
        lines.append(f"{mark} line {t.turn.line}: {t.turn.action} → {t.seen.describe()}")
        lines += [f"    {p}" for p in t.problems]
    if result.error:
        lines.append(f"✗ {result.error}")
    return "\n".join(lines)
