"""The docs are tested: the README's example replay runs as described, every setting is documented."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.config import Config
from tests_support import REPO


@pytest.mark.usefixtures("engine")
def test_example_replay_tells_the_story_its_comments_tell(config_path):
    result = CliRunner().invoke(main, ["replay", str(REPO / "examples" / "replay.yaml"), "--json",
                                       "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    phrases = [json.loads(line)["phrase_id"] for line in result.output.splitlines()]
    assert phrases == [
        "greeting.away", "bargain.first", "bargain.first", "bargain.manager", "bargain.gift_followup",
        None, "pay.chase.consulted", None, "farewell.deal", "shipping.free",
    ]


def test_every_setting_is_in_the_shipped_config_yaml():
    shipped = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    for section, model in Config.model_fields.items():
        if section in {"base_dir", "connectors"}:
            continue
        fields = set(model.annotation.model_fields)
        assert fields == set(shipped[section]), f"config.yaml section {section!r} differs from the model"


def test_readme_names_every_cli_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in main.commands:
        assert re.search(rf"`kefu {name}\b", readme), f"README does not document `kefu {name}`"
