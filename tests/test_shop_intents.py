"""A shop's own intents and switched-off defaults: config checks, training data, phrasebook, queues."""

from __future__ import annotations

import pytest

from bot.config import RUNTIME_PLACEHOLDERS, Config, ConfigError, PolicySettings, load_config
from bot.handoff.triggers import find_trigger, group_for
from bot.state import ConversationState
from intents.dataset import DEFAULT_DIR, TrainingDataError, load_training_set
from intents.labels import DEFAULT_INTENT_SET, DEFAULT_INTENTS, IntentSet
from phrasebook.loader import DEFAULT_DIR as DEFAULT_PHRASES
from phrasebook.loader import PhrasebookError, load_phrasebook

INSTALL = {"name": "install_service", "group": "aftersale", "description": "上门安装"}


def config_file(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_set_is_the_31_intents_with_their_groups():
    assert DEFAULT_INTENT_SET.names == DEFAULT_INTENTS
    assert DEFAULT_INTENT_SET.group("lost_parcel") == "aftersale"
    assert DEFAULT_INTENT_SET.group("invoice") == "presale"
    assert DEFAULT_INTENT_SET.group("thanks") == "general"


def test_a_shop_intent_joins_its_group_and_a_disabled_one_leaves():
    intents = IntentSet.build({"install_service": "aftersale"}, ["competitor_cheaper"])
    assert "install_service" in intents and "install_service" in intents.aftersale
    assert "competitor_cheaper" not in intents and "competitor_cheaper" not in intents.names
    assert len(intents.names) == len(DEFAULT_INTENTS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("intents: {custom: [{name: greeting, group: general}]}", "greeting: already a default intent"),
        ("intents: {custom: [{name: Bad-Name, group: general}]}", "intents.custom.0.name"),
        ("intents: {custom: [{name: a_b, group: vip}]}", "intents.custom.0.group"),
        ("intents: {custom: [{name: a_b, group: general}, {name: a_b, group: presale}]}", "unique: a_b"),
        ("intents: {disabled: [other]}", "'other' cannot be switched off"),
        ("intents: {disabled: [no_such]}", "not a default intent: no_such"),
        ("policy: {handoff_intents: [lost_parcle]}", "policy.handoff_intents: unknown intent 'lost_parcle'"),
        ("intents: {disabled: [lost_parcel]}\npolicy: {handoff_intents: [lost_parcel]}", "switched off"),
    ],
)
def test_the_config_refuses_intent_mistakes_by_name(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(config_file(tmp_path, text))


def test_the_handoff_setting_of_a_shop_intent_reaches_the_policy():
    config = Config(intents={"custom": [{**INSTALL, "handoff": True}, {"name": "engraving", "group": "presale"}]})
    assert config.policy.handoff_intents[-1] == "install_service"
    assert "engraving" not in config.policy.handoff_intents
    assert config.policy.is_aftersale("install_service")
    assert not config.policy.is_aftersale("engraving")
    assert PolicySettings().is_aftersale("lost_parcel") and not PolicySettings().is_aftersale("invoice")


def test_a_handoff_shop_intent_opens_a_ticket_in_its_own_queue():
    config = Config(intents={"custom": [{"name": "engraving", "group": "presale", "handoff": True},
                                        {**INSTALL, "handoff": True}]})
    kwargs = dict(confident=True, angry=False, anger_words=[], has_images=False, policy=config.policy,
                  settings=config.handoff)
    presale = find_trigger(intent="engraving", state=ConversationState(conversation_id="c1", customer_id="u1"), **kwargs)
    aftersale = find_trigger(intent="install_service", state=ConversationState(conversation_id="c1", customer_id="u1"), **kwargs)
    assert (presale.reason, presale.group) == ("engraving", "presale")
    assert (aftersale.reason, aftersale.group) == ("install_service", "aftersale")
    assert group_for(ConversationState(conversation_id="c1", customer_id="u1"), "install_service", config.policy) == "aftersale"
    assert group_for(ConversationState(conversation_id="c1", customer_id="u1"), "install_service") == "presale"  # unknown to the default policy


def test_an_after_sale_shop_intent_moves_the_conversation_to_after_sale():
    state = ConversationState(conversation_id="c1", customer_id="u1")
    state.note_intent("engraving", aftersale=False)
    assert state.stage == "presale"
    state.note_intent("install_service", aftersale=True)
    assert state.stage == "aftersale"


def test_training_lines_of_an_undeclared_intent_are_refused(tmp_path):
    extra = tmp_path / "install.yaml"
    extra.write_text("install_service:\n  - 能上门装吗\n", encoding="utf-8")
    with pytest.raises(TrainingDataError) as raised:
        load_training_set([DEFAULT_DIR, extra])
    assert raised.value.problems == [f"{extra}:1: unknown intent 'install_service'"]
    data = load_training_set([DEFAULT_DIR, extra], intents=(*DEFAULT_INTENTS, "install_service"))
    assert data.examples["install_service"] == ["能上门装吗"]


def test_a_shop_label_wins_over_a_default_line_but_not_over_its_own(tmp_path):
    default = load_training_set([DEFAULT_DIR])
    taken = default.examples["other"][0]
    extra = tmp_path / "mine.yaml"
    extra.write_text(f"install_service:\n  - {taken}\n", encoding="utf-8")
    data = load_training_set([DEFAULT_DIR, extra], intents=(*DEFAULT_INTENTS, "install_service"))
    assert taken in data.examples["install_service"] and taken not in data.examples["other"]
    assert len(data) == len(default)
    clash = tmp_path / "clash.yaml"
    clash.write_text("install_service:\n  - 装吗\nthanks:\n  - 装吗\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="is under thanks and install_service"):
        load_training_set([DEFAULT_DIR, clash], intents=(*DEFAULT_INTENTS, "install_service"))


def test_a_switched_off_intent_trains_other():
    default = load_training_set([DEFAULT_DIR])
    data = load_training_set([DEFAULT_DIR], intents=[i for i in DEFAULT_INTENTS if i != "competitor_cheaper"],
                             disabled=["competitor_cheaper"])
    assert "competitor_cheaper" not in data.examples
    assert set(default.examples["competitor_cheaper"]) <= set(data.examples["other"])
    assert len(data) == len(default)


def test_a_switched_off_intent_loses_its_matchable_phrases_but_keeps_script_lines():
    placeholders = Config().shop.placeholders()
    full = load_phrasebook([DEFAULT_PHRASES], placeholders=placeholders, runtime=RUNTIME_PLACEHOLDERS)
    names = [i for i in DEFAULT_INTENTS if i != "price_bargain"]
    book = load_phrasebook([DEFAULT_PHRASES], placeholders=placeholders, runtime=RUNTIME_PLACEHOLDERS,
                           intents=names, disabled=["price_bargain"])
    dropped = {e.id for e in full.entries} - {e.id for e in book.entries}
    assert dropped and all(full.get(i).intent == "price_bargain" and full.get(i).matchable for i in dropped)
    assert book.get("bargain.manager") is not None  # a script line the ladder sends


def test_a_phrase_of_an_undeclared_shop_intent_names_file_and_line(tmp_path):
    book = tmp_path / "mine.yaml"
    book.write_text("- id: shop.install\n  intent: install_service\n  questions: [装吗]\n  replies: [装的]\n",
                    encoding="utf-8")
    with pytest.raises(PhrasebookError) as raised:
        load_phrasebook([book], placeholders=[])
    assert raised.value.problems == [f"{book}:2: shop.install: unknown intent 'install_service'"]
    assert load_phrasebook([book], placeholders=[], intents=[*DEFAULT_INTENTS, "install_service"]).entries


def test_lint_says_when_a_shop_intent_has_too_few_examples_or_no_reply(tmp_path):
    from click.testing import CliRunner

    from bot.cli import main
    from tests_support import write_config

    lines = tmp_path / "install.yaml"
    lines.write_text("install_service:\n" + "".join(f"  - 能上门装吗{i}\n" for i in range(5)), encoding="utf-8")
    config = write_config(tmp_path, intents={"data_paths": [str(lines)], "custom": [INSTALL]})
    result = CliRunner().invoke(main, ["lint", "--config", str(config)])
    assert result.exit_code == 0, result.output  # warnings, not errors: the shop is still usable
    assert "warning: intents.custom: install_service has 5 training examples; write at least 20" in result.output
    assert "warning: intents.custom: install_service has no phrasebook entry to suggest" in result.output
    lines.write_text("install_service:\n" + "".join(f"  - 能上门装吗{i}\n" for i in range(20)), encoding="utf-8")
    quiet = CliRunner().invoke(main, ["lint", "--config", str(config)])
    assert "training examples; write" not in quiet.output
    chinese = CliRunner().invoke(main, ["--lang", "zh", "lint", "--config", str(config)])
    assert "提醒：intents.custom：install_service 还没有可以推荐的话术" in chinese.output
