"""What changed between two versions of the shop's files: cases and evaluation messages.

A case *changed* when any turn's answer (decision kinds, intents, the lines sent or
suggested, timer lines) differs; it got **better** when it failed before and passes now,
**worse** when it passed before and fails now, and is **different** otherwise. An evaluation
message changed when its intent, its first line or its decision kind differs; better / worse
is whether its intent went from wrong to right or back.
"""

from __future__ import annotations

from bot.evaluate import Example
from bot.models import Decision
from bot.suites.runner import CaseResult


def _brief(answer: dict, other: dict | None = None) -> str:
    """Kinds and line ids; the texts too when only the wording differs from ``other``."""
    lines = ", ".join(answer["lines"]) or "no line"
    fired = f"; fired {', '.join(answer['fired'])}" if answer["fired"] else ""
    text = ""
    if other is not None and other["lines"] == answer["lines"] and other["texts"] != answer["texts"]:
        text = " — " + " / ".join(t for t, o in zip(answer["texts"], other["texts"]) if t != o)
    return f"{'/'.join(answer['kinds']) or 'nothing'}: {lines}{fired}{text}"


def diff_cases(before: list[CaseResult], after: list[CaseResult]) -> list[dict]:
    old = {(str(r.case.file), r.case.name): r for r in before}
    changes = []
    for new in after:
        prev = old.get((str(new.case.file), new.case.name))
        if prev is None:
            continue
        turn = None
        for a, b in zip(prev.turns, new.turns):
            if a.answer() != b.answer():
                turn = (a, b)
                break
        if turn is None and prev.passed == new.passed:
            continue
        if not prev.passed and new.passed:
            change = "better"
        elif prev.passed and not new.passed:
            change = "worse"
        else:
            change = "different"
        a, b = turn if turn else (None, None)
        changes.append({
            "change": change,
            "file": str(new.case.file),
            "name": new.case.name,
            "turn": f"line {b.turn.line}: {b.turn.action}" if b else None,
            "before": _brief(a.answer(), b.answer()) if a else ("pass" if prev.passed else prev.first_difference()),
            "after": _brief(b.answer(), a.answer()) if b else ("pass" if new.passed else new.first_difference()),
            "passed_before": prev.passed,
            "passed_after": new.passed,
        })
    return changes


def _answer(d: Decision) -> tuple[str, str | None, str, str]:
    """Intent, the answer's line id, decision kind, the answer's text (the last reply, as replay shows)."""
    line = d.replies[-1] if d.replies else (d.suggestions[0] if d.suggestions else None)
    return d.intent, line.id if line else None, d.kind, line.text if line else ""


def diff_messages(examples: list[Example], before: list[Decision], after: list[Decision]) -> list[dict]:
    changes = []
    for e, a, b in zip(examples, before, after):
        old, new = _answer(a), _answer(b)
        if old == new:
            continue
        right_before, right_now = old[0] == e.intent, new[0] == e.intent
        change = "better" if right_now and not right_before else "worse" if right_before and not right_now \
            else "different"
        wording = old[:3] == new[:3]
        changes.append({
            "change": change, "text": e.text, "expected": e.intent,
            "before": f"{old[0]} → {old[1] or 'no line'} ({old[2]})" + (f" — {old[3]}" if wording else ""),
            "after": f"{new[0]} → {new[1] or 'no line'} ({new[2]})" + (f" — {new[3]}" if wording else ""),
        })
    return changes


def format_diff(diff: dict) -> str:
    lines = [f"compared with {diff['baseline']}: {len(diff['cases'])} case(s) and {len(diff['messages'])} "
             "evaluation message(s) changed"]
    for c in diff["cases"]:
        where = f" at {c['turn']}" if c["turn"] else ""
        lines.append(f"  {c['change']:<9} case {c['name']}{where}")
        lines.append(f"            before: {c['before']}")
        lines.append(f"            after:  {c['after']}")
    for m in diff["messages"]:
        lines.append(f"  {m['change']:<9} message {m['text']} (expected {m['expected']})")
        lines.append(f"            before: {m['before']}")
        lines.append(f"            after:  {m['after']}")
    return "\n".join(lines)
