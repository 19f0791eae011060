"""The shop profile (`shop:`): what customers are told, and every phrasebook placeholder."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.config.base import Section as _Section

PLATFORM_NAMES = {"taobao": "淘宝", "tmall": "天猫", "jd": "京东"}


class Shop(_Section):
    """The shop profile: every field (and every key of ``custom``) is a phrasebook placeholder."""

    #: The shop's name as customers see it ({shop_name}).
    shop_name: str = "本店"
    #: The brand the shop sells ({brand}), e.g. in "本店是{brand}官方授权店铺".
    brand: str = "本品牌"
    #: Where the shop sells: decides platform rules such as Tmall's invoice red line.
    platform: Literal["taobao", "tmall", "jd"] = "taobao"
    #: The default courier ({courier}).
    courier: str = "中通快递"
    #: A courier available on request ({extra_courier}); the customer pays the difference.
    extra_courier: str = "顺丰"
    #: Yuan the customer adds for the extra courier ({extra_courier_fee}).
    extra_courier_fee: float = 10
    #: The service phone given to customers ({phone}).
    phone: str = ""
    #: Orders ship within this many hours of payment ({ship_within_hours}).
    ship_within_hours: int = 48
    #: Days of no-reason returns ({return_days}).
    return_days: int = 7
    #: When the desk answers, as told to customers ({service_hours}).
    service_hours: str = "09:00-23:00"
    #: Orders at or above this many yuan ship free ({free_shipping_over}; 0 = no threshold).
    free_shipping_over: float = 0
    #: From this quantity the bulk (tiered) price applies ({bulk_min_qty}).
    bulk_min_qty: int = 10
    #: The bulk price ({bulk_discount}).
    bulk_discount: str = "9折"
    #: The members' price ({member_discount}).
    member_discount: str = "95折"
    #: The small gift the bargaining ladder may offer ({gift}).
    gift: str = "小礼品一份"
    #: The shop's own placeholders: name → text, e.g. {activity: 双十二满300减30}.
    custom: dict[str, str] = Field(default_factory=dict)

    @property
    def platform_name(self) -> str:
        return PLATFORM_NAMES[self.platform]

    def placeholders(self) -> dict[str, str]:
        """All values a reply may use, as display strings (12.0 shows as 12)."""
        values = self.model_dump(exclude={"custom"})
        values["platform_name"] = self.platform_name
        values.update(self.custom)
        return {k: _display(v) for k, v in values.items()}


#: Placeholders filled at send time by a flow rather than from the shop profile. The order-state
#: lines (bot/orders/answers.py) also fill ``{courier}`` with the order's real courier: it stays
#: a shop placeholder (the default courier) everywhere else, so it is not listed here.
RUNTIME_PLACEHOLDERS = frozenset({"wait_minutes", "order_id", "order_status", "tracking_no", "confirm"})


def _display(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
