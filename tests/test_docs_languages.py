"""Every guide a shop reads is in Chinese, and a Chinese translation keeps the English guide's
commands and config blocks exactly (so the two cannot drift apart where it matters most)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests_support import REPO

DOCS = REPO / "docs"
FENCE = re.compile(r"^( *)```[^\n]*\n.*?^\1```[ ]*$", re.S | re.M)
CJK = re.compile(r"[\u4e00-\u9fff]")


def guides() -> list[Path]:
    """Hand-written guides: docs/**/*.md except generated reference pages and translations."""
    return sorted(
        p for p in DOCS.rglob("*.md")
        if "reference" not in p.relative_to(DOCS).parts and not p.name.endswith((".zh.md", ".en.md"))
    )


def chinese(path: Path) -> int:
    return len(CJK.findall(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("guide", guides(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_guide_can_be_read_in_chinese(guide):
    sibling = guide.with_name(guide.name.replace(".md", ".zh.md"))
    assert sibling.exists() or chinese(guide) >= 200, (
        f"{guide.relative_to(REPO)} has no Chinese version: add {sibling.relative_to(REPO)}"
    )


def translations() -> list[tuple[Path, Path]]:
    pairs = []
    for zh in sorted(DOCS.rglob("*.zh.md")):
        en = zh.with_name(zh.name.replace(".zh.md", ".md"))
        if en.exists():
            pairs.append((en, zh))
    return pairs


def test_the_connector_guides_have_chinese_translations():
    names = {en.name for en, _ in translations()}
    for connector in ("generic", "wecom", "wecom_kf", "dingtalk", "feishu", "chatwoot", "telegram"):
        assert f"{connector}.md" in names


@pytest.mark.parametrize(("en", "zh"), translations(), ids=lambda p: p.name)
def test_a_translation_keeps_every_command_and_config_block(en, zh):
    english = [m.group(0) for m in FENCE.finditer(en.read_text(encoding="utf-8"))]
    translated = [m.group(0) for m in FENCE.finditer(zh.read_text(encoding="utf-8"))]
    assert translated == english, f"{zh.name}: its code blocks differ from {en.name}'s — update the translation"
    assert f"]({en.name})" in zh.read_text(encoding="utf-8"), f"{zh.name} should link to {en.name}"
    assert chinese(zh) >= 200
