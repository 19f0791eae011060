"""Comparing what the bot did in one turn with what the case expects.

The *lines* of a turn are every line the bot sent (replies, an away greeting included) and,
when it did not answer on its own, the first suggestion an agent would see — the same line
`kefu replay` shows. ``phrase``, ``contains`` and ``not_contains`` look at those lines;
``intent``, ``kind``, ``group`` and ``priority`` at the turn's decisions; ``fired`` at the
lines timers *sent* (not merely suggested) during an ``advance``.

Each mismatch is one sentence: expected, got, and the decision's reasons, so a
customer-service lead sees why without reading code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bot.models import Decision, Suggestion
from bot.suites.loader import Expect


@dataclass
class Observed:
    """Everything one turn produced."""

    decisions: list[tuple[str, Decision]] = field(default_factory=list)  # (trigger, decision)
    #: (offset from the turn's start, phrase id) of every line a timer sent during the turn
    fired: list[tuple[timedelta, str]] = field(default_factory=list)

    def lines(self) -> list[Suggestion]:
        shown: list[Suggestion] = []
        for _, d in self.decisions:
            shown.extend(d.replies)
            if d.kind != "auto_send" and d.suggestions and d.suggestions[0].id not in {r.id for r in d.replies}:
                shown.append(d.suggestions[0])
        return shown

    def describe(self) -> str:
        """What happened, for a failure message: kind, intent, lines and reasons."""
        if not self.decisions:
            return "no decision"
        parts = []
        for trigger, d in self.decisions:
            head = d.kind + (f" [{d.intent}]" if d.intent else "")
            head += f" ({trigger})" if trigger != "message" else ""
            if d.handoff:
                head += f" handoff {d.handoff.group}/{d.handoff.priority}"
            lines = [f"{s.id}" for s in d.replies] + (
                [f"suggest {d.suggestions[0].id}"] if d.kind != "auto_send" and d.suggestions else []
            )
            if lines:
                head += ": " + ", ".join(lines)
            if d.reasons:
                head += f"; reasons: {'; '.join(d.reasons)}"
            parts.append(head)
        return " | ".join(parts)


def check(expect: Expect, seen: Observed) -> list[str]:
    """Every difference between the expectation and the turn, in the order of EXPECT_KEYS."""
    problems: list[str] = []
    decisions = [d for _, d in seen.decisions]
    lines = seen.lines()
    ids = [s.id for s in lines]
    text = "\n".join(s.text for s in lines)

    def want(key: str, expected, got) -> None:
        problems.append(f"{key}: expected {_expected(expected)}, got {_got(got)}")

    if expect.intent is not None:
        got = [d.intent for d in decisions if d.intent]
        if not any(i in expect.intent for i in got):
            want("intent", expect.intent, got)
    if expect.phrase is not None and not any(i in expect.phrase for i in ids):
        want("phrase", expect.phrase, ids)
    if expect.kind is not None:
        got = [d.kind for d in decisions]
        if not any(k in expect.kind for k in got):
            want("kind", expect.kind, got)
    if expect.group is not None:
        got = [d.handoff.group for d in decisions if d.handoff]
        if expect.group not in got:
            want("group", expect.group, got or "no handoff")
    if expect.priority is not None:
        got = [d.handoff.priority for d in decisions if d.handoff]
        if expect.priority not in got:
            want("priority", expect.priority, got or "no handoff")
    for piece in expect.contains:
        if piece not in text:
            problems.append(f"contains: expected {piece!r} in {_show(text) if text else 'no text'}")
    for piece in expect.not_contains:
        if piece in text:
            problems.append(f"not_contains: {piece!r} must not appear, got {_show(text)}")
    if expect.fired is not None:
        problems += _check_fired(expect, seen)
    return problems


def _check_fired(expect: Expect, seen: Observed) -> list[str]:
    fired = expect.fired
    got = [f"{pid} at +{_clock(at)}" for at, pid in seen.fired]
    if not fired.phrases:
        return [f"fired: expected no timer line, got {', '.join(got)}"] if seen.fired else []
    problems = []
    for phrase in fired.phrases:
        hits = [at for at, pid in seen.fired if pid == phrase]
        window = [at for at in hits if (fired.after is None or at >= fired.after)
                  and (fired.before is None or at <= fired.before)]
        if not window:
            span = ""
            if fired.after is not None or fired.before is not None:
                end = _clock(fired.before) if fired.before is not None else "…"
                span = f" between +{_clock(fired.after or timedelta())} and +{end}"
            problems.append(f"fired: expected {phrase}{span}, got {', '.join(got) if got else 'no timer line'}")
    return problems


def _clock(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _expected(value: tuple[str, ...] | str) -> str:
    if isinstance(value, str) or len(value) == 1:
        return value if isinstance(value, str) else value[0]
    return "one of [" + ", ".join(value) + "]"


def _got(value: list[str] | str) -> str:
    if isinstance(value, str):
        return value
    return ", ".join(value) if value else "nothing"


def _show(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "…")
