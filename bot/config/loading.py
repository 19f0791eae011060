"""Reading `config.yaml`: YAML errors with file:line, ``${ENV_VAR}`` secrets, one-sentence problems."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import ValidationError

from bot.config.checks import cross_errors, warnings
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


def holds_reference(value: object) -> bool:
    """A ``${VAR}`` reference anywhere in ``value``: checked when the server resolves it, not at load."""
    if isinstance(value, dict):
        return any(holds_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_reference(v) for v in value)
    return isinstance(value, str) and _ENV_REF.search(value) is not None


#: server settings that may hold ${ENV_VAR} secrets, expanded only when the server starts
SERVER_SECRETS = ("events_secret", "metrics_token")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file completely; ``None`` means ./config.yaml, or defaults if absent.

    Everything is checked here, once: every section's keys and values (durations and time
    windows parsed into typed values), the cross-references between sections, and each
    connector's settings by its own model — secrets stay ``${VAR}`` references, resolved only
    when the server starts, so lint, chat and eval work on a machine that holds none of them.

    Raises:
        ConfigError: the file is missing (when named), is not valid YAML, has an unknown key or
            a bad value, names an unset environment variable, or an unknown connector type.
            Each problem is ``file:line: key: reason``; with several, ``problems`` lists them all.
    """
    if path is None:
        path = Path("config.yaml")
        if not path.exists():
            return Config()
    path = Path(path)
    try:
        path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    from intents.yamlfile import YamlFileError, load_yaml

    try:
        raw, lines = load_yaml(path)
    except YamlFileError as exc:
        raise ConfigError(str(exc)) from exc
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections, not {type(raw).__name__}")
    where = _Locator(path, lines)
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
    try:
        raw = _expand_env(raw, "")
    except ConfigError as exc:
        raise ConfigError(where.line(str(exc))) from None
    if deferred.get("orders"):
        raw["orders"].update(deferred["orders"])
    if deferred["connectors"] is not None:
        raw["connectors"] = deferred["connectors"]
    for key in SERVER_SECRETS:
        if key in deferred:
            raw["server"][key] = deferred[key]
    if "report_targets" in deferred:
        raw["reports"]["targets"] = deferred["report_targets"]
    from connectors.registry import connector_problems

    connectors = raw.get("connectors")
    problems = [where.problem(loc, reason) for loc, reason in connector_problems(connectors, holds_reference)] \
        if isinstance(connectors, dict) else []
    try:
        config = Config(**raw, base_dir=path.parent)
    except ValidationError as exc:
        problems = [where.problem(err["loc"], _reason(err)) for err in exc.errors()] + problems
    else:
        problems += [where.problem(loc, reason) for loc, reason in cross_errors(config)]
    if problems:
        raise where.error(sorted(problems, key=_line_order))
    config._locate = where.problem
    return config


def config_warnings(config: Config) -> list[str]:
    """`bot.config.checks.warnings` as ``file:line: key: reason`` lines (`kefu lint` prints them)."""
    locate = config._locate or (lambda loc, reason: f"{'.'.join(map(str, loc))}: {reason}")
    return [locate(loc, reason) for loc, reason in warnings(config)]


_KEY_FIRST = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w-]+)*(?:\[\d+\])?): ")


class _Locator:
    """``file:line: key: reason`` for a problem, the line found from the key's path in the YAML."""

    def __init__(self, path: Path, lines: dict):
        self.path, self.lines = path, lines

    def problem(self, loc: tuple, reason: str) -> str:
        if not loc:  # a check across sections names its key first: "policy.handoff_intents: …"
            match = _KEY_FIRST.match(reason)
            if match:
                return self.line(reason, _loc(match.group(1)))
            return f"{self.path}: {reason}"
        from intents.yamlfile import line_of

        key = ".".join(str(p) for p in loc)
        line = line_of(self.lines, *loc)
        return f"{self.path}:{line}: {key}: {reason}" if line else f"{self.path}: {key}: {reason}"

    def line(self, message: str, loc: tuple | None = None) -> str:
        """``message`` (which starts with its dotted key) prefixed with the file and the key's line."""
        from intents.yamlfile import line_of

        if loc is None:
            match = _KEY_FIRST.match(message)
            loc = _loc(match.group(1)) if match else ()
        line = line_of(self.lines, *loc) if loc else None
        return f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}"

    def error(self, problems: list[str]) -> ConfigError:
        error = ConfigError("; ".join(problems))
        if len(problems) > 1:
            error.problems = problems
        return error


def _line_order(problem: str) -> tuple[int, str]:
    head = problem.split(": ", 1)[0]
    line = head.rpartition(":")[2]
    return (int(line) if line.isdigit() else 0, problem)


def _loc(dotted: str) -> tuple:
    parts: list[object] = []
    for part in dotted.split("."):
        name, _, index = part.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    return tuple(parts)


def _reason(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown setting"
    return err["msg"].removeprefix("Value error, ")
