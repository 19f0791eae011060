"""Routing rules as pure functions: who takes a ticket, and what wait the customer is told."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import Agent
from bot.handoff.routing import PRIORITY_ORDER, expected_wait, pick_agent

MIN = timedelta(minutes=1)


def agents(*specs: tuple[str, list[str], int]) -> list[Agent]:
    return [Agent(id=agent_id, groups=groups, capacity=capacity) for agent_id, groups, capacity in specs]


TEAM = agents(("li", ["presale"], 3), ("wang", ["presale", "aftersale"], 3), ("zhao", ["aftersale"], 3))
ALL_ONLINE = {"li": True, "wang": True, "zhao": True}


@pytest.mark.parametrize(
    ("loads", "expected"),
    [
        ({}, "li"),  # all idle: config order
        ({"li": 1}, "wang"),
        ({"li": 2, "wang": 1}, "wang"),
        ({"li": 0, "wang": 2}, "li"),
        ({"li": 1, "wang": 1}, "li"),
        ({"li": 2, "wang": 2, "zhao": 0}, "li"),  # zhao is idle but not presale
    ],
)
def test_least_loaded_online_agent_of_the_group(loads, expected):
    assert pick_agent(TEAM, ALL_ONLINE, loads, "presale").id == expected


@pytest.mark.parametrize(
    ("group", "expected"),
    [("presale", {"li", "wang"}), ("aftersale", {"wang", "zhao"}), ("sales", set())],
)
def test_only_agents_of_the_group_are_candidates(group, expected):
    chosen = set()
    loads: dict[str, int] = {}
    while (agent := pick_agent(TEAM, ALL_ONLINE, loads, group)) is not None:
        chosen.add(agent.id)
        loads[agent.id] = loads.get(agent.id, 0) + 1
    assert chosen == expected
    assert all(loads[agent_id] == 3 for agent_id in expected), "each filled to capacity, no further"


@pytest.mark.parametrize(
    ("online", "expected"),
    [
        ({"li": False, "wang": True}, "wang"),
        ({"wang": True}, "wang"),  # li never reported presence: away
        ({"li": True, "wang": False}, "li"),
        ({"li": False, "wang": False, "zhao": True}, None),
        ({}, None),
    ],
)
def test_away_agents_are_never_picked(online, expected):
    agent = pick_agent(TEAM, online, {}, "presale")
    assert (agent.id if agent else None) == expected


@pytest.mark.parametrize(
    ("loads", "expected"),
    [
        ({"li": 3, "wang": 3}, None),
        ({"li": 3, "wang": 2}, "wang"),
        ({"li": 2, "wang": 3}, "li"),
        ({"li": 7, "wang": 3}, None),  # over capacity (a manual assignment) counts as full
    ],
)
def test_capacity_is_respected(loads, expected):
    agent = pick_agent(TEAM, ALL_ONLINE, loads, "presale")
    assert (agent.id if agent else None) == expected


@pytest.mark.parametrize(
    ("team", "loads", "expected"),
    [
        # equal load: more room (lower load / capacity) wins, whatever the config order
        (agents(("small", ["sales"], 2), ("big", ["sales"], 10)), {"small": 1, "big": 1}, "big"),
        (agents(("big", ["sales"], 10), ("small", ["sales"], 2)), {"small": 1, "big": 1}, "big"),
        # equal load and ratio: config order
        (agents(("a", ["sales"], 4), ("b", ["sales"], 4)), {"a": 2, "b": 2}, "a"),
        (agents(("b", ["sales"], 4), ("a", ["sales"], 4)), {"a": 2, "b": 2}, "b"),
        # lower load wins even with a higher ratio
        (agents(("small", ["sales"], 2), ("big", ["sales"], 10)), {"small": 1, "big": 2}, "small"),
    ],
)
def test_ties_break_by_ratio_then_config_order(team, loads, expected):
    online = {agent.id: True for agent in team}
    assert pick_agent(team, online, loads, "sales").id == expected


def test_no_agents_configured():
    assert pick_agent([], {"li": True}, {}, "presale") is None


def test_priority_order_puts_urgent_first():
    assert sorted(["normal", "urgent", "high", "normal"], key=PRIORITY_ORDER.__getitem__) == [
        "urgent", "high", "normal", "normal"]


@pytest.mark.parametrize(
    ("position", "online", "expected"),
    [
        (0, 2, None),  # not waiting: an agent takes it now
        (-3, 0, None),
        (1, 1, 8 * MIN),
        (2, 1, 16 * MIN),
        (1, 2, 8 * MIN),
        (2, 2, 8 * MIN),
        (3, 2, 16 * MIN),
        (5, 2, 24 * MIN),
        (30, 1, 240 * MIN),  # longer than the SLA: the true estimate, not the promise
        (1, 0, 10 * MIN),  # nobody of the group online: the SLA the shop promises
        (7, 0, 10 * MIN),
    ],
)
def test_expected_wait(position, online, expected):
    assert expected_wait(position, online, 8 * MIN, 10 * MIN) == expected
