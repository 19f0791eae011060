"""Running suite cases: each case on a fresh in-memory store and its own simulated clock.

A case is played turn by turn through `bot.replay.Replay` — the same assistant, flows, timers
and handoff desk that `kefu serve` uses — so a passing case says something about the real bot,
not about a test double. Nothing sleeps: ``advance`` fires due jobs at their own due time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from bot.engine import Engine
from bot.models import Decision
from bot.replay import Replay
from bot.suites.expectations import Observed, check
from bot.suites.loader import DEFAULT_CLOCK, Case, Turn


@dataclass
class TurnResult:
    turn: Turn
    seen: Observed
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def answer(self) -> dict:
        """What the bot did, compared between two versions by the diff."""
        return {
            "kinds": [d.kind for _, d in self.seen.decisions],
            "intents": [d.intent for _, d in self.seen.decisions if d.intent],
            "lines": [s.id for s in self.seen.lines()],
            "texts": [s.text for s in self.seen.lines()],
            "fired": [pid for _, pid in self.seen.fired],
        }

    def as_json(self) -> dict:
        return {
            "line": self.turn.line,
            "action": self.turn.action,
            "expect": self.turn.expect.keys() if self.turn.expect else [],
            "passed": self.passed,
            "problems": self.problems,
            **self.answer(),
            "reasons": [r for _, d in self.seen.decisions for r in d.reasons],
        }


@dataclass
class CaseResult:
    case: Case
    turns: list[TurnResult]
    seconds: float
    error: str | None = None  # the case crashed (a bug in kefu, not a failed expectation)

    @property
    def passed(self) -> bool:
        return self.error is None and all(t.passed for t in self.turns)

    @property
    def checks(self) -> int:
        return sum(len(t.turn.expect.keys()) for t in self.turns if t.turn.expect)

    def first_failure(self) -> TurnResult | None:
        return next((t for t in self.turns if not t.passed), None)

    def first_difference(self) -> str:
        """One line: where it went wrong, expected vs got, and what the bot did and why."""
        if self.error:
            return f"error: {self.error}"
        failed = self.first_failure()
        if failed is None:
            return ""
        where = f"line {failed.turn.line} ({failed.turn.action})"
        return f"{where}: {failed.problems[0]} — bot: {failed.seen.describe()}"

    def as_json(self) -> dict:
        return {
            "file": str(self.case.file),
            "line": self.case.line,
            "name": self.case.name,
            "passed": self.passed,
            "checks": self.checks,
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "first_difference": self.first_difference() or None,
            "turns": [t.as_json() for t in self.turns],
        }


class _CaseReplay(Replay):
    """A replay that also keeps each full `Decision` (suggestions included) with its trigger."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.decisions: list[tuple[str, Decision, datetime]] = []

    def _emit(self, customer, trigger, decision, said=None):
        super()._emit(customer, trigger, decision, said)
        self.decisions.append((trigger, decision, self.clock.now()))


def run_case(engine: Engine, case: Case) -> CaseResult:
    started = time.perf_counter()
    tz = engine.config.flows.tz
    clock = case.clock or datetime.fromisoformat(DEFAULT_CLOCK)
    clock = clock if clock.tzinfo else clock.replace(tzinfo=tz)
    replay = _CaseReplay(engine, clock, case.agents_online)
    results: list[TurnResult] = []
    try:
        for turn in case.turns:
            begin, mark = replay.clock.now(), len(replay.decisions)
            replay.run([(turn.line, turn.event)])
            produced = replay.decisions[mark:]
            seen = Observed(
                decisions=[(trigger, d) for trigger, d, _ in produced],
                fired=[(at - begin, r.id) for trigger, d, at in produced if trigger == "timer" for r in d.replies],
            )
            results.append(TurnResult(turn, seen, check(turn.expect, seen) if turn.expect else []))
    except Exception as exc:  # noqa: BLE001 - a crash is reported as the case's result, the run goes on
        return CaseResult(case, results, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
    finally:
        replay.store.close()
    return CaseResult(case, results, time.perf_counter() - started)


def run_suites(engine: Engine, cases: list[Case], progress=None) -> list[CaseResult]:
    """Run every case in order; ``progress(i, n)`` is called after each (for a progress bar)."""
    results = []
    for i, case in enumerate(cases, 1):
        results.append(run_case(engine, case))
        if progress is not None:
            progress(i, len(cases))
    return results
