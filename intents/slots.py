"""Slot extraction: the concrete facts in a customer message.

Flows need them (after-sale intake asks for the order number only when it is missing), handoff
tickets summarise them, and the policy treats a message with an order number differently from
small talk. Every rule is a regular expression or a table lookup on normalised text: no model,
no network, a few microseconds per message.

Rules, in the order they claim digits (a digit run used by one slot is never reused by another):

1. ``tracking_no`` with a courier prefix: SF + 12-15 digits (顺丰), JD/JDV/JDVA/JDX + 9-15 digits
   (京东), YT + 10-15 digits (圆通), JT + 13 digits (极兔), DPK + 9-13 digits (德邦), and the
   international postal form XX + 9 digits + CN (E… is EMS, else 邮政). Returned upper-case.
2. ``tracking_no`` after 快递单号/运单号/物流单号/快递号: 10-15 digits.
3. ``order_id`` after 订单/订单号/订单编号/单号: 11-20 digits (JD orders are 11-13 digits and only
   recognisable by the keyword), or the dataset placeholder ``[订单x]``.
4. ``order_id`` as a bare run of 16-20 digits (Taobao/Tmall orders have 18-19).
5. ``phone``: a Chinese mobile, 1[3-9] + 9 digits, optionally +86 and 3-4-4 spaced or dashed,
   never part of a longer digit run (so a 19-digit order number is not a phone).
6. ``tracking_no`` as a bare courier-shaped run: 75/73/78 + 12 digits (中通), 77 + 13 (申通),
   43/46 + 11 (韵达).
7. ``courier``: from the tracking number's shape, else the first courier named in the text
   (顺丰 中通 圆通 申通 韵达 极兔 德邦 邮政 EMS, and 京东 only as 京东快递/物流/配送, since plain
   京东 is usually the platform).
8. ``quantity``: the first number followed by a measure word (件 个 条 双 套 箱 盒 台 瓶 包 只 份
   支 本); Arabic or Chinese numerals (买十件 → 10, 一百个 → 100, 两千五百件 → 2500, 1万件 →
   10000). Not after 第 (第二件半价), not time or filler (一个月, 一个问题), not 包邮/支付/三包.
9. ``amount`` in yuan: the first number followed by 元/块/块钱/rmb or preceded by ¥/rmb
   (99元, ￥59.9, 三十块 → 30.0). 一块 meaning "together" (一块发) is skipped.
10. ``province``/``city``: from a table of the 34 provincial-level divisions (full or short names)
    and ~140 large prefecture-level cities. A city fixes its province (发到深圳 → 广东/深圳, even
    after "我是湖南人"); municipalities and SARs are both province and city. City names that are
    also ordinary words or products (开封 as in 未开封, 大理石, 金华火腿, 中山路 …) count only
    after a shipping cue (到/往/在/寄/发/地址/a province) or before 市.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from intents.text import normalise

__all__ = ["Slots", "extract_slots", "parse_number"]


class Slots(BaseModel):
    """Facts found in one message; None means "not mentioned"."""

    model_config = ConfigDict(extra="forbid")

    order_id: str | None = None
    tracking_no: str | None = None
    courier: str | None = None
    phone: str | None = None
    quantity: int | None = None
    amount: float | None = None
    province: str | None = None
    city: str | None = None


# --- places --------------------------------------------------------------------------------
# One line per provincial-level division: short name, full name, then large cities.
_PLACE_TABLE = """
北京 北京市
天津 天津市
上海 上海市
重庆 重庆市
香港 香港特别行政区
澳门 澳门特别行政区
河北 河北省 石家庄 唐山 保定 邯郸 廊坊 沧州 秦皇岛 邢台 张家口
山西 山西省 太原 大同 运城 长治 临汾
辽宁 辽宁省 沈阳 大连 鞍山 锦州 抚顺
吉林 吉林省 长春
黑龙江 黑龙江省 哈尔滨 大庆 齐齐哈尔 牡丹江
江苏 江苏省 南京 苏州 无锡 常州 南通 徐州 扬州 盐城 泰州 镇江 连云港 淮安 宿迁
浙江 浙江省 杭州 宁波 温州 绍兴 嘉兴 金华 台州 湖州 丽水 衢州 舟山
安徽 安徽省 合肥 芜湖 蚌埠 阜阳 安庆 马鞍山 滁州
福建 福建省 福州 厦门 泉州 漳州 莆田 龙岩
江西 江西省 南昌 赣州 九江 上饶 宜春
山东 山东省 济南 青岛 烟台 潍坊 临沂 淄博 济宁 威海 泰安 德州 聊城 菏泽 日照
河南 河南省 郑州 洛阳 南阳 新乡 商丘 开封 周口 信阳 许昌
湖北 湖北省 武汉 宜昌 襄阳 荆州 十堰 黄冈 孝感
湖南 湖南省 长沙 株洲 湘潭 衡阳 岳阳 常德 郴州
广东 广东省 广州 深圳 东莞 佛山 珠海 中山 惠州 汕头 江门 湛江 茂名 肇庆 揭阳 清远
海南 海南省 海口 三亚
四川 四川省 成都 绵阳 宜宾 德阳 南充 泸州 乐山
贵州 贵州省 贵阳 遵义
云南 云南省 昆明 曲靖 大理
陕西 陕西省 西安 宝鸡 咸阳 榆林
甘肃 甘肃省 兰州 天水
青海 青海省 西宁
台湾 台湾省 台北 高雄 台中
内蒙古 内蒙古自治区 内蒙 呼和浩特 包头 鄂尔多斯 赤峰
广西 广西壮族自治区 南宁 柳州 桂林 北海 玉林
西藏 西藏自治区 拉萨
宁夏 宁夏回族自治区 银川
新疆 新疆维吾尔自治区 乌鲁木齐 克拉玛依
"""
# Divisions that are also a city: the municipalities and the two SARs.
_CITY_PROVINCES = frozenset({"北京", "天津", "上海", "重庆", "香港", "澳门"})
# Aliases of a province that are not cities.
_PROVINCE_ALIASES = frozenset({"内蒙"})
# City names that are also everyday words or product names: need a shipping cue or 市.
_AMBIGUOUS_CITIES = frozenset("开封 大同 大理 长治 中山 包头 北海 天水 金华 大连".split())
_PLACE_CUES = ("到", "往", "在", "寄", "发", "地址", "地址:", "地址是", "省", "自治区")


def _load_places() -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    provinces: dict[str, str] = {}  # any spelling -> short province name
    cities: dict[str, tuple[str, str]] = {}  # any spelling -> (city, short province name)
    for line in _PLACE_TABLE.strip().splitlines():
        short, full, *rest = line.split()
        provinces[short] = provinces[full] = short
        if short in _CITY_PROVINCES:
            cities[short] = cities[full] = (short, short)
        for name in rest:
            if name in _PROVINCE_ALIASES:
                provinces[name] = short
            else:
                cities[name] = (name, short)
    # 吉林 alone means the province; the city of the same name needs its 市.
    cities["吉林市"] = ("吉林", "吉林")
    return provinces, cities


_PROVINCES, _CITIES = _load_places()
# Longest first, so 广西壮族自治区 wins over 广西 and 吉林市 over 吉林.
_PLACE_RE = re.compile("|".join(sorted({*_PROVINCES, *_CITIES}, key=len, reverse=True)))
_PROVINCE_CUES = tuple(_PROVINCES)

# --- numbers -------------------------------------------------------------------------------
_CN_DIGITS = {
    ch: value
    for value, chars in enumerate("零〇 一 二两 三 四 五 六 七 八 九".split())
    for ch in chars
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMERAL = "[零〇一二两三四五六七八九十百千万]+"
_AR_NUMERAL = r"[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?[百千万]?"
# A numeral starts at the beginning of a number: never inside 2023 or inside 第一百.
_NUMBER = rf"(?:(?<![0-9.,]){_AR_NUMERAL}|(?<![零〇一二两三四五六七八九十百千万]){_CN_NUMERAL})"


def parse_number(text: str) -> float | None:
    """Read an Arabic or Chinese numeral: "59.9", "1,000", "1.5万", "两百", "一百零五", "两千五".

    Colloquial abbreviations count: a digit right after 百/千/万 is a tenth of that unit
    (一百五 → 150, 两千五 → 2500, 三万五 → 35000), as in speech; 一百零五 is 105.

    Returns:
        The value, or None when ``text`` is not a numeral this reader understands.
    """
    if not text:
        return None
    if text[0].isdigit():
        multiplier = 1
        if text[-1] in "百千万":
            multiplier = {"百": 100, "千": 1000, "万": 10000}[text[-1]]
            text = text[:-1]
        try:
            return float(text.replace(",", "")) * multiplier
        except ValueError:
            return None
    total = section = digit = 0
    last_unit = 0
    after_unit = False  # the previous character was 十/百/千/万
    abbreviated = False  # the current digit came straight after a unit: 一百五
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
            abbreviated = after_unit and digit != 0
            after_unit = False
        elif ch in _CN_UNITS:
            section += (digit or 1) * _CN_UNITS[ch]
            digit, last_unit, after_unit = 0, _CN_UNITS[ch], True
        elif ch == "万":
            total += ((section + digit) or 1) * 10000
            section, digit, last_unit, after_unit = 0, 0, 10000, True
        else:
            return None
    if digit and abbreviated and last_unit >= 100:
        digit *= last_unit // 10
    return float(total + section + digit)


# --- patterns ------------------------------------------------------------------------------
_PREFIXED_TRACKING = [
    (re.compile(r"(?<![a-z0-9])sf[0-9]{12,15}(?![0-9])"), "顺丰"),
    (re.compile(r"(?<![a-z0-9])jd[a-z]{0,2}[0-9]{9,15}(?![0-9])"), "京东"),
    (re.compile(r"(?<![a-z0-9])yt[0-9]{10,15}(?![0-9])"), "圆通"),
    (re.compile(r"(?<![a-z0-9])jt[0-9]{13}(?![0-9])"), "极兔"),
    (re.compile(r"(?<![a-z0-9])dpk[0-9]{9,13}(?![0-9])"), "德邦"),
    (re.compile(r"(?<![a-z0-9])e[a-z][0-9]{9}cn(?![a-z0-9])"), "EMS"),
    (re.compile(r"(?<![a-z0-9])[a-z]{2}[0-9]{9}cn(?![a-z0-9])"), "邮政"),
]
_BARE_TRACKING = [
    (re.compile(r"(?<![0-9])7[358][0-9]{12}(?![0-9])"), "中通"),
    (re.compile(r"(?<![0-9])77[0-9]{13}(?![0-9])"), "申通"),
    (re.compile(r"(?<![0-9])4[36][0-9]{11}(?![0-9])"), "韵达"),
]
_KEYWORD_GAP = r"[\s:是为号码]*"
_TRACKING_KEYWORD_RE = re.compile(
    rf"(?:快递单号|运单号|运单编号|物流单号|快递号){_KEYWORD_GAP}([0-9]{{10,15}})(?![0-9])"
)
_ORDER_KEYWORD_RE = re.compile(
    rf"(?:订单编号|订单号|订单|(?<!快递)(?<!运)(?<!物流)单号){_KEYWORD_GAP}([0-9]{{11,20}})(?![0-9])"
)
_ORDER_PLACEHOLDER_RE = re.compile(r"\[订单号?x\]")
_BARE_ORDER_RE = re.compile(r"(?<![0-9])[0-9]{16,20}(?![0-9])")
_PHONE_RE = re.compile(
    r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])([- ]?)([0-9]{4})\2([0-9]{4})(?![0-9])"
)
#: Public for `bot.masking`: the same phone recognition masks phones in reports and logs.
PHONE_RE = _PHONE_RE
_COURIER_NAMES = [
    ("顺丰", "顺丰"), ("中通", "中通"), ("圆通", "圆通"), ("申通", "申通"), ("韵达", "韵达"),
    ("极兔", "极兔"), ("德邦", "德邦"), ("邮政", "邮政"), ("ems", "EMS"),
    ("京东快递", "京东"), ("京东物流", "京东"), ("京东配送", "京东"),
]
_COURIER_RE = re.compile("|".join(name for name, _ in _COURIER_NAMES))
_COURIER_CANON = dict(_COURIER_NAMES)

_MEASURE_RE = re.compile(
    rf"(?<!第)({_NUMBER})\s*(件|个(?!月|星期|礼拜|小时|钟|工作日|人|问题|事)|条|双|套|箱|盒|台|瓶"
    r"|包(?!邮|装|括)|只|份|支(?!付|持)|本)"
)
_AMOUNT_RE = re.compile(
    rf"(?:(?:¥|rmb)\s*({_AR_NUMERAL})|({_NUMBER})\s*(块钱|元|块|rmb))"
)
_TOGETHER = frozenset("儿发寄买拍下付结去来走")  # 一块 + these = "together", not one yuan


class _Claims:
    """Spans of the text already used by a slot, so one digit run feeds only one slot."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in self._spans)

    def take(self, start: int, end: int) -> None:
        self._spans.append((start, end))


def _first_free(
    pattern: re.Pattern[str], text: str, claims: _Claims, group: int = 0
) -> re.Match[str] | None:
    for match in pattern.finditer(text):
        if claims.free(match.start(group), match.end(group)):
            claims.take(match.start(group), match.end(group))
            return match
    return None


def _identifiers(text: str, slots: dict[str, object], claims: _Claims) -> None:
    """Rules 1-7: tracking number, order number, phone and courier."""
    for pattern, courier in _PREFIXED_TRACKING:
        if match := _first_free(pattern, text, claims):
            slots["tracking_no"], slots["courier"] = match.group(0).upper(), courier
            break
    if "tracking_no" not in slots and (match := _first_free(_TRACKING_KEYWORD_RE, text, claims, 1)):
        slots["tracking_no"] = match.group(1)
    if match := _first_free(_ORDER_KEYWORD_RE, text, claims, 1):
        slots["order_id"] = match.group(1)
    elif match := _first_free(_ORDER_PLACEHOLDER_RE, text, claims):
        slots["order_id"] = "[订单x]"
    elif match := _first_free(_BARE_ORDER_RE, text, claims):
        slots["order_id"] = match.group(0)
    if match := _first_free(_PHONE_RE, text, claims):
        slots["phone"] = "".join(match.group(1, 3, 4))
    for pattern, courier in _BARE_TRACKING:
        if "tracking_no" in slots:
            break
        if match := _first_free(pattern, text, claims):
            slots["tracking_no"], slots["courier"] = match.group(0), courier
    if "courier" not in slots and (match := _COURIER_RE.search(text)):
        slots["courier"] = _COURIER_CANON[match.group(0)]


def _quantity(text: str, claims: _Claims) -> int | None:
    for match in _MEASURE_RE.finditer(text):
        numeral, unit = match.group(1), match.group(2)
        if numeral + unit == "三包" or not claims.free(*match.span(1)):
            continue  # 三包: the warranty policy
        value = parse_number(numeral)
        if value is not None and value == int(value) and value > 0:
            return int(value)
    return None


def _amount(text: str, claims: _Claims) -> float | None:
    for match in _AMOUNT_RE.finditer(text):
        group = 1 if match.group(1) else 2
        if not claims.free(*match.span(group)):
            continue
        numeral, unit = match.group(group), match.group(3)
        if numeral == "一" and unit == "块" and text[match.end() : match.end() + 1] in _TOGETHER:
            continue
        value = parse_number(numeral)
        if value is not None:
            return value
    return None


def _city_cued(text: str, match: re.Match[str]) -> bool:
    """Say whether an ambiguous city name (开封, 大理 …) is used as a place here."""
    before = text[: match.start()]
    return (
        text[match.end() : match.end() + 1] == "市"
        or before.endswith(_PLACE_CUES)
        or before.endswith(_PROVINCE_CUES)
    )


def _places(text: str) -> tuple[str | None, str | None]:
    province = city = city_province = None
    for match in _PLACE_RE.finditer(text):
        name = match.group(0)
        if city is None and name in _CITIES:
            if name not in _AMBIGUOUS_CITIES or _city_cued(text, match):
                city, city_province = _CITIES[name]
        if province is None and name in _PROVINCES:
            province = _PROVINCES[name]
    # The city is the more specific fact (我是湖南人,发到深圳 ships to 广东).
    return (city_province or province), city


def extract_slots(text: str) -> Slots:
    """Find order and tracking numbers, phone, courier, quantity, amount and place in a message.

    See the module docstring for the rules. The text is normalised first (idempotent, so already
    normalised text is fine): full-width digits, 繁體 place names and ￥ all work.

    Args:
        text: One customer message, raw or normalised.

    Returns:
        The slots; each is None when the message does not mention it.
    """
    text = normalise(text)
    claims = _Claims()
    slots: dict[str, object] = {}
    _identifiers(text, slots, claims)
    slots["quantity"] = _quantity(text, claims)
    slots["amount"] = _amount(text, claims)
    slots["province"], slots["city"] = _places(text)
    return Slots(**slots)
