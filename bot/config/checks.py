"""Checks that span sections of a loaded config: errors stop the load, warnings go to `kefu lint`.

Each check returns ``(key path, reason)`` pairs; `bot.config.loading` turns them into
``file:line: key: reason`` with the line of that key in the file. Errors are settings that
cannot work (an order source naming no Taobao connector); warnings are settings that work
but quietly switch something off or put a secret at risk, which a shop should hear about
without its CI going red.
"""

from __future__ import annotations

import re

from bot.config.model import Config

Problem = tuple[tuple, str]

_QUEUES = ("presale", "aftersale", "sales")
#: Setting names that hold secrets: written literally in the file they end up in git.
_SECRET_NAME = re.compile(r"(secret|token|password|aes_key|session|access_key)$")
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def cross_errors(config: Config) -> list[Problem]:
    """References between sections that cannot work (the server would refuse to start)."""
    problems: list[Problem] = []
    orders = config.orders
    if orders.source == "taobao":
        raw = config.connectors.get(orders.connector)
        if not isinstance(raw, dict) or raw.get("type") != "taobao_tmc":
            tmc = [n for n, c in config.connectors.items() if isinstance(c, dict) and c.get("type") == "taobao_tmc"]
            known = f"taobao_tmc connectors: {', '.join(tmc)}" if tmc else "there is no taobao_tmc connector"
            problems.append((("orders", "connector"), f"{orders.connector!r} is not a taobao_tmc connector in"
                                                      f" connectors: ({known})"))
        if not orders.session:
            problems.append((("orders", "session"), "the Taobao source needs the shop's session key (${VAR})"))
    if orders.source == "http" and not orders.url:
        problems.append((("orders", "url"), "the http source needs the ERP's look-up URL"))
    return problems


def warnings(config: Config) -> list[Problem]:
    """Settings that load but quietly switch something off or expose a secret."""
    found: list[Problem] = []
    generic = [n for n, c in config.connectors.items() if isinstance(c, dict) and c.get("type") == "generic"]
    if not config.server.events_secret and len(generic) != 1:
        why = f"{len(generic)} generic connectors: {', '.join(generic)}" if generic else "there is no generic connector"
        found.append((("server", "events_secret"), f"empty and {why}, so POST /events/order is off (payment"
                                                   " chasing and order answers get no order events); set it"))
    agents = config.handoff.agents
    if agents:
        staffed = {group for agent in agents for group in agent.groups}
        for queue in _QUEUES:
            if queue not in staffed:
                found.append((("handoff", "agents"), f"nobody takes the {queue} queue: its tickets wait until"
                                                     " someone is moved there (add the group to an agent)"))
    for key in ("events_secret", "metrics_token"):
        value = getattr(config.server, key)
        if value and not _REFERENCE.match(value):
            found.append((("server", key), "a secret written in the file: put ${ENV_VAR} here and the value in"
                                           " the environment"))
    for name, raw in config.connectors.items():
        if not isinstance(raw, dict):
            continue
        for key, value in raw.items():
            if isinstance(value, str) and value and _SECRET_NAME.search(key) and not _REFERENCE.match(value):
                found.append((("connectors", name, key), "a secret written in the file: put ${ENV_VAR} here and"
                                                         " the value in the environment"))
    for key in ("secret", "session"):
        value = getattr(config.orders, key)
        if value and not _REFERENCE.match(value):
            found.append((("orders", key), "a secret written in the file: put ${ENV_VAR} here and the value in"
                                           " the environment"))
    return found
