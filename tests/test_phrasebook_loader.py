"""Every loader error names file and line; the default phrasebook loads clean."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.config import RUNTIME_PLACEHOLDERS, Shop
from phrasebook.loader import DEFAULT_DIR, PhrasebookError, load_phrasebook

PLACEHOLDERS = Shop().placeholders()

GOOD = """\
- id: greet.hi
  intent: greeting
  questions: [在吗, 你好]
  replies:
    - 亲，在的，欢迎光临{shop_name}
"""


def load(tmp_path: Path, text: str, name: str = "book.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_phrasebook([path], placeholders=PLACEHOLDERS, runtime=RUNTIME_PLACEHOLDERS), path


def problems_of(tmp_path: Path, text: str) -> tuple[list[str], Path]:
    with pytest.raises(PhrasebookError) as info:
        load(tmp_path, text)
    return info.value.problems, tmp_path / "book.yaml"


def test_good_file_loads(tmp_path):
    book, path = load(tmp_path, GOOD)
    entry = book.get("greet.hi")
    assert entry.questions == ("在吗", "你好")
    assert entry.auto_send is True
    assert entry.source == f"{path}:1"


def test_malformed_yaml_names_file_and_line(tmp_path):
    problems, path = problems_of(tmp_path, GOOD + "- id: [unclosed\n  intent: greeting\n")
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:")
    line = int(problems[0].split(":")[1])
    assert line in (6, 7, 8)
    assert "invalid YAML" in problems[0]


def test_unknown_placeholder_names_the_reply_line(tmp_path):
    text = GOOD + "- id: greet.bye\n  intent: farewell\n  questions: [拜拜]\n  replies:\n    - 好的\n    - 再见，{shop_nmae}欢迎再来\n"
    problems, path = problems_of(tmp_path, text)
    assert problems == [f"{path}:11: greet.bye: unknown placeholder {{shop_nmae}}"]


def test_runtime_placeholder_only_in_script_lines(tmp_path):
    script = "- id: wait.line\n  intent: human_request\n  replies: ['大约{wait_minutes}分钟']\n"
    book, _ = load(tmp_path, script)
    assert book.get("wait.line").matchable is False
    problems, path = problems_of(tmp_path, script.replace("  replies", "  questions: [人工]\n  replies"))
    assert len(problems) == 1 and "{wait_minutes} is filled by a flow" in problems[0]
    assert problems[0].startswith(f"{path}:4:")


def test_duplicate_id_names_both_places(tmp_path):
    problems, path = problems_of(tmp_path, GOOD + GOOD)
    assert problems == [f"{path}:6: duplicate id 'greet.hi' (first at {path}:1)"]


def test_duplicate_id_across_files(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(GOOD, encoding="utf-8")
    b.write_text(GOOD, encoding="utf-8")
    with pytest.raises(PhrasebookError) as info:
        load_phrasebook([tmp_path], placeholders=PLACEHOLDERS)
    assert info.value.problems == [f"{b}:1: duplicate id 'greet.hi' (first at {a}:1)"]


@pytest.mark.parametrize(
    "replies, needle",
    [
        ("[]", "replies (x.y): Tuple should have at least 1 item"),
        ('["  "]', "replies (x.y): Value error, item 1 is empty"),
    ],
)
def test_empty_replies(tmp_path, replies, needle):
    problems, path = problems_of(tmp_path, f"- id: x.y\n  intent: greeting\n  replies: {replies}\n")
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3: ")
    assert needle in problems[0]


def test_missing_replies_points_at_the_entry(tmp_path):
    problems, path = problems_of(tmp_path, GOOD + "- id: no.reply\n  intent: greeting\n")
    assert problems == [f"{path}:6: replies (no.reply): Field required"]


def test_unknown_intent(tmp_path):
    problems, path = problems_of(tmp_path, GOOD.replace("intent: greeting", "intent: greting"))
    assert problems == [f"{path}:2: greet.hi: unknown intent 'greting'"]


def test_unknown_field_and_bad_id(tmp_path):
    text = "- id: Bad Id\n  intent: greeting\n  replise: [hi]\n  replies: [你好]\n"
    problems, path = problems_of(tmp_path, text)
    assert any(p.startswith(f"{path}:1: id") and "pattern" in p for p in problems)
    assert any(p == f"{path}:3: replise (Bad Id): unknown field" for p in problems)


@pytest.mark.parametrize("template", ["价格{", "{0}元", "{shop.name}", "{gift!r}", "{return_days:>3}"])
def test_malformed_braces(tmp_path, template):
    problems, path = problems_of(tmp_path, f"- id: x.y\n  intent: greeting\n  replies: ['{template}']\n")
    assert len(problems) == 1 and problems[0].startswith(f"{path}:3: x.y: ")


def test_not_a_list(tmp_path):
    problems, path = problems_of(tmp_path, "id: x\nintent: greeting\n")
    assert problems == [f"{path}:1: a phrasebook file is a list of entries, not dict"]


def test_entry_not_a_mapping(tmp_path):
    problems, path = problems_of(tmp_path, GOOD + "- just a string\n")
    assert problems == [f"{path}:6: an entry must be a mapping with id, intent, replies"]


def test_all_problems_reported_together(tmp_path):
    text = GOOD.replace("{shop_name}", "{nope}") + GOOD.replace("greet.hi", "greet.two").replace("greeting", "nope")
    problems, _ = problems_of(tmp_path, text)
    assert len(problems) == 2


def test_missing_file(tmp_path):
    with pytest.raises(PhrasebookError) as info:
        load_phrasebook([tmp_path / "gone.yaml"], placeholders=PLACEHOLDERS)
    assert info.value.problems == [f"{tmp_path / 'gone.yaml'}: no such file"]


def test_not_utf8(tmp_path):
    path = tmp_path / "book.yaml"
    path.write_bytes("- id: a\n  replies: [你好]\n".encode("gbk"))
    with pytest.raises(PhrasebookError) as info:
        load_phrasebook([path], placeholders=PLACEHOLDERS)
    assert info.value.problems[0].startswith(f"{path}: not UTF-8")


def test_default_phrasebook_is_clean_and_covers_the_scripts():
    book = load_phrasebook([DEFAULT_DIR], placeholders=PLACEHOLDERS, runtime=RUNTIME_PLACEHOLDERS)
    required = {
        "greeting.hello", "greeting.away", "bargain.first", "bargain.after_concession",
        "bargain.manager", "bargain.gift_followup", "bargain.bulk", "bargain.bulk_handoff",
        "bargain.returning", "bargain.competitor", "pay.howto", "pay.chase.consulted",
        "pay.chase.plain", "invoice.can_issue", "aftersale.ask_order", "aftersale.ask_photos",
        "handoff.notice", "handoff.wait", "farewell.deal", "farewell.no_deal", "thanks.reply",
    }
    assert required <= {e.id for e in book}
    from intents.labels import DEFAULT_INTENTS

    covered = {e.intent for e in book if e.matchable}
    assert covered - {"other"} == set(DEFAULT_INTENTS) - {"other"}
    # the only `other` lines customers ask for are declines an agent sends (never the bot alone)
    assert all(not e.auto_send for e in book if e.matchable and e.intent == "other")
    ladder = {book.get(i).stage for i in ("bargain.first", "bargain.after_concession", "bargain.manager")}
    assert ladder == {1, 2, 3}
