"""`kefu init`: a shop folder where the README's commands work at once, and a shop's own intent.

The slow tests run the real CLI in a subprocess inside a fresh folder, exactly as a shop owner
would type it (lint, train, suggest, replay, serve, eval).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.config import load_config
from bot.scaffold import ScaffoldError, ShopAnswers, create_shop
from tests_support import REPO

DATA = Path(__file__).parent / "data"


def kefu(*args: str, cwd: Path, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=environ, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


def test_init_without_a_terminal_takes_the_defaults_and_says_so(tmp_path):
    result = CliRunner().invoke(main, ["init", str(tmp_path / "shop"), "--shop-name", "小熊童装"])
    assert result.exit_code == 0, result.output
    assert "no terminal: using defaults platform=taobao" in result.output
    config = load_config(tmp_path / "shop" / "config.yaml")
    assert config.shop.shop_name == "小熊童装"
    assert config.shop.platform == "taobao"
    assert config.intents.data_paths == ["intents/"]
    assert config.resolve(config.intents.model_path) == tmp_path / "shop" / "model" / "intent-model.joblib"
    for name in ("README.md", "phrasebook/example.yaml", "intents/example.yaml", "tests/example.yaml"):
        assert (tmp_path / "shop" / name).is_file(), name
    assert "小熊童装" in (tmp_path / "shop" / "README.md").read_text(encoding="utf-8")


def test_init_with_yes_names_the_flag_and_takes_every_flag(tmp_path):
    args = ["init", str(tmp_path), "--yes", "--platform", "jd", "--courier", "京东快递", "--phone", "400-1",
            "--service-hours", "08:30-22:00", "--shop-name", "小鹿"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "using defaults" not in result.output
    shop = load_config(tmp_path / "config.yaml").shop
    assert (shop.platform, shop.courier, shop.phone, shop.service_hours) == ("jd", "京东快递", "400-1", "08:30-22:00")
    assert str(load_config(tmp_path / "config.yaml").flows.working_hours) == "08:30-22:00"


def test_init_asks_its_questions_on_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr("bot.cli.init.stdin_is_terminal", lambda: True)
    answers = "花花家\ntmall\n顺丰\n\n10:00-22:00\n"
    result = CliRunner().invoke(main, ["init", str(tmp_path)], input=answers)
    assert result.exit_code == 0, result.output
    assert "店铺名称" in result.output and "客服时间" in result.output
    shop = load_config(tmp_path / "config.yaml").shop
    assert (shop.shop_name, shop.platform, shop.courier, shop.service_hours) == ("花花家", "tmall", "顺丰", "10:00-22:00")


def test_init_never_overwrites_a_shop_folder_by_surprise(tmp_path):
    (tmp_path / "config.yaml").write_text("shop: {shop_name: 老店}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", str(tmp_path), "--yes"])
    assert result.exit_code == 1
    assert "already exists (use --force" in result.output
    assert "老店" in (tmp_path / "config.yaml").read_text(encoding="utf-8")
    assert CliRunner().invoke(main, ["init", str(tmp_path), "--yes", "--force"]).exit_code == 0
    assert "老店" not in (tmp_path / "config.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (ShopAnswers(platform="pdd"), "platform must be one of"),
        (ShopAnswers(service_hours="9-18"), "service hours"),
        (ShopAnswers(shop_name="a{b}"), "shop_name"),
        (ShopAnswers(shop_name="  "), "shop_name"),
        (ShopAnswers(phone="call me"), "phone"),
    ],
)
def test_bad_answers_are_refused_before_anything_is_written(tmp_path, answers, message):
    with pytest.raises(ScaffoldError, match=message):
        create_shop(tmp_path / "s", answers)
    assert not (tmp_path / "s").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_shop_readme_commands_work_in_a_fresh_folder(tmp_path):
    """`kefu init shop && cd shop`, then exactly what its README says to type."""
    assert kefu("init", "shop", cwd=tmp_path).returncode == 0
    shop = tmp_path / "shop"
    readme = (shop / "README.md").read_text(encoding="utf-8")
    for command in ("kefu lint", "kefu train", "kefu serve", "kefu test tests/"):
        assert command in readme
    lint = kefu("lint", cwd=shop)
    assert lint.returncode == 0, lint.stderr + lint.stdout
    train = kefu("train", cwd=shop)
    assert train.returncode == 0, train.stderr
    assert (shop / "model" / "intent-model.joblib").is_file()
    suggest = kefu("suggest", "亲，包邮吗？", "--json", cwd=shop)
    assert json.loads(suggest.stdout)["intent"] == "free_shipping"
    pickup = json.loads(kefu("suggest", "可以自提吗", "--json", cwd=shop).stdout)
    assert pickup["suggestions"][0]["id"] == "shop.pickup"  # the example phrase of the shop folder
    suite = kefu("test", "tests/", "--json", cwd=shop)
    assert suite.returncode == 0, suite.stdout + suite.stderr
    assert "shop.pickup" in (shop / "tests" / "example.yaml").read_text(encoding="utf-8")
    port = _free_port()
    env = {"KEFU_GENERIC_SECRET": "a-long-random-secret-for-the-test"}
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)], cwd=shop,
        env={**os.environ, "PYTHONPATH": str(REPO), **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, "kefu serve did not answer /healthz"
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (shop / "kefu.sqlite").is_file()


@pytest.fixture(scope="module")
def install_shop(tmp_path_factory) -> Path:
    """A shop folder with its own intent `install_service` (30 examples, two phrases), trained."""
    shop = tmp_path_factory.mktemp("install-shop")
    create_shop(shop, ShopAnswers(shop_name="好家具"))
    shutil.copy(DATA / "install_service.yaml", shop / "intents" / "install.yaml")
    shutil.copy(DATA / "install_service_phrases.yaml", shop / "phrasebook" / "install.yaml")
    raw = yaml.safe_load((shop / "config.yaml").read_text(encoding="utf-8"))
    raw["intents"]["custom"] = [
        {"name": "install_service", "group": "aftersale", "description": "上门安装", "handoff": False}
    ]
    (shop / "config.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    train = kefu("train", cwd=shop)
    assert train.returncode == 0, train.stderr
    return shop


def _with_handoff(shop: Path, handoff: bool) -> None:
    raw = yaml.safe_load((shop / "config.yaml").read_text(encoding="utf-8"))
    raw["intents"]["custom"][0]["handoff"] = handoff
    (shop / "config.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


@pytest.mark.slow
def test_a_shop_intent_is_linted_trained_and_suggested(install_shop):
    lint = kefu("lint", cwd=install_shop)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    out = json.loads(kefu("suggest", "你们能派师傅上门装一下吗", "--json", cwd=install_shop).stdout)
    assert out["intent"] == "install_service"
    assert out["suggestions"][0]["id"] == "shop.install.howto"
    assert out["decision"] in {"auto_send", "suggest"}


@pytest.mark.slow
def test_a_shop_intent_is_evaluated(install_shop, tmp_path):
    labelled = tmp_path / "gold.jsonl"
    rows = [
        {"text": "你们负责安装不", "intent": "install_service"},
        {"text": "安装的师傅几号能到", "intent": "install_service"},
        {"text": "亲 包邮吗", "intent": "free_shipping"},
    ]
    labelled.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    result = kefu("eval", "--data", str(labelled), "--json", cwd=install_shop)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["per_intent"]["install_service"]["support"] == 2
    assert report["per_intent"]["install_service"]["recall"] > 0


@pytest.mark.slow
def test_a_shop_intent_hands_off_when_configured_so(install_shop):
    _with_handoff(install_shop, True)
    try:
        out = json.loads(kefu("suggest", "能上门安装吗", "--json", cwd=install_shop).stdout)
        assert out["intent"] == "install_service"
        # as the server does it: an after-sale handoff first asks for the order number (intake)
        assert out["decision"] == "auto_send" and out["suggestions"][0]["id"] == "aftersale.ask_order"
        config = load_config(install_shop / "config.yaml")
        assert "install_service" in config.policy.handoff_intents
        assert config.policy.is_aftersale("install_service")
    finally:
        _with_handoff(install_shop, False)
    out = json.loads(kefu("suggest", "能上门安装吗", "--json", cwd=install_shop).stdout)
    assert out["decision"] != "handoff" and out["suggestions"][0]["id"] != "aftersale.ask_order"


def test_eval_refuses_a_label_it_does_not_know_with_exit_2(tmp_path, config_path):
    labelled = tmp_path / "gold.jsonl"
    labelled.write_text('{"text": "包邮吗", "intent": "free_shipping"}\n{"text": "装吗", "intent": "install"}\n',
                        encoding="utf-8")
    result = kefu("eval", "--data", str(labelled), "--config", str(config_path), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{labelled}:2: unknown intent label 'install'" in result.stderr
    assert "Traceback" not in result.stderr
