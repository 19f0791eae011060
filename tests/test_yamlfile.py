"""libyaml's fast loader reads every shipped data file exactly as the pure-Python one does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from intents.yamlfile import FastLoader, YamlFileError, load_yaml
from tests_support import REPO

SHIPPED = sorted(
    p for folder in ("intents/data", "phrasebook/data", "bot/suites/default", "examples")
    for p in (REPO / folder).glob("*.y*ml")
)


def test_pyyaml_has_libyaml_here():
    assert FastLoader is getattr(yaml, "CSafeLoader", None) or not yaml.__with_libyaml__


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_fast_and_pure_loaders_give_the_same_data_and_lines(path: Path):
    assert load_yaml(path, FastLoader) == load_yaml(path, yaml.SafeLoader)


@pytest.mark.parametrize(
    ("text", "line", "plain"),
    [
        ("- id: a\n  replies: [\"x]\n", 2, "a quote or bracket is opened and never closed"),
        ("a: b: c\n", 1, "a ':' where none belongs"),
        ("a:\n\tb: 1\n", 2, "a tab or a special character"),
    ],
)
def test_both_loaders_explain_a_mistake_in_the_same_plain_words_and_line(tmp_path, text, line, plain):
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    for loader in (FastLoader, yaml.SafeLoader):
        with pytest.raises(YamlFileError) as raised:
            load_yaml(path, loader)
        assert raised.value.line == line, loader
        assert plain in str(raised.value), (loader, str(raised.value))
