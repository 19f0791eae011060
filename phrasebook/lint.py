"""Checks a loaded phrasebook needs beyond its schema: what the customer would actually read.

The loader already refuses malformed entries; lint renders every reply variant with the
shop's real values and checks the result against the platform red lines, because a reply that
is fine as a template can cross one once ``{phone}`` or a custom placeholder is filled in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from phrasebook.redlines import find_red_lines
from phrasebook.render import render
from phrasebook.schema import Phrasebook


def lint_phrasebook(
    book: Phrasebook,
    values: Mapping[str, str],
    platform: str,
    banned_words: Iterable[str] = (),
    runtime: Iterable[str] = (),
) -> list[str]:
    """One ``file:line: id: reply N: red line …`` string per problem; [] when clean."""
    banned = list(banned_words)
    sample = {**{name: "5" for name in runtime}, **values}
    problems = []
    for entry in book:
        for number, template in enumerate(entry.replies, 1):
            text = render(template, sample)
            for hit in find_red_lines(text, platform, banned):
                problems.append(f"{entry.source}: {entry.id}: reply {number}: {hit}")
    return problems
