"""Filling a reply's {placeholders} and choosing which variant to send.

Placeholders are checked when the phrasebook loads (`placeholders_in` is what the loader uses),
so a customer can never receive a literal ``{shop_nmae}``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from bot.errors import DataFileError
from phrasebook.schema import Entry, PhraseEntry

_FORMATTER = string.Formatter()


class TemplateError(DataFileError, ValueError):
    """A reply template is malformed or uses a placeholder that is not plain ``{name}``."""


def placeholders_in(template: str) -> list[str]:
    """The placeholder names a template uses, in order.

    Raises:
        TemplateError: unbalanced braces, positional ``{}``, or attribute/index/format forms
            (``{shop.name}``, ``{0}``, ``{price:.2f}``) which we do not support on purpose: a
            phrasebook author should never need them, and each is a way to leak internals.
    """
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise TemplateError(f"malformed braces: {exc}") from exc
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise TemplateError(f"unsupported placeholder {{{name}}}: use plain {{name}}")
        names.append(name)
    return names


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a template; a name missing from ``values`` raises KeyError naming it."""
    return template.format_map(_Strict(values))


def choose_reply(
    entry: Entry | PhraseEntry, values: Mapping[str, str], avoid: Iterable[str] = (), turn: int = 0
) -> str:
    """Render a reply variant, never one whose text is in ``avoid`` while another exists.

    ``avoid`` holds texts as the customer saw them (rendered), so the comparison is made after
    filling placeholders. ``turn`` rotates through the variants (callers pass how many times
    this entry was used), so repeated questions get different wording in a stable order.
    """
    avoid = set(avoid)
    n = len(entry.replies)
    first = None
    for step in range(n):
        text = render(entry.replies[(turn + step) % n], values)
        if text not in avoid:
            return text
        first = first or text
    return first


class _Strict(dict):
    def __init__(self, values: Mapping[str, str]):
        super().__init__(values)

    def __missing__(self, key: str) -> str:
        raise KeyError(f"no value for placeholder {{{key}}}")
