"""Who takes a ticket, and how long the customer should expect to wait: pure functions, no store.

The desk (`bot.handoff.desk`) reads agents, presence and loads from the config and the store and
asks these functions; keeping them pure makes the rules testable with plain values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta

from bot.config import Agent

#: Lower is more urgent. Anger, threats and disputes come in as "urgent".
PRIORITY_ORDER: dict[str, int] = {"urgent": 0, "high": 1, "normal": 2}


def pick_agent(agents: list[Agent], online: Mapping[str, bool], loads: Mapping[str, int], group: str) -> Agent | None:
    """The agent who should take the next ticket of ``group``, or None if nobody can.

    Candidates are the agents of ``group`` who are online and below their capacity. The least
    loaded wins; on equal load the one with more room (lower load / capacity) wins, then the one
    listed first in the config, so the choice is deterministic.

    Args:
        agents: The configured agents, in config order.
        online: Agent id → online; an agent missing from it counts as away.
        loads: Agent id → tickets assigned now; missing means 0.
        group: The ticket's group (presale | aftersale | sales).

    Returns:
        The chosen agent, or None when no agent of the group is online with a free slot.
    """
    best: tuple[int, float, int] | None = None
    chosen: Agent | None = None
    for index, agent in enumerate(agents):
        if group not in agent.groups or not online.get(agent.id, False):
            continue
        load = loads.get(agent.id, 0)
        if load >= agent.capacity:
            continue
        key = (load, load / agent.capacity, index)
        if best is None or key < best:
            best, chosen = key, agent
    return chosen


def expected_wait(
    position: int, group_agents_online: int, handle_time: timedelta, sla: timedelta
) -> timedelta | None:
    """What to tell a waiting customer about the wait, honestly.

    - ``position <= 0``: the ticket is not waiting (an agent takes it now) → None; say "an agent
      is coming" without a number.
    - Agents of the group are online but all at capacity: a slot frees up roughly every
      ``handle_time / online agents``, so the ticket at ``position`` waits about
      ``ceil(position / group_agents_online) × handle_time``. This is not capped at the SLA: if
      the queue is longer than the promise, the customer hears the longer, true estimate.
    - Nobody of the group is online: there is no throughput to estimate from (the next agent may
      log in in a minute or after lunch), and inventing a number would be a lie. The group's SLA
      is what the shop promises for a first human answer, and it is monitored (a ticket past it
      is flagged as breached), so that is the one figure we can stand behind → ``sla``.

    Args:
        position: 1 for the next ticket an agent of the group will take, 2 for the one after…
        group_agents_online: Online agents who take this group, full or not.
        handle_time: Average time an agent spends on one ticket.
        sla: The group's time to first human answer, from the config.

    Returns:
        The expected wait, or None when no wait is expected.
    """
    if position <= 0:
        return None
    if group_agents_online <= 0:
        return sla
    return math.ceil(position / group_agents_online) * handle_time
