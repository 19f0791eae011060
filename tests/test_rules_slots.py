"""Slot rules the bargaining ladder and intake depend on, one row each.

The bulk handoff reads ``quantity``: 一件 must be 1 (not "no quantity"), 两万 must be 20000
(not 20001), and the numerals of speech (两千五, 一百零五) must read as a person means them.
"""

from __future__ import annotations

import pytest

from intents import slots as slot_rules
from intents.slots import extract_slots, parse_number


@pytest.mark.parametrize(
    ("numeral", "value"),
    [
        ("一", 1), ("两", 2), ("二", 2), ("十", 10), ("十五", 15), ("二十", 20), ("二十五", 25),
        ("一百", 100), ("一百零五", 105), ("一百五", 150), ("一百五十", 150), ("两百", 200),
        ("两千", 2000), ("两千五", 2500), ("两千零五十", 2050), ("一千二百三十四", 1234),
        ("万", 10000), ("一万", 10000), ("两万", 20000), ("三万五", 35000), ("十万", 100000),
        ("一万零一", 10001), ("一百一", 110), ("两千一", 2100), ("一百零一", 101), ("两万五千", 25000), ("〇", 0), ("零", 0),
        ("5", 5), ("59.9", 59.9), ("1,000", 1000), ("2万", 20000), ("1.5万", 15000), ("3千", 3000), ("2百", 200),
    ],
)
def test_parse_number_table(numeral, value):
    assert parse_number(numeral) == value


@pytest.mark.parametrize("numeral", ["", "个", "十个", "1.2.3万", "abc", "五a", "5X", "5x"])
def test_parse_number_refuses(numeral):
    assert parse_number(numeral) is None


@pytest.mark.parametrize(
    ("text", "quantity"),
    [
        ("买一件", 1),
        ("要一件就行", 1),
        ("两件", 2),
        ("批发两万件", 20000),
        ("要两千五百件", 2500),
        ("拿50件", 50),
        ("我要49件", 49),
        ("买十个", 10),
        ("一百个有优惠吗", 100),
        ("1万件", 10000),
        ("3箱", 3),
        ("两 件", 2),
        ("第二件半价，买3件", 3),
        ("三包期内，两台", 2),
        ("包邮吗，要5包", 5),
        ("支付宝付款，要2支", 2),
        ("用了一个月，再买两个", 2),
        ("0件", None),
        ("一个月了", None),
        ("第二件半价", None),
        ("包邮吗", None),
    ],
)
def test_quantity(text, quantity):
    assert extract_slots(text).quantity == quantity


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("99元", 99.0),
        ("便宜十块", 10.0),
        ("三十块钱", 30.0),
        ("￥59.9", 59.9),
        ("¥ 59.9", 59.9),
        ("rmb 20", 20.0),
        ("20rmb", 20.0),
        ("一块发吧，两块钱", 2.0),
        ("一块买", None),
        ("一块钱", 1.0),
        ("三十块买的", 30.0),  # 买 after 块 means "together" only after 一
        ("订单号123456789012元，退我20元", 20.0),  # the order number is not an amount; the next one is
    ],
)
def test_amount(text, amount):
    assert extract_slots(text).amount == amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a prefixed tracking number is kept; a keyword or bare courier run does not replace it
        ("SF1234567890123 快递单号9876543210", {"tracking_no": "SF1234567890123", "courier": "顺丰"}),
        ("SF1234567890123 中通75123456789012", {"tracking_no": "SF1234567890123", "courier": "顺丰"}),
        ("快递单号9876543210", {"tracking_no": "9876543210"}),
        ("75123456789012", {"tracking_no": "75123456789012", "courier": "中通"}),
        ("[订单x]3件", {"order_id": "[订单x]", "quantity": 3}),  # a slot right after a claimed one
        ("13800138000[订单x]", {"order_id": "[订单x]", "phone": "13800138000"}),  # ... and right before one
        ("¥59[订单x]", {"order_id": "[订单x]", "amount": 59.0}),
        ("开封市的朋友要", {"city": "开封", "province": "河南"}),  # 市 right after an ambiguous city
        ("没开封的可以退吗", {}),
    ],
)
def test_slots_together(text, expected):
    assert {k: v for k, v in extract_slots(text).model_dump().items() if v is not None} == expected


def test_place_tables():
    provinces, cities = slot_rules._load_places()
    assert (provinces, cities) == (slot_rules._PROVINCES, slot_rules._CITIES)
    assert provinces["北京"] == provinces["北京市"] == "北京"
    assert cities["北京"] == cities["北京市"] == ("北京", "北京")  # a municipality is its own city
    assert provinces["广东省"] == "广东" and "深圳" not in provinces
    assert cities["深圳"] == ("深圳", "广东") and "广东" not in cities
    assert provinces["内蒙"] == "内蒙古" and "内蒙" not in cities  # an alias, not a city
    assert cities["吉林市"] == ("吉林", "吉林") and "吉林" not in cities  # 吉林 alone is the province
    assert provinces["新疆维吾尔自治区"] == "新疆"
    assert all(isinstance(v, str) for v in provinces.values())
    assert all(isinstance(v, tuple) and len(v) == 2 for v in cities.values())
