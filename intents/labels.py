"""The default intent set (../shared/INTENTS.md), in one place.

Everything that needs to know which intents exist (the training-data loader, the phrasebook
loader, eval) imports from here, so a typo in a YAML file fails loading instead of silently
creating a 32nd intent.
"""

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
