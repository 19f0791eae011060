"""Config: unknown keys and bad values fail with one clear line; ${ENV} is expanded."""

from __future__ import annotations

import pytest

from bot.config import Config, ConfigError, load_config
from tests_support import REPO


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repo_config_is_valid():
    config = load_config(REPO / "config.yaml")
    assert config.shop.platform in {"taobao", "tmall", "jd"}
    assert config.base_dir == REPO


def test_missing_default_file_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(None) == Config(base_dir=tmp_path)


def test_named_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_key(tmp_path):
    path = write(tmp_path, "shop:\n  shop_nmae: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2: shop.shop_nmae: unknown setting"


def test_bad_value(tmp_path):
    path = write(tmp_path, "policy:\n  mode: sometimes\n")
    with pytest.raises(ConfigError, match=r"policy\.mode: Input should be 'auto', 'away' or 'suggest'"):
        load_config(path)


def test_invalid_yaml_names_line(tmp_path):
    path = write(tmp_path, "shop:\n  shop_name: x\n policy: [\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: invalid YAML"):
        load_config(path)


def test_env_expansion(tmp_path, monkeypatch):
    path = write(tmp_path, "shop:\n  phone: ${KEFU_TEST_PHONE}\n")
    monkeypatch.setenv("KEFU_TEST_PHONE", "400-123-4567")
    assert load_config(path).shop.phone == "400-123-4567"
    monkeypatch.delenv("KEFU_TEST_PHONE")
    with pytest.raises(ConfigError, match="shop.phone: environment variable KEFU_TEST_PHONE is not set"):
        load_config(path)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    config = load_config(write(tmp_path, "intents:\n  model_path: models/m.joblib\n"))
    assert config.resolve(config.intents.model_path) == tmp_path / "models" / "m.joblib"


def test_without_a_model_path_the_model_lives_in_kefu_cache_dir(tmp_path, monkeypatch):
    """Like jieba's and the phrasebook's caches: checkouts with their own cache dirs keep their own models."""
    from bot.engine import model_path

    monkeypatch.setenv("KEFU_CACHE_DIR", str(tmp_path / "cache"))
    assert model_path(load_config(write(tmp_path, "shop:\n  shop_name: x\n"))) == tmp_path / "cache" / "intent-model.joblib"


def test_partial_sla_keeps_the_other_queues(tmp_path):
    from datetime import timedelta

    config = load_config(write(tmp_path, "handoff:\n  sla: {presale: 5m}\n"))
    assert config.handoff.sla["presale"] == timedelta(minutes=5)
    assert config.handoff.sla["aftersale"] == timedelta(minutes=10)


def test_duplicate_agent_ids(tmp_path):
    text = "handoff:\n  agents:\n    - {id: a1, groups: [presale]}\n    - {id: a1, groups: [aftersale]}\n"
    with pytest.raises(ConfigError, match="agent ids must be unique: a1"):
        load_config(write(tmp_path, text))
