"""Reading `config.yaml`: YAML errors with file:line, ``${ENV_VAR}`` secrets, one-sentence problems."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.config.model import Config
from bot.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(node: object, where: str) -> object:
    """Replace every ``${VAR}`` in strings of ``node``; ConfigError names an unset one."""
    return _expand_env(node, where)


def _expand_env(node: object, where: str) -> object:
    if isinstance(node, dict):
        return {k: _expand_env(v, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(sub, node)
    return node


#: server settings that may hold ${ENV_VAR} secrets, expanded only when the server starts
SERVER_SECRETS = ("events_secret", "metrics_token")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file; ``None`` means ./config.yaml, or defaults if absent.

    Raises:
        ConfigError: the file is missing (when named), is not valid YAML (with file:line),
            has an unknown key or a bad value, or names an unset environment variable.
    """
    if path is None:
        path = Path("config.yaml")
        if not path.exists():
            return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        from intents.yamlfile import plain_yaml_error

        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: {plain_yaml_error(exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections, not {type(raw).__name__}")
    # Secrets (connectors, the events secret) are expanded only by the server when it starts:
    # lint, chat and eval must work on a machine that holds none of them.
    deferred = {"connectors": raw.pop("connectors", None)}
    server = raw.get("server")
    for key in SERVER_SECRETS:
        if isinstance(server, dict) and key in server:
            deferred[key] = server.pop(key)
    reports = raw.get("reports")
    if isinstance(reports, dict) and "targets" in reports:
        deferred["report_targets"] = reports.pop("targets")  # the robots' secrets: expanded when pushing
    orders = raw.get("orders")
    if isinstance(orders, dict):  # the order source's secrets, likewise read by the server
        deferred["orders"] = {k: orders.pop(k) for k in ("secret", "session") if k in orders}
    raw = _expand_env(raw, "")
    if deferred.get("orders"):
        raw["orders"].update(deferred["orders"])
    if deferred["connectors"] is not None:
        raw["connectors"] = deferred["connectors"]
    for key in SERVER_SECRETS:
        if key in deferred:
            raw["server"][key] = deferred[key]
    if "report_targets" in deferred:
        raw["reports"]["targets"] = deferred["report_targets"]
    try:
        return Config(**raw, base_dir=path.parent)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {_reason(err)}" if err["loc"] else _reason(err)
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


def _reason(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown setting"
    return err["msg"].removeprefix("Value error, ")
