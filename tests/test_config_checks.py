"""The config is checked completely, once, at load: connectors by their own models (secrets kept
as references), references between sections, every problem with file:line, all at once; and
`kefu lint` reports the whole config — config.yaml, phrasebook, training data."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.config import ConfigError, config_warnings, load_config
from tests_support import write_config

KNOWN = "chatwoot, dingtalk, feishu, generic, simulator, taobao_tmc, telegram, wecom, wecom_kf"


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unknown_connector_type_is_refused_at_load_naming_the_key_the_line_and_the_known_types(tmp_path):
    path = write(tmp_path, "shop:\n  shop_name: 小店\nconnectors:\n  shop:\n    type: generc\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:5: connectors.shop.type: unknown connector type 'generc' (known: {KNOWN})"


def test_connector_settings_are_checked_by_their_own_model_but_secrets_stay_references(tmp_path, monkeypatch, engine):
    from bot.engine import model_path

    monkeypatch.delenv("KEFU_UNSET_GENERIC_SECRET", raising=False)
    # no saved model and no retraining allowed: the secret must be checked before the model is loaded
    path = write(tmp_path, "intents:\n  model_path: no-model.joblib\n"
                 "connectors:\n  shop:\n    type: generic\n    secret: ${KEFU_UNSET_GENERIC_SECRET}\n")
    config = load_config(path)  # no secret on this machine: lint, chat and eval still work
    config.intents.model_path = str(model_path(engine.config))  # the session's model, never the user's cache
    assert config.connectors["shop"]["secret"] == "${KEFU_UNSET_GENERIC_SECRET}"
    from bot.web.server import build_server

    with pytest.raises(ConfigError, match="KEFU_UNSET_GENERIC_SECRET is not set"):
        build_server(config, retrain=False)  # resolved when the server starts, before the model
    assert not (tmp_path / "no-model.joblib").exists()
    typo = write(tmp_path, "connectors:\n  shop:\n    type: generic\n    secret: ${X}\n    mdoe: callback\n")
    with pytest.raises(ConfigError) as info:
        load_config(typo)
    assert str(info.value) == f"{typo}:5: connectors.shop.mdoe: unknown setting"


def test_a_literal_value_is_judged_by_the_connectors_model(tmp_path):
    path = write(tmp_path, "connectors:\n  shop:\n    type: generic\n    secret: short\n")
    with pytest.raises(ConfigError, match=r":4: connectors\.shop\.secret: String should have at least 16"):
        load_config(path)
    missing = write(tmp_path, "connectors:\n  tg:\n    type: telegram\n")
    with pytest.raises(ConfigError, match=r":2: connectors\.tg\.bot_token: Field required"):
        load_config(missing)


def test_a_handoff_intent_typo_names_the_line_and_the_likely_name(tmp_path):
    path = write(tmp_path, "policy:\n  mode: away\n  handoff_intents: [lost_parcle, human_request]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"{path}:3: policy.handoff_intents: unknown intent 'lost_parcle'"
                               " (did you mean 'lost_parcel'?)")


def test_an_order_source_naming_no_taobao_connector_is_refused_at_load(tmp_path):
    path = write(tmp_path, "orders:\n  source: taobao\n  connector: tb\n  session: ${S}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"{path}:3: orders.connector: 'tb' is not a taobao_tmc connector in connectors:"
                               " (there is no taobao_tmc connector)")
    http = write(tmp_path, "orders:\n  source: http\n")
    with pytest.raises(ConfigError, match=r":1: orders\.url: the http source needs"):
        load_config(http)


def test_every_problem_is_listed_at_once_in_file_order_and_the_cli_prints_each(tmp_path):
    path = write(tmp_path, "\n".join([
        "flows:",
        "  working_hours: 9-23",  # 2
        "policy:",
        "  handoff_intents: [lost_parcle]",  # 4
        "connectors:",
        "  shop:",
        "    type: generc",  # 7
        "handoff:",
        "  release_after: soon",  # 9
    ]) + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = [p.split(": ", 1)[0] for p in info.value.problems]
    assert lines == [f"{path}:2", f"{path}:7", f"{path}:9"]  # the intent check runs once the values are valid
    result = CliRunner().invoke(main, ["train", "--config", str(path)])
    assert result.exit_code == 1
    out = result.output.strip().splitlines()
    assert out[:3] == list(info.value.problems)
    assert out[3] == "error: 3 problem(s) in the config (listed above); `kefu lint` checks everything"
    assert "'9-23' is not a window like 09:00-23:00" in out[0]


def test_lint_reports_config_problems_with_file_and_line_as_json(tmp_path):
    path = write(tmp_path, "connectors:\n  shop:\n    type: generc\n")
    result = CliRunner().invoke(main, ["lint", "--json", "--config", str(path)])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and report["errors"] == 1
    (problem,) = report["problems"]
    assert (problem["file"], problem["line"], problem["code"]) == (str(path), 3, "config")
    assert problem["message"].startswith("connectors.shop.type: unknown connector type 'generc'")


def _config(tmp_path, **changes):
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section, values in changes.items():
        if values is None:
            raw.pop(section, None)
        elif isinstance(values, dict) and isinstance(raw.get(section), dict) and section != "connectors":
            raw[section].update(values)
        else:
            raw[section] = values
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_warnings_for_settings_that_quietly_switch_something_off_or_expose_a_secret(tmp_path):
    path = _config(tmp_path, connectors={
        "a": {"type": "generic", "secret": "${KEFU_A}"},
        "b": {"type": "generic", "secret": "0123456789abcdef-literal"},
    }, handoff={"agents": [{"id": "li", "groups": ["presale", "aftersale"]}]})
    found = config_warnings(load_config(path))
    text = "\n".join(found)
    assert "server.events_secret: empty and 2 generic connectors: a, b, so POST /events/order is off" in text
    assert "connectors.b.secret: a secret written in the file" in text and "connectors.a.secret" not in text
    assert "handoff.agents: nobody takes the sales queue" in text and "presale queue" not in text
    assert all(w.startswith(f"{path}:") and w.split(":")[1].isdigit() for w in found), found


def test_the_shipped_config_has_no_config_warnings():
    from tests_support import REPO

    assert config_warnings(load_config(REPO / "config.yaml")) == []


def test_lint_prints_config_warnings_with_their_line_and_still_passes(tmp_path):
    path = _config(tmp_path, handoff={"agents": [{"id": "li", "groups": ["presale", "aftersale"]}]})
    result = CliRunner().invoke(main, ["lint", "--config", str(path)])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if "nobody takes the sales queue" in line]
    assert len(warned) == 1 and warned[0].startswith(f"{path}:")
    assert ": warning: handoff.agents: nobody takes the sales queue" in warned[0]
