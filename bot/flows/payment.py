"""Payment chasing (催付), driven by order events.

An order created and not paid is chased once, ``payment_chase_after`` later, never in quiet
hours (a chase due then waits for the window's end). The line differs when the customer
consulted before ordering. Paid or closed cancels the chase at once, and the timer checks the
order's status again when it fires, so an event that arrives late still stops it.
"""

from __future__ import annotations

from datetime import datetime

from bot.config import FlowSettings, parse_hours
from bot.flows import JobSpec, Scripted
from bot.scheduler import shift_out_of_quiet_hours

CHASE_KIND = "payment_chase"
STOPS_CHASE = frozenset({"paid", "printed", "shipped", "delivered", "closed", "refunding"})


def chase_key(order_id: str) -> str:
    return f"{CHASE_KIND}:{order_id}"


def chase_job(order_id: str, consulted: bool, created_at: datetime, flows: FlowSettings) -> JobSpec:
    """The chase for a new unpaid order, moved out of quiet hours."""
    quiet_start, quiet_end = parse_hours(flows.quiet_hours)
    due = shift_out_of_quiet_hours(created_at + flows.payment_chase_after, quiet_start, quiet_end, flows.tz)
    return JobSpec(chase_key(order_id), CHASE_KIND, due, {"order_id": order_id, "consulted": consulted})


def quiet_until(now: datetime, flows: FlowSettings) -> datetime | None:
    """When the quiet hours around ``now`` end, or None outside them.

    Checked again when the chase fires, not only when it is scheduled: after an outage the
    chase that was due at 21:55 fires at 22:30 — inside quiet hours — and must wait for morning.
    """
    quiet_start, quiet_end = parse_hours(flows.quiet_hours)
    later = shift_out_of_quiet_hours(now, quiet_start, quiet_end, flows.tz)
    return later if later > now else None


def on_chase_due(order_status: str | None, consulted: bool) -> Scripted | None:
    """The chase line, or None when the order no longer waits for payment."""
    if order_status != "created":
        return None
    if consulted:
        return Scripted("pay.chase.consulted", "unpaid order, customer consulted before ordering")
    return Scripted("pay.chase.plain", "unpaid order")
