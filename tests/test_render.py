"""Placeholders fill from the shop profile; variants rotate and avoid the last line sent."""

import pytest

from bot.config import Shop
from phrasebook.render import TemplateError, choose_reply, placeholders_in, render
from phrasebook.schema import PhraseEntry


def test_shop_placeholders_display_numbers_plainly():
    values = Shop(platform="tmall", extra_courier_fee=12.0, custom={"activity": "满300减30"}).placeholders()
    assert values["platform_name"] == "天猫"
    assert values["extra_courier_fee"] == "12"
    assert values["activity"] == "满300减30"
    assert render("{platform_name}补{extra_courier_fee}元发顺丰，{activity}", values) == "天猫补12元发顺丰，满300减30"


def test_render_refuses_a_missing_value():
    with pytest.raises(KeyError, match="shop_nmae"):
        render("欢迎光临{shop_nmae}", {"shop_name": "小鹿"})


def test_placeholders_in_lists_names_and_rejects_fancy_forms():
    assert placeholders_in("{a}和{b}，{{不是}}") == ["a", "b"]
    for bad in ("{", "{}", "{0}", "{a.b}", "{a[0]}", "{a:>4}", "{a!r}"):
        with pytest.raises(TemplateError):
            placeholders_in(bad)


ENTRY = PhraseEntry(id="x.y", intent="greeting", questions=("在吗",), replies=("一{gift}", "二{gift}", "三{gift}"))
VALUES = {"gift": "!"}


def test_variants_rotate_with_turn():
    assert [choose_reply(ENTRY, VALUES, turn=t) for t in range(4)] == ["一!", "二!", "三!", "一!"]


def test_variant_never_repeats_the_avoided_rendered_line():
    assert choose_reply(ENTRY, VALUES, avoid=["一!"], turn=0) == "二!"
    assert choose_reply(ENTRY, VALUES, avoid=["一!", "二!"], turn=0) == "三!"
    assert choose_reply(ENTRY, VALUES, avoid=["二!"], turn=1) == "三!"
    single = PhraseEntry(id="x.z", intent="greeting", replies=("只有一句",))
    assert choose_reply(single, {}, avoid=["只有一句"]) == "只有一句"
