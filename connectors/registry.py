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
