"""Which connector type implements which platform, and building them from config."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError

from bot.errors import ConfigError
from connectors.base import Connector

#: type name in config.yaml → "module:Class". Imported on use, so a shop pays only for what it runs.
CONNECTOR_TYPES: dict[str, str] = {
    "generic": "connectors.generic:GenericConnector",
    "wecom": "connectors.wecom:WeComConnector",
    "wecom_kf": "connectors.wecom_kf:WeComKfConnector",
    "dingtalk": "connectors.dingtalk:DingTalkConnector",
    "feishu": "connectors.feishu:FeishuConnector",
    "chatwoot": "connectors.chatwoot:ChatwootConnector",
    "telegram": "connectors.telegram:TelegramConnector",
    "simulator": "connectors.simulator:SimulatorConnector",
    "taobao_tmc": "connectors.taobao_tmc:TaobaoTmcConnector",
}


class ConnectorConfigError(ConfigError, ValueError):
    """A connector's settings are unusable; the message names the connector and the key."""


def connector_class(type_name: str) -> type[Connector]:
    try:
        module, cls = CONNECTOR_TYPES[type_name].split(":")
    except KeyError:
        known = ", ".join(sorted(CONNECTOR_TYPES))
        raise ConnectorConfigError(f"unknown connector type {type_name!r} (known: {known})") from None
    return getattr(importlib.import_module(module), cls)


def connector_problems(section: dict[str, Any], is_reference: Any) -> list[tuple[tuple, str]]:
    """Every problem of a ``connectors:`` section, found without reading a secret.

    Checked at config load, so `kefu lint` and every command see ``type: generc`` or a typo in
    a setting at once, not only `kefu serve`. Each connector's settings go through its own
    model; a value that is a ``${VAR}`` reference (``is_reference``) is not judged — the
    server resolves and checks it when it starts. Returns (key path, reason) pairs.
    """
    problems: list[tuple[tuple, str]] = []
    known = ", ".join(sorted(CONNECTOR_TYPES))
    for name, raw in section.items():
        if not isinstance(raw, dict) or "type" not in raw:
            problems.append((("connectors", name), f"needs a `type:` (known: {known})"))
            continue
        if raw["type"] not in CONNECTOR_TYPES:
            problems.append((("connectors", name, "type"), f"unknown connector type {raw['type']!r} (known: {known})"))
            continue
        settings = {k: v for k, v in raw.items() if k != "type"}
        references = {k for k, v in settings.items() if is_reference(v)}
        try:
            connector_class(raw["type"]).Settings(**settings)
        except ValidationError as exc:
            for err in exc.errors():
                if err["loc"] and err["loc"][0] in references:
                    continue
                if not err["loc"] and references:
                    continue  # a check across settings that holds a secret: judged at start
                reason = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
                problems.append((("connectors", name, *err["loc"]), reason.removeprefix("Value error, ")))
    return problems


def build_connectors(section: dict[str, dict[str, Any]], http: Any = None) -> dict[str, Connector]:
    """One connector per ``connectors:`` entry, settings validated by the connector's own model.

    ``${ENV_VAR}`` values are read from the environment here, at server start.
    """
    from bot.config import ConfigError, expand_env

    built: dict[str, Connector] = {}
    for name, raw in section.items():
        try:
            raw = expand_env(raw, f"connectors.{name}")
        except ConfigError as exc:
            raise ConnectorConfigError(str(exc)) from None
        if not isinstance(raw, dict) or "type" not in raw:
            raise ConnectorConfigError(f"connectors.{name}: needs a `type:`")
        settings = {k: v for k, v in raw.items() if k != "type"}
        try:
            cls = connector_class(raw["type"])
        except ConnectorConfigError as exc:
            raise ConnectorConfigError(f"connectors.{name}: {exc}") from None
        try:
            built[name] = cls(name, cls.Settings(**settings), http)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {'unknown setting' if e['type'] == 'extra_forbidden' else e['msg']}"
                for e in exc.errors()
            )
            raise ConnectorConfigError(f"connectors.{name}: {problems}") from None
    return built
