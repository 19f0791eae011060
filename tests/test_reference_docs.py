"""docs/reference/ is generated from the schemas; it must never drift from them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bot import reference


def test_the_reference_pages_match_the_schemas():
    assert reference.stale() == [], "run `python -m bot.reference` and commit docs/reference/"


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reference, "DOCS", tmp_path)
    assert reference.main(["--check"]) == 1
    assert "docs/reference/config.md is stale" in capsys.readouterr().err
    assert reference.main([]) == 0
    assert reference.main(["--check"]) == 0
    (tmp_path / "phrasebook.md").write_text("old", encoding="utf-8")
    assert reference.main(["--check"]) == 1


class _Inner(BaseModel):
    #: How deep it goes.
    depth: int = Field(3, ge=1)


class _Demo(BaseModel):
    """A model for the generator's own test."""

    #: Which way.
    #: Continued on a second line.
    mode: Literal["auto", "away"] = "away"
    inner: _Inner = Field(default_factory=_Inner)
    names: list[str]


def test_a_section_takes_types_defaults_limits_and_the_comment_above_each_field():
    text = reference.model_section(_Demo, "demo")
    assert "A model for the generator's own test." in text
    assert "| `mode` | auto \\| away | `\"away\"` |  | Which way. Continued on a second line. |" in text
    assert "| `names` | list of text | **required** |" in text
    assert "| `depth` | integer | `3` | ≥ `1` | How deep it goes. |" in text  # the nested model's own table


def test_every_config_section_and_the_shipped_comments_reach_the_page():
    page = reference.config_page()
    for section in ("shop", "intents", "phrasebook", "policy", "flows", "handoff", "store", "server", "connectors"):
        assert f"## `{section}:`" in page
    assert "default courier" in page or "The default courier" in page
    assert "| `payment_chase_after` | duration" in page
