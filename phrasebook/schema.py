"""What a phrasebook entry is: the pydantic model every YAML entry is validated against, and
the compact form the loaded phrasebook keeps.

A validated pydantic entry costs ~1 KB (its ``__dict__``, the fields-set bookkeeping, a
``file:line`` string each); a million of them was 2.5 GB. So the model checks each entry once,
at load, and the phrasebook holds `Entry`: the same fields in ``__slots__``, the file name shared
by all entries of a file, repeated tuples (replies, tags) shared.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from phrasebook.conditions import ConditionError, parse_condition


class PhraseEntry(BaseModel):
    """One quick reply and the customer lines it answers.

    An entry with no ``questions`` is a *script line*: a flow sends it by id (the manager's
    gift follow-up, a payment chase) and the matcher never offers it for customer text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Unique id, dotted lower case (`shop.pickup`); flows and tests name entries by it.
    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
    #: The intent this entry answers: a default one or one of `intents.custom`.
    intent: str
    #: How customers ask it; empty = a script line only a flow sends.
    questions: tuple[str, ...] = ()
    #: What we answer; several rotate, and the same line is never sent twice in a row. `{placeholders}` from `shop:`.
    replies: tuple[str, ...] = Field(min_length=1)
    #: May be sent without an agent when the policy is confident (false: only suggested).
    auto_send: bool = True
    #: The rung of a ladder this line belongs to (bargaining), if any.
    stage: int | None = Field(default=None, ge=1)
    #: Free labels for the shop's own use (search, reports).
    tags: tuple[str, ...] = ()
    #: What must be true before it is sent: concession_made, manager_asked, order_placed, order_paid,
    #: order_shipped, order_known, photos_received, {platform: taobao|tmall|jd}. A line claiming a
    #: concession, special price, manager's answer or shipping promise needs one (`kefu lint`).
    requires: tuple[str, ...] = ()
    #: ``file:line`` the entry was read from; set by the loader, used in every error message.
    source: str = Field(default="", exclude=True)

    @field_validator("replies", "questions")
    @classmethod
    def _no_blank(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for i, value in enumerate(values):
            if not value.strip():
                raise ValueError(f"item {i + 1} is empty")
        return tuple(v.strip() for v in values)

    @field_validator("requires", mode="before")
    @classmethod
    def _conditions(cls, values: object) -> tuple[str, ...]:
        if values is None:
            return ()
        if not isinstance(values, (list, tuple)):
            values = [values]
        out = []
        for i, item in enumerate(values):
            try:
                out.append(parse_condition(item))
            except ConditionError as exc:
                raise ValueError(f"item {i + 1}: {exc}") from None
        return tuple(out)

    @property
    def matchable(self) -> bool:
        return bool(self.questions)

    def compact(self) -> Entry:
        file, _, line = self.source.rpartition(":")
        if not line.isdigit():
            file, line = self.source, "0"
        return Entry(self.id, self.intent, self.questions, self.replies, self.auto_send, self.stage,
                     self.tags, self.requires, file, int(line))


class _EntryFields(NamedTuple):
    id: str
    intent: str
    questions: tuple[str, ...]
    replies: tuple[str, ...]
    auto_send: bool = True
    stage: int | None = None
    tags: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    #: Where it was read: ``source`` is ``file:line``.
    file: str = ""
    line: int = 0


class Entry(_EntryFields):
    """A loaded, already validated phrasebook entry: `PhraseEntry`'s fields, read-only and small.

    A named tuple, so the compiled cache can make a million of them in about a second. Build it
    from a `PhraseEntry` (``PhraseEntry.compact()``) or from the compiled cache, never from
    unchecked data. Equality ignores where it was read, like `PhraseEntry`'s excluded source.
    """

    __slots__ = ()
    FIELDS = ("id", "intent", "questions", "replies", "auto_send", "stage", "tags", "requires")

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def matchable(self) -> bool:
        return bool(self.questions)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PhraseEntry):
            other = other.compact()
        if not isinstance(other, Entry):
            return NotImplemented
        return self[:8] == other[:8]

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self[:8])

    def __repr__(self) -> str:
        return f"Entry(id={self.id!r}, intent={self.intent!r}, source={self.source!r})"


class Sharing:
    """Hands out one shared object per distinct value (intents, reply tuples, file names), so a
    large phrasebook holds each repeated value once."""

    def __init__(self):
        self._seen: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return sys.intern(value)
        return self._seen.setdefault(value, value)

    def entry(self, entry: PhraseEntry | Entry) -> Entry:
        e = entry.compact() if isinstance(entry, PhraseEntry) else entry
        return Entry(e.id, self(e.intent), e.questions, self(e.replies), e.auto_send, e.stage,
                     self(e.tags), self(e.requires), self(e.file), e.line)


class Phrasebook:
    """All entries of a shop's phrasebook, in load order, addressable by id.

    ``index`` is the matcher's n-gram index when the compiled cache (or the loader) already
    built it for exactly these entries; the matcher builds it itself otherwise.
    """

    def __init__(self, entries: Iterable[PhraseEntry | Entry], index: Any = None):
        share = Sharing()
        self.entries: list[Entry] = [e if isinstance(e, Entry) else share.entry(e) for e in entries]
        self._by_id = {e.id: e for e in self.entries}
        self.index = index

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __contains__(self, phrase_id: str) -> bool:
        return phrase_id in self._by_id

    def get(self, phrase_id: str) -> Entry:
        """The entry with this id; KeyError names the id when it is missing."""
        try:
            return self._by_id[phrase_id]
        except KeyError:
            raise KeyError(f"no phrasebook entry with id {phrase_id!r}") from None

    def for_intent(self, intent: str) -> list[Entry]:
        return [e for e in self.entries if e.intent == intent]
