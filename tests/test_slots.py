"""Tests for intents.slots: each slot with cases that must and must not fill it."""

import pytest

from intents.slots import Slots, extract_slots, parse_number

FIELDS = tuple(Slots.model_fields)


def only(slots: Slots) -> dict:
    """The slots that were filled."""
    return {k: v for k, v in slots.model_dump().items() if v is not None}


def test_nothing_to_find_gives_all_none():
    slots = extract_slots("亲,这个质量怎么样呀")
    assert all(getattr(slots, field) is None for field in FIELDS)
    assert extract_slots("") == Slots()


# --- order_id

@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("我的订单1234567890123456789什么时候发", "1234567890123456789"),
        ("2023112300000001", "2023112300000001"),
        ("订单号：123456789012", "123456789012"),  # JD, 12 digits: needs the keyword
        ("订单编号 12345678901", "12345678901"),
        ("单号是12345678901234", "12345678901234"),
        ("订单号：２０２３１１２３０００００００１", "2023112300000001"),  # full-width digits
        ("[订单x]怎么还没发货", "[订单x]"),
        ("订单[订单x]", "[订单x]"),
    ],
)
def test_order_id_found(text, order_id):
    assert extract_slots(text).order_id == order_id


@pytest.mark.parametrize(
    "text",
    [
        "123456789012",  # 12 digits without a keyword: could be anything
        "12345678901234567890123",  # 23 digits: too long
        "订单123",  # too short
        "快递单号1234567890123",  # a tracking number, not an order
        "订单什么时候发",
    ],
)
def test_order_id_not_found(text):
    assert extract_slots(text).order_id is None


# --- phone

@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("手机13800138000", "13800138000"),
        ("电话:19912345678 谢谢", "19912345678"),
        ("138 0013 8000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("联系１３８００１３８０００", "13800138000"),
    ],
)
def test_phone_found(text, phone):
    assert extract_slots(text).phone == phone


@pytest.mark.parametrize(
    "text",
    [
        "1380013800012345678",  # a 19-digit order number starting like a phone
        "12800138000",  # 12x is not a mobile prefix
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "138-0013 8000",  # mixed separators
    ],
)
def test_phone_not_found(text):
    assert extract_slots(text).phone is None


def test_order_number_is_not_a_phone():
    slots = extract_slots("订单号1380013800012345678")
    assert slots.order_id == "1380013800012345678"
    assert slots.phone is None


def test_order_and_phone_together():
    assert only(extract_slots("订单号：2023112300000001，手机13800138000")) == {
        "order_id": "2023112300000001",
        "phone": "13800138000",
    }


# --- tracking_no and courier

@pytest.mark.parametrize(
    ("text", "tracking_no", "courier"),
    [
        ("SF1234567890123到哪了", "SF1234567890123", "顺丰"),
        ("sf123456789012", "SF123456789012", "顺丰"),
        ("JD0012345678901", "JD0012345678901", "京东"),
        ("JDVA12345678901", "JDVA12345678901", "京东"),
        ("YT1234567890123", "YT1234567890123", "圆通"),
        ("75123456789012", "75123456789012", "中通"),
        ("78123456789012", "78123456789012", "中通"),
        ("773456789012345", "773456789012345", "申通"),
        ("JT1234567890123", "JT1234567890123", "极兔"),
        ("4312345678901", "4312345678901", "韵达"),
        ("4612345678901", "4612345678901", "韵达"),
        ("EA123456789CN", "EA123456789CN", "EMS"),
    ],
)
def test_tracking_no_by_shape(text, tracking_no, courier):
    slots = extract_slots(text)
    assert (slots.tracking_no, slots.courier) == (tracking_no, courier)
    assert slots.order_id is None and slots.phone is None


@pytest.mark.parametrize(
    ("text", "tracking_no"),
    [
        ("快递单号是：1234567890123 怎么不动", "1234567890123"),
        ("运单号1234567890", "1234567890"),
        ("物流单号 123456789012345", "123456789012345"),
    ],
)
def test_tracking_no_after_keyword(text, tracking_no):
    slots = extract_slots(text)
    assert slots.tracking_no == tracking_no
    assert slots.order_id is None


@pytest.mark.parametrize(
    "text",
    [
        "SF12345",  # too short
        "1234567890123",  # 13 digits, no courier shape, no keyword
        "75123456789",  # too short for 中通
        "XSF1234567890123",  # prefix glued to other letters
    ],
)
def test_tracking_no_not_found(text):
    assert extract_slots(text).tracking_no is None


@pytest.mark.parametrize(
    ("text", "courier"),
    [
        ("可以发顺丰吗", "顺丰"),
        ("中通到不了", "中通"),
        ("发EMS", "EMS"),
        ("邮政能到吗", "邮政"),
        ("德邦物流", "德邦"),
        ("极兔太慢了", "极兔"),
        ("京东快递", "京东"),
        ("發順豐", "顺丰"),
        ("韵达还是圆通", "韵达"),  # first named
        ("中通单号SF1234567890123", "顺丰"),  # the number's shape wins
    ],
)
def test_courier_by_name(text, courier):
    assert extract_slots(text).courier == courier


@pytest.mark.parametrize("text", ["京东买的便宜", "发什么快递", "快递到了吗"])
def test_courier_not_found(text):
    assert extract_slots(text).courier is None


# --- quantity

@pytest.mark.parametrize(
    ("text", "quantity"),
    [
        ("买十件", 10),
        ("要两个", 2),
        ("20箱有优惠吗", 20),
        ("一百个", 100),
        ("三双袜子", 3),
        ("十五套", 15),
        ("两千五百件", 2500),
        ("一百五个", 150),
        ("九千九百九十九只", 9999),
        ("1万件", 10000),
        ("1,000支", 1000),
        ("5 瓶", 5),
        ("两件一共99元", 2),
    ],
)
def test_quantity_found(text, quantity):
    assert extract_slots(text).quantity == quantity


@pytest.mark.parametrize(
    "text",
    [
        "第二件半价",
        "等了一个月了",
        "我有一个问题",
        "99包邮",
        "三包吗",
        "支持花呗吗",
        "几件起批",
        "订单号2023112300000001件",  # digits already taken by the order
        "0件",
    ],
)
def test_quantity_not_found(text):
    assert extract_slots(text).quantity is None


# --- amount

@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("99元", 99.0),
        ("￥59.9", 59.9),
        ("¥ 1,299", 1299.0),
        ("三十块", 30.0),
        ("两百块", 200.0),
        ("便宜10块钱", 10.0),
        ("一百五十元", 150.0),
        ("100rmb", 100.0),
        ("RMB 88", 88.0),
        ("1.5万元", 15000.0),
    ],
)
def test_amount_found(text, amount):
    assert extract_slots(text).amount == pytest.approx(amount)


@pytest.mark.parametrize(
    "text",
    ["多少钱", "元旦发货吗", "两件一块发吗", "99包邮", "100美元", "订单2023112300000001元"],
)
def test_amount_not_found(text):
    assert extract_slots(text).amount is None


# --- province / city

@pytest.mark.parametrize(
    ("text", "province", "city"),
    [
        ("发到杭州", "浙江", "杭州"),
        ("发到深圳", "广东", "深圳"),
        ("寄到北京", "北京", "北京"),
        ("上海能到吗", "上海", "上海"),
        ("香港可以发吗", "香港", "香港"),
        ("新疆包邮吗", "新疆", None),
        ("西藏能发吗", "西藏", None),
        ("内蒙古发吗", "内蒙古", None),
        ("内蒙可以吗", "内蒙古", None),
        ("广西壮族自治区南宁市", "广西", "南宁"),
        ("宁夏回族自治区", "宁夏", None),
        ("广东省", "广东", None),
        ("江苏南京", "江苏", "南京"),
        ("我是湖南人,发到深圳", "广东", "深圳"),  # the city pins the province
        ("發到廣州多少錢", "广东", "广州"),
        ("乌鲁木齐几天到", "新疆", "乌鲁木齐"),
        ("吉林", "吉林", None),
        ("吉林市", "吉林", "吉林"),
        ("河南开封", "河南", "开封"),
        ("发到大理", "云南", "大理"),
        ("中山市", "广东", "中山"),
    ],
)
def test_places_found(text, province, city):
    slots = extract_slots(text)
    assert (slots.province, slots.city) == (province, city)


@pytest.mark.parametrize(
    "text",
    ["商品未开封可以退吗", "是大理石的吗", "金华火腿好吃吗", "发到哪里", "东北能发吗"],
)
def test_places_not_found(text):
    slots = extract_slots(text)
    assert (slots.province, slots.city) == (None, None)


# --- everything at once, and the number reader

def test_a_full_message():
    text = (
        "亲,订单号2023112300000001,买了两件共¥199,发到杭州,"
        "电话13800138000,顺丰单号SF1234567890123"
    )
    assert only(extract_slots(text)) == {
        "order_id": "2023112300000001",
        "tracking_no": "SF1234567890123",
        "courier": "顺丰",
        "phone": "13800138000",
        "quantity": 2,
        "amount": 199.0,
        "province": "浙江",
        "city": "杭州",
    }


@pytest.mark.parametrize(
    ("numeral", "value"),
    [
        ("十", 10), ("十五", 15), ("二十", 20), ("两百", 200), ("一百零五", 105), ("一百五", 150),
        ("两千五", 2500), ("一千零一十", 1010), ("九千九百九十九", 9999), ("一万二千", 12000),
        ("三万五", 35000), ("59.9", 59.9), ("1,000", 1000), ("1.5万", 15000), ("3千", 3000),
    ],
)
def test_parse_number(numeral, value):
    assert parse_number(numeral) == pytest.approx(value)


@pytest.mark.parametrize("numeral", ["", "abc", "一x"])
def test_parse_number_rejects_non_numerals(numeral):
    assert parse_number(numeral) is None


def test_slots_model_forbids_unknown_fields():
    with pytest.raises(ValueError):
        Slots(colour="red")
