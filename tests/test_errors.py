"""One error family (bot/errors.py): every error kefu raises on purpose is a `KefuError`, and the
CLI prints every user error and refused request as ONE line and exits 1 (``--debug``: traceback)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sqlite3

import click
import pytest
from click.testing import CliRunner

from bot import errors
from bot.cli import main
from bot.cli.core import KefuGroup
from bot.errors import (
    ConfigError,
    DataFileError,
    DeliveryError,
    KefuError,
    PermanentDeliveryError,
    RefusedError,
    StoreError,
    TransientDeliveryError,
    UserError,
)
from tests_support import write_config

PACKAGES = ("bot", "connectors", "intents", "phrasebook")


def kefu_exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in kefu's own modules (private ones left out)."""
    found: dict[str, type[BaseException]] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name
                        and not name.startswith("_")):
                    found[f"{info.name}.{name}"] = obj
    return sorted(found.values(), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_every_exception_kefu_defines_is_in_the_family():
    classes = kefu_exception_classes()
    assert len(classes) >= 40  # the walk found them (a broken walk would pass vacuously)
    strays = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, KefuError)]
    assert strays == [], f"put these under bot.errors.KefuError: {strays}"


def _by_name(name: str) -> type[BaseException]:
    module, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(module), cls)


@pytest.mark.parametrize(("name", "family"), [
    ("bot.config.ConfigError", ConfigError),
    ("connectors.registry.ConnectorConfigError", ConfigError),
    ("phrasebook.loader.PhrasebookError", DataFileError),
    ("intents.dataset.TrainingDataError", DataFileError),
    ("intents.yamlfile.YamlFileError", DataFileError),
    ("intents.modelfile.StaleModelError", DataFileError),
    ("bot.replay.ReplayError", DataFileError),
    ("bot.evaluate.EvalDataError", DataFileError),
    ("bot.evaluate.UnknownLabelError", DataFileError),
    ("bot.suites.loader.SuiteError", DataFileError),
    ("phrasebook.render.TemplateError", DataFileError),
    ("phrasebook.conditions.ConditionError", DataFileError),
    ("bot.store.StoreError", StoreError),
    ("bot.store.StoreSchemaError", StoreError),
    ("bot.store.UnsupportedStore", StoreError),
    ("bot.scaffold.ScaffoldError", UserError),
    ("bot.reports.period.PeriodError", UserError),
    ("bot.suites.baseline.BaselineError", UserError),
    ("bot.suites.crossval.CrossValidationError", UserError),
    ("connectors.base.Rejected", RefusedError),
    ("connectors.crypto.errors.ProtocolError", RefusedError),
    ("bot.handoff.ticket.DeskError", RefusedError),
    ("bot.web.agent.workspace.ApiError", RefusedError),
    ("connectors.base.Undeliverable", PermanentDeliveryError),
    ("connectors.http.OutboundError", DeliveryError),
    ("connectors.dingtalk.DingTalkError", TransientDeliveryError),
    ("connectors.wecom.WeComApiError", TransientDeliveryError),
    ("connectors.feishu.FeishuError", TransientDeliveryError),
    ("connectors.taobao_top.TopError", TransientDeliveryError),
    ("bot.reports.robots.RobotError", TransientDeliveryError),
])
def test_each_class_is_in_its_branch(name, family):
    assert issubclass(_by_name(name), family)


def test_old_bases_are_kept_for_code_that_catches_them():
    from bot.store import UnsupportedStore
    from connectors.registry import ConnectorConfigError
    from phrasebook.loader import PhrasebookError

    assert issubclass(PhrasebookError, ValueError)
    assert issubclass(ConnectorConfigError, ValueError)
    assert issubclass(UnsupportedStore, ValueError)


def test_delivery_errors_say_whether_a_retry_can_help():
    from bot.web.delivery import is_permanent
    from connectors.base import Undeliverable
    from connectors.dingtalk import DingTalkError
    from connectors.http import OutboundError

    assert is_permanent(Undeliverable("no push channel"))
    assert is_permanent(OutboundError("POST x: HTTP 403", 403))
    assert not is_permanent(OutboundError("POST x: HTTP 429", 429))
    assert not is_permanent(OutboundError("POST x: HTTP 502", 502))
    assert not is_permanent(OutboundError("gave up after 3 attempts"))
    assert not is_permanent(DingTalkError("errcode 310000"))
    assert not is_permanent(TimeoutError())
    assert PermanentDeliveryError("x").permanent and not TransientDeliveryError("x").permanent


# --- the CLI: one line, exit 1, for every member of the user family ---------------------------


def _samples() -> list[tuple[str, BaseException]]:
    from bot.evaluate import EvalDataError, UnknownLabelError
    from bot.handoff.ticket import TicketNotYours
    from bot.replay import ReplayError
    from bot.store import StoreSchemaError, UnsupportedStore
    from bot.suites.loader import SuiteError
    from connectors.registry import ConnectorConfigError
    from intents.modelfile import StaleModelError
    from intents.yamlfile import YamlFileError

    return [
        ("config", ConfigError("shop/config.yaml: policy.mode: unknown setting")),
        ("connector", ConnectorConfigError("connectors.shop.type: unknown connector type 'generc'")),
        ("yaml", YamlFileError("shop/phrases.yaml", 3, "invalid YAML")),
        ("stale model", StaleModelError("the saved model was trained on other examples or versions")),
        ("replay", ReplayError("chat.yaml:2: unknown key")),
        ("eval", EvalDataError("dev.jsonl:4: not JSON")),
        ("eval label", UnknownLabelError("dev.jsonl:5: unknown intent label 'x'")),
        ("suite", SuiteError(["tests/a.yaml:1: unknown phrase id", "tests/a.yaml:7: no expect"])),
        ("schema", StoreSchemaError("kefu.sqlite: schema version 99 (x) is newer than this kefu knows")),
        ("store url", UnsupportedStore("unsupported store URL 'postgres://db'")),
        ("desk", TicketNotYours("ticket 3 is held by agent b")),
        ("a new family member", DataFileError("first line\nsecond line")),
    ]


@pytest.mark.parametrize(("label", "exc"), _samples(), ids=[label for label, _ in _samples()])
def test_the_cli_prints_each_member_as_one_line_and_exits_1(label, exc):
    group = KefuGroup(params=[click.Option(["--debug"], is_flag=True)])

    @group.command()
    def boom():
        raise exc

    result = CliRunner().invoke(group, ["boom"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    problems = list(getattr(exc, "problems", ()))
    assert len(lines) == len(problems) + 1, result.output
    assert lines[:-1] == problems
    assert lines[-1].startswith("error: ")
    assert "Traceback" not in result.output
    assert result.exit_code == getattr(exc, "exit_code", 1)
    assert result.exit_code == (2 if label == "eval label" else 1)
    if not problems:
        first = str(exc).splitlines()[0]
        assert first in lines[-1]


def test_debug_gives_the_traceback_instead():
    group = KefuGroup(params=[click.Option(["--debug"], is_flag=True)])

    @group.command()
    def boom():
        raise ConfigError("config.yaml: x: unknown setting")

    result = CliRunner().invoke(group, ["--debug", "boom"])
    assert isinstance(result.exception, ConfigError)


def test_a_bug_keeps_its_traceback():
    group = KefuGroup(params=[click.Option(["--debug"], is_flag=True)])

    @group.command()
    def boom():
        raise ZeroDivisionError("a bug")

    result = CliRunner().invoke(group, ["boom"])
    assert isinstance(result.exception, ZeroDivisionError)


def test_a_store_that_cannot_write_is_one_line():
    group = KefuGroup(params=[click.Option(["--debug"], is_flag=True)])

    @group.command()
    def boom():
        raise sqlite3.OperationalError("database or disk is full")

    result = CliRunner().invoke(group, ["boom"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: the store cannot be used (database or disk is full); free disk space or fix the store file's"
        " permissions, and make sure no other program holds it"]


# --- end to end, through the real commands ---------------------------------------------------


AGENTS = {"agents": [{"id": "li", "groups": ["presale"]}]}


def test_an_unsupported_store_url_in_the_config_is_one_line(tmp_path):
    config = write_config(tmp_path, store={"path": "postgres://db.example/kefu"}, handoff=AGENTS)
    result = CliRunner().invoke(main, ["agent", "token", "li", "--config", str(config)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: unsupported store URL 'postgres://db.example/kefu'; supported: sqlite:///relative/path,"
        " sqlite:////absolute/path, a plain file path, :memory:, or redis://HOST:PORT/DB"]


def test_a_store_written_by_a_newer_kefu_is_one_line_naming_the_file_and_the_fix(tmp_path):
    from bot.store import SqliteStore

    path = tmp_path / "kefu.sqlite"
    store = SqliteStore(path)
    with store.transaction():
        store._conn.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 'x')")
    store.close()
    config = write_config(tmp_path, store={"path": str(path)}, handoff=AGENTS)
    result = CliRunner().invoke(main, ["agent", "token", "li", "--config", str(config)])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {path}: schema version 999 (future) is newer than this kefu knows")
    assert line.endswith("upgrade kefu or use another store file")


def test_the_store_error_speaks_chinese_when_asked(tmp_path):
    config = write_config(tmp_path, store={"path": "postgres://db.example/kefu"}, handoff=AGENTS)
    result = CliRunner().invoke(main, ["--lang", "zh", "agent", "token", "li", "--config", str(config)])
    assert result.exit_code == 1
    assert "不支持的存储地址" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_config_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    config = write_config(tmp_path, policy={"mood": "auto"})
    result = CliRunner().invoke(main, ["agent", "token", "li", "--config", str(config)])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert re.fullmatch(rf"error: {re.escape(str(config))}:\d+: policy\.mood: unknown setting", line), line
    debug = CliRunner().invoke(main, ["--debug", "agent", "token", "li", "--config", str(config)])
    assert isinstance(debug.exception, ConfigError)


def test_the_family_module_imports_nothing_of_kefu():
    source = inspect.getsource(errors)
    assert "from bot" not in source.replace("from bot.errors", "") and "import bot" not in source
