"""The default intent set (../shared/INTENTS.md) and the shop's own, in one place.

Everything that needs to know which intents exist (the training-data loader, the phrasebook
loader, eval, the handoff queues) asks an :class:`IntentSet`, so a typo in a YAML file fails
loading instead of silently creating a 32nd intent, while a shop that *declares* its own
intent (``intents.custom`` in config.yaml) gets it everywhere at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

IntentGroup = Literal["presale", "aftersale", "general"]

PRESALE = (
    "greeting",
    "product_quality",
    "authenticity",
    "stock",
    "spec_size",
    "price_bargain",
    "bulk_discount",
    "returning_discount",
    "competitor_cheaper",
    "promotion",
    "free_shipping",
    "courier_choice",
    "shipping_time",
    "payment_howto",
    "invoice",
    "order_change",
    "cancel_order",
)
AFTERSALE = (
    "track_parcel",
    "logistics_stuck",
    "lost_parcel",
    "missing_item",
    "return_exchange",
    "refund_status",
    "quality_complaint",
    "counterfeit_claim",
    "bad_review_threat",
    "platform_dispute",
)
GENERAL = ("thanks", "farewell", "human_request", "other")

DEFAULT_INTENTS: tuple[str, ...] = PRESALE + AFTERSALE + GENERAL
FALLBACK = "other"


def _default_groups() -> dict[str, IntentGroup]:
    groups: dict[str, IntentGroup] = {}
    for names, group in ((PRESALE, "presale"), (AFTERSALE, "aftersale"), (GENERAL, "general")):
        groups.update(dict.fromkeys(names, group))
    return groups


@dataclass(frozen=True)
class IntentSet:
    """Which intents this shop recognises and which queue each belongs to.

    ``disabled`` intents are switched off: their default examples train ``other`` (so a customer
    asking about them gets no confident answer) and their matchable phrasebook entries are left
    out; script lines keep loading because flows may still name them.
    """

    groups: Mapping[str, IntentGroup] = field(default_factory=_default_groups)
    disabled: frozenset[str] = frozenset()

    @classmethod
    def build(cls, custom: Mapping[str, IntentGroup] = (), disabled: Iterable[str] = ()) -> IntentSet:
        """The defaults plus the shop's own intents, minus the switched-off ones."""
        return cls({**_default_groups(), **dict(custom)}, frozenset(disabled))

    @property
    def names(self) -> tuple[str, ...]:
        """Intents the classifier may answer with (switched-off ones excluded)."""
        return tuple(name for name in self.groups if name not in self.disabled)

    @property
    def aftersale(self) -> frozenset[str]:
        return frozenset(n for n, g in self.groups.items() if g == "aftersale" and n not in self.disabled)

    def group(self, name: str) -> IntentGroup | None:
        return self.groups.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.groups and name not in self.disabled


DEFAULT_INTENT_SET = IntentSet()
