"""What a phrasebook entry is: the pydantic model every YAML entry is validated against."""

from __future__ import annotations

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


class Phrasebook:
    """All entries of a shop's phrasebook, in load order, addressable by id."""

    def __init__(self, entries: list[PhraseEntry]):
        self.entries: list[PhraseEntry] = list(entries)
        self._by_id = {e.id: e for e in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __contains__(self, phrase_id: str) -> bool:
        return phrase_id in self._by_id

    def get(self, phrase_id: str) -> PhraseEntry:
        """The entry with this id; KeyError names the id when it is missing."""
        try:
            return self._by_id[phrase_id]
        except KeyError:
            raise KeyError(f"no phrasebook entry with id {phrase_id!r}") from None

    def for_intent(self, intent: str) -> list[PhraseEntry]:
        return [e for e in self.entries if e.intent == intent]
