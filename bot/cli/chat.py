"""`kefu chat`: type as a customer to the real bot — the same Assistant `kefu serve` runs.

State, scripted flows (bargaining ladder and its timed follow-up, payment chase, farewell),
the send policy, the away greeting and the hand-off to people all run as on the server, on a
temporary SQLite store (or ``--store PATH``) and the real clock. Lines starting with ``/``
drive what the server would get from elsewhere:

    /agents on|off          every configured agent online (or offline: their tickets requeue)
    /advance 3m             move the bot's clock on; timers due meanwhile fire at their time
    /order paid|closed|created [ORDER_ID]   an order event for this customer
    /release, /resolve      the agent hands the conversation back / closes the ticket
    /help, /quit

On a terminal the prompt has line editing and history (prompt_toolkit); piped input is read
line by line and echoed, so a script of lines is a reproducible transcript. Timers that come
due in real time fire before the next line is handled (an empty line just fires them). Every turn prints
the decision: kind, phrase ids and texts sent, reasons, hand-off.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import click

from bot.cli.core import app_for, main, with_config
from bot.config import Config, parse_duration
from bot.handoff import DeskError
from bot.i18n import _
from bot.models import Decision, Inbound, OrderEvent

CONVERSATION = "chat"
CUSTOMER = "buyer"
ORDER_STATUSES = ("created", "paid", "shipped", "delivered", "closed")
HELP = """commands:
  /agents on|off                        every agent online / offline (their tickets go back to the queue)
  /advance 3m                           move the clock on; due timers fire (bargain follow-up, payment chase…)
  /order paid|closed|created [ORDER_ID] an order event for this customer (default order id: o1)
  /release                              the agent hands the conversation back to the bot
  /resolve                              the agent closes the ticket
  /help                                 this list
  /quit                                 leave (or Ctrl-D)"""


class ShiftedClock:
    """The real clock, moved on by ``/advance`` (the offset only grows or jumps to a due time)."""

    def __init__(self, tz: tzinfo, start: datetime | None = None) -> None:
        self.tz = tz
        self.offset = timedelta(0)
        if start is not None:  # --at: the shop's local time to start from (try 23:00 for the quiet hours)
            self.offset = start.replace(tzinfo=tz) - datetime.now(tz)

    def now(self) -> datetime:
        return datetime.now(self.tz) + self.offset

    def set(self, moment: datetime) -> None:
        if moment > self.now():
            self.offset += moment - self.now()


class ChatSession:
    """One customer typing to an Assistant; each method returns the lines to print."""

    def __init__(self, config: Config, store_path: Path, agents_online: bool, start: datetime | None = None) -> None:
        self.config = config
        self.clock = ShiftedClock(config.flows.tz, start)
        app = app_for(config, store=store_path, clock=self.clock)
        self.store = app.store
        self.assistant = app.assistant
        self._count = 0
        if agents_online:
            self.assistant.set_all_presence("online")

    def close(self) -> None:
        self.store.close()

    # --- input ------------------------------------------------------------------------------

    def handle(self, line: str) -> list[str]:
        """One typed line: a command or a customer message (timers due by now fire first)."""
        out = self.tick()
        if line.startswith("/"):
            name, _space, arg = line[1:].partition(" ")
            command = self._commands().get(name)
            if command is None:
                return [*out, _("unknown command /{name}; /help lists them").format(name=name)]
            try:
                return [*out, *command(arg.strip())]
            except DeskError as exc:
                return [*out, _("error: {message}").format(message=exc)]
        self._count += 1
        inbound = Inbound(platform="chat", conversation_id=CONVERSATION, customer_id=CUSTOMER,
                          message_id=f"chat-{self.clock.now().timestamp():.6f}-{self._count}", text=line)
        decision = self.assistant.handle_message(inbound)
        return [*out, *describe(decision, self.clock.now())] if decision else out

    def tick(self) -> list[str]:
        """Fire what is due at the clock's now (timers, idle release) and describe it."""
        lines: list[str] = []
        for _conversation, decision in self.assistant.tick():
            lines += describe(decision, self.clock.now(), "timer")
        return lines

    def _commands(self) -> dict[str, Callable[[str], list[str]]]:
        return {"agents": self.agents, "advance": self.advance, "order": self.order, "release": self.release,
                "resolve": self.resolve, "help": lambda _arg: HELP.splitlines()}

    # --- commands ---------------------------------------------------------------------------

    def agents(self, arg: str) -> list[str]:
        if arg not in {"on", "off"}:
            return ["usage: /agents on|off"]
        if not self.config.handoff.agents:
            self.assistant.set_all_agents(arg == "on")
            return [f"agents {arg} (no agents in config: the bot only knows someone is there)"]
        moved = self.assistant.set_all_presence("online" if arg == "on" else "offline")
        statuses = ", ".join(f"{agent} {status}" for agent, status in self.assistant.desk.statuses().items())
        lines = [f"agents: {statuses}"]
        lines += [f"  ticket #{t.id} {t.status}" + (f" → {t.assignee}" if t.assignee else "") for t in moved]
        return lines

    def advance(self, arg: str) -> list[str]:
        try:
            delta = parse_duration(arg)
        except ValueError as exc:
            return [f"usage: /advance 3m ({exc})"]
        target = self.clock.now() + delta
        lines: list[str] = []
        while (due := self.store.next_due()) is not None and due <= target:
            self.clock.set(due)
            lines += self.tick()
        self.clock.set(target)
        lines += self.tick()
        local = self.clock.now().astimezone(self.config.flows.tz)
        ahead = round(self.clock.offset.total_seconds() / 60)
        return [*lines, f"clock {local:%Y-%m-%d %H:%M} (real time +{ahead} min)"]

    def order(self, arg: str) -> list[str]:
        status, _space, order_id = arg.partition(" ")
        if status not in ORDER_STATUSES:
            return [f"usage: /order {'|'.join(ORDER_STATUSES)} [ORDER_ID]"]
        event = OrderEvent(order_id=order_id.strip() or "o1", customer_id=CUSTOMER, status=status,
                           consulted_before_order=True, at=self.clock.now())
        return describe(self.assistant.handle_order(event), self.clock.now(), "order")

    def release(self, _arg: str) -> list[str]:
        return describe(self.assistant.release(CONVERSATION), self.clock.now(), "agent")

    def resolve(self, _arg: str) -> list[str]:
        return describe(self.assistant.resolve(CONVERSATION), self.clock.now(), "agent")


def describe(decision: Decision, now: datetime, trigger: str = "message") -> list[str]:
    """The decision as a short block: kind and intent, what was sent, the hand-off, why."""
    head = f"  [{trigger}] {decision.kind}"
    if decision.intent:
        head += f"  intent {decision.intent} ({decision.intent_score:.2f})"
    lines = [head]
    if len(decision.clauses) > 1 or any(c.role != "main" for c in decision.clauses):
        lines.append("  clauses " + " | ".join(
            f"{c.text} ({c.role} {c.intent})" if c.intent else f"{c.text} ({c.role})" for c in decision.clauses))
    lines += [f"  客服 ({line.id}): {line.text}" for line in decision.replies]
    if not decision.replies and decision.suggestions:
        top = decision.suggestions[0]
        lines.append(f"  suggest ({top.id}): {top.text}")
    if decision.handoff is not None:
        h = decision.handoff
        who = f" → {h.assignee}" if h.assignee else " (queued)"
        lines.append(f"  handoff {h.group}/{h.priority} {h.reason}, ticket #{h.ticket_id}{who}")
    if decision.reasons:
        lines.append(f"  why: {'; '.join(decision.reasons)}")
    return lines


def _typed_lines(interactive: bool) -> Iterator[str]:
    """Lines from a prompt with editing and history on a terminal, else plain stdin."""
    if not interactive:
        for raw in sys.stdin:
            yield raw.rstrip("\n")
        return
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory

    session: PromptSession[str] = PromptSession(history=InMemoryHistory())
    while True:
        try:
            yield session.prompt("买家> ")
        except KeyboardInterrupt:
            continue  # Ctrl-C clears the line, as in a shell
        except EOFError:
            return


@main.command()
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keep the conversation in this SQLite file [default: a temporary one, removed at exit].")
@click.option("--agents-online", is_flag=True, help="Start with every configured agent online.")
@click.option("--at", "start", type=click.DateTime(["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]), default=None,
              help="Start the bot's clock at this shop-local time, e.g. '2026-12-01 23:00' [default: now].")
@with_config
def chat(config: Config, store_path: Path | None, agents_online: bool, start: datetime | None) -> None:
    """Type as a customer to the real bot (flows, policy, away greeting, handoff); /help for commands."""
    folder = None if store_path else Path(tempfile.mkdtemp(prefix="kefu-chat-"))
    session = ChatSession(config, store_path or folder / "chat.sqlite", agents_online, start)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        if interactive:
            click.echo(_("{shop} — type a customer message; /help for commands, Ctrl-D to quit")
                       .format(shop=config.shop.shop_name))
        for raw in _typed_lines(interactive):
            text = raw.strip()
            if not text:  # an empty line fires what came due meanwhile (real time passes too)
                for line in session.tick():
                    click.echo(line)
                continue
            if text in {"/quit", "/exit"}:
                break
            if not interactive:
                click.echo(f"> {text}")
            for line in session.handle(text):
                click.echo(line)
            click.echo("")
    finally:
        session.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
