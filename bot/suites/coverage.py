"""Phrasebook coverage: entries that no test case and no evaluation message reaches.

An entry nobody reaches is either dead (its questions lose to another entry's every time) or
simply untested; both are worth a look before the phrasebook changes. Intents with too few
training examples are listed beside them: they are where the classifier is weakest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from phrasebook.schema import Phrasebook


def coverage(book: Phrasebook, reached: Iterable[str], examples: Mapping[str, list[str]] | None,
             min_examples: int) -> dict:
    hit = set(reached)
    unreached = [{"id": e.id, "intent": e.intent, "source": e.source} for e in book if e.id not in hit]
    few = [] if examples is None else [
        {"intent": intent, "examples": len(lines)}
        for intent, lines in sorted(examples.items(), key=lambda kv: (len(kv[1]), kv[0])) if len(lines) < min_examples
    ]
    return {
        "entries": len(book),
        "reached": len(book) - len(unreached),
        "unreached": unreached,
        "few_examples": few,
        "min_examples": min_examples,
    }


def reached_by_cases(results) -> set[str]:
    """Phrase ids any turn of any case sent, suggested first or fired."""
    ids: set[str] = set()
    for r in results:
        for t in r.turns:
            ids.update(s.id for s in t.seen.lines())
            ids.update(pid for _, pid in t.seen.fired)
    return ids
