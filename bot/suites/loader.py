"""Reading conversation suites: YAML cases of turns, each turn with what the bot must do.

A suite file (the shop's tests folder, or ``bot/suites/default``)::

    cases:
      - name: 议价三次后找主管，两分半后送赠品
        clock: "2026-11-23T10:00:00+08:00"     # optional, as in a replay file
        agents_online: false                    # optional
        turns:
          - say: 能便宜点吗
            expect: {intent: price_bargain, phrase: bargain.first, kind: auto_send}
          - {say: 还能再少点吗, expect: {phrase: bargain.manager}}
          - advance: 3m
            expect: {fired: {phrase: bargain.gift_followup, after: 2m, before: 3m}}
          - {order: {order_id: o1, status: created}}
          - {say: 这是照片, images: 2, expect: {kind: handoff, group: aftersale}}

A turn is ``say`` (the case's customer speaks) or one replay event (``advance``, ``order``,
``agents_online``, ``presence``, ``agent_reply``, ``release``, ``resolve``), each with an
optional ``expect``. The customer of a case is implicit: events that name a customer in a
replay file (``order``, ``agent_reply``, ``release``, ``resolve``) default to it here.

Loading is strict because a typo in a test must not pass quietly: an unknown key, intent or
phrase id, a bad duration or a turn with two actions is a load error, every one reported
with ``file:line``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from bot.config import parse_duration
from bot.errors import DataFileError
from bot.models import DecisionKind
from bot.replay import _AgentReply, _Event, _Order, _Presence
from intents.yamlfile import LineMap, YamlFileError, line_of, load_yaml

#: Every customer of a case has this id (each case runs on its own store).
CUSTOMER = "c1"
#: A case without ``clock`` starts here (a Monday morning, shop time): suites stay reproducible.
DEFAULT_CLOCK = "2026-11-23T10:00:00"

EXPECT_KEYS = ("intent", "phrase", "kind", "group", "priority", "contains", "not_contains", "fired")
EVENT_KEYS = ("advance", "order", "agents_online", "presence", "agent_reply", "release", "resolve")
TURN_KEYS = ("say", "images", "message_id", "expect", *EVENT_KEYS)
CASE_KEYS = ("name", "clock", "agents_online", "turns")
KINDS: tuple[str, ...] = get_args(DecisionKind)
GROUPS = ("presale", "aftersale", "sales")
PRIORITIES = ("urgent", "high", "normal")


class SuiteError(DataFileError, ValueError):
    """Suites cannot be run; ``problems`` lists every ``file:line: reason``."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the test suites:\n" + "\n".join(self.problems))


@dataclass(frozen=True)
class Fired:
    """Timer lines a turn (an ``advance``) must send: none at all when ``phrases`` is empty."""

    phrases: tuple[str, ...] = ()
    after: timedelta | None = None
    before: timedelta | None = None


@dataclass(frozen=True)
class Expect:
    """What one turn must show; a field left None is not checked."""

    line: int
    intent: tuple[str, ...] | None = None
    phrase: tuple[str, ...] | None = None
    kind: tuple[str, ...] | None = None
    group: str | None = None
    priority: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    fired: Fired | None = None

    def keys(self) -> list[str]:
        return [k for k in EXPECT_KEYS if getattr(self, k) not in (None, ())]


@dataclass(frozen=True)
class Turn:
    line: int
    event: _Event
    expect: Expect | None = None

    @property
    def action(self) -> str:
        e = self.event
        if e.text is not None:
            return f"say {e.text}" + (f" (+{e.images} images)" if e.images else "")
        if e.advance is not None:
            return f"advance {e.advance}"
        if e.order is not None:
            return f"order {e.order.order_id} {e.order.status}"
        if e.agents_online is not None:
            return f"agents_online {str(e.agents_online).lower()}"
        if e.presence is not None:
            return f"presence {e.presence.agent} {'online' if e.presence.online else 'away'}"
        if e.agent_reply is not None:
            return f"agent_reply {e.agent_reply.text}"
        return "release" if e.release is not None else "resolve"


@dataclass(frozen=True)
class Case:
    file: Path
    line: int
    name: str
    clock: datetime | None
    agents_online: bool
    turns: tuple[Turn, ...] = field(default_factory=tuple)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def suite_files(paths: Iterable[str | Path]) -> list[Path]:
    """Folders become their ``*.yaml``/``*.yml`` files (recursively, sorted); files stay as given."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")]))
        else:
            files.append(p)
    return files


def load_suites(paths: Iterable[str | Path], *, intents: Iterable[str], phrase_ids: Iterable[str]) -> list[Case]:
    """Read and check suite files against the shop's intents and phrasebook ids.

    Raises:
        SuiteError: with every problem of every file, each ``file:line: reason``.
    """
    checker = _Checker(frozenset(intents), frozenset(phrase_ids))
    files = suite_files(paths)
    if not files:
        raise SuiteError([f"{', '.join(map(str, paths))}: no suite files found"])
    cases: list[Case] = []
    for path in files:
        cases.extend(checker.file(path))
    if checker.problems:
        raise SuiteError(checker.problems)
    return cases


class _Checker:
    """Walks suite documents, collecting cases and every problem with its line."""

    def __init__(self, intents: frozenset[str], phrase_ids: frozenset[str]):
        self.intents = intents
        self.phrase_ids = phrase_ids
        self.problems: list[str] = []

    def _bad(self, path: Path, line: int | None, message: str) -> None:
        self.problems.append(f"{path}:{line or 1}: {message}")

    def file(self, path: Path) -> list[Case]:
        if not path.exists():
            self.problems.append(f"{path}: no such file")
            return []
        try:
            data, lines = load_yaml(path)
        except YamlFileError as exc:
            self.problems.append(str(exc) if exc.line else f"{exc.path}:1: {exc.message}")
            return []
        if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
            self._bad(path, line_of(lines), "a suite file is a mapping with a list of cases:")
            return []
        for key in data:
            if key != "cases":
                self._bad(path, line_of(lines, key), f"unknown key {key!r} (a suite file holds cases:)")
        cases, names = [], {}
        for i, raw in enumerate(data["cases"]):
            case = self.case(path, lines, i, raw)
            if case is None:
                continue
            if case.name in names:
                self._bad(path, case.line, f"duplicate case name {case.name!r} (first at line {names[case.name]})")
                continue
            names[case.name] = case.line
            cases.append(case)
        return cases

    def case(self, path: Path, lines: LineMap, i: int, raw: Any) -> Case | None:
        where = line_of(lines, "cases", i)
        if not isinstance(raw, dict):
            self._bad(path, where, "a case is a mapping with name and turns")
            return None
        before = len(self.problems)
        for key in raw:
            if key not in CASE_KEYS:
                self._bad(path, line_of(lines, "cases", i, key),
                          f"unknown case key {key!r} (allowed: {', '.join(CASE_KEYS)})")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            self._bad(path, where, "a case needs a name")
        clock = None
        if raw.get("clock") is not None:
            try:
                value = raw["clock"]
                clock = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            except ValueError:
                self._bad(path, line_of(lines, "cases", i, "clock"), f"clock {raw['clock']!r} is not an ISO time")
        online = raw.get("agents_online", False)
        if not isinstance(online, bool):
            self._bad(path, line_of(lines, "cases", i, "agents_online"), "agents_online is true or false")
        turns_raw = raw.get("turns")
        if not isinstance(turns_raw, list) or not turns_raw:
            self._bad(path, line_of(lines, "cases", i, "turns"), "a case needs a non-empty list of turns")
            turns_raw = []
        turns = [self.turn(path, lines, ("cases", i, "turns", j), t) for j, t in enumerate(turns_raw)]
        if len(self.problems) > before:
            return None
        return Case(path, where or 1, name.strip(), clock, online, tuple(t for t in turns if t is not None))

    def turn(self, path: Path, lines: LineMap, at: tuple, raw: Any) -> Turn | None:
        where = line_of(lines, *at)
        if not isinstance(raw, dict):
            self._bad(path, where, "a turn is a mapping: {say: …} or one replay event, with an optional expect")
            return None
        unknown = [k for k in raw if k not in TURN_KEYS]
        for key in unknown:
            self._bad(path, line_of(lines, *at, key), f"unknown turn key {key!r} (a turn is say or one of "
                      f"{', '.join(EVENT_KEYS)}, with an optional expect)")
        actions = [k for k in ("say", *EVENT_KEYS) if k in raw]
        if len(actions) != 1:
            if not unknown:
                self._bad(path, where, "a turn needs exactly one of say, " + ", ".join(EVENT_KEYS)
                          + (f" (found {', '.join(actions)})" if actions else ""))
            return None
        if ("images" in raw or "message_id" in raw) and actions[0] != "say":
            self._bad(path, where, "images and message_id belong to a say turn")
            return None
        event = self.event(path, lines, at, actions[0], raw)
        expect = self.expect(path, lines, (*at, "expect"), raw["expect"]) if "expect" in raw else None
        if event is None or ("expect" in raw and expect is None):
            return None
        return Turn(where or 1, event, expect)

    def event(self, path: Path, lines: LineMap, at: tuple, action: str, raw: dict) -> _Event | None:
        value = raw[action]
        here = line_of(lines, *at, action)
        try:
            if action == "say":
                if not isinstance(value, str | int | float) or not str(value).strip():
                    raise ValueError("say needs the customer's text")
                images = raw.get("images", 0)
                if not isinstance(images, int) or isinstance(images, bool) or images < 0:
                    raise ValueError("images is a number of pictures (0 or more)")
                return _Event(customer=CUSTOMER, text=str(value), images=images, message_id=raw.get("message_id"))
            if action == "advance":
                parse_duration(value)
                return _Event(advance=value)
            if action == "order":
                if not isinstance(value, dict):
                    raise ValueError("order is a mapping {order_id, status, consulted_before_order?, amount?}")
                return _Event(order=_Order(**{"customer": CUSTOMER, **value}))
            if action == "agents_online":
                if not isinstance(value, bool):
                    raise ValueError("agents_online is true or false")
                return _Event(agents_online=value)
            if action == "presence":
                if not isinstance(value, dict):
                    raise ValueError("presence is a mapping {agent, online}")
                return _Event(presence=_Presence(**value))
            if action == "agent_reply":
                text = value.get("text") if isinstance(value, dict) else value
                if not isinstance(text, str) or not text.strip():
                    raise ValueError("agent_reply is the agent's text")
                customer = value.get("customer", CUSTOMER) if isinstance(value, dict) else CUSTOMER
                return _Event(agent_reply=_AgentReply(customer=customer, text=text))
            if value is not True and not isinstance(value, str):
                raise ValueError(f"{action} is true (this case's customer) or a customer id")
            customer = CUSTOMER if value is True else value
            return _Event(**{action: customer})
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            self._bad(path, here, f"{action}: {_short(exc)}")
            return None

    def expect(self, path: Path, lines: LineMap, at: tuple, raw: Any) -> Expect | None:
        here = line_of(lines, *at)
        if not isinstance(raw, dict) or not raw:
            self._bad(path, here, f"expect is a mapping of {', '.join(EXPECT_KEYS)}")
            return None
        before = len(self.problems)
        values: dict[str, Any] = {}
        for key, value in raw.items():
            line = line_of(lines, *at, key)
            if key not in EXPECT_KEYS:
                self._bad(path, line, f"unknown expect key {key!r} (allowed: {', '.join(EXPECT_KEYS)})")
                continue
            if key == "fired":
                values[key] = self.fired(path, line, value)
                continue
            items = _strings(value)
            if items is None:
                self._bad(path, line, f"expect.{key}: a text or a list of texts")
                continue
            if key == "intent":
                self._known(path, line, items, self.intents, "intent")
            elif key == "phrase":
                self._known(path, line, items, self.phrase_ids, "phrase id")
            elif key == "kind":
                self._known(path, line, items, KINDS, "decision kind")
            elif key in ("group", "priority"):
                allowed = GROUPS if key == "group" else PRIORITIES
                if len(items) != 1:
                    self._bad(path, line, f"expect.{key}: one of {', '.join(allowed)}")
                    continue
                self._known(path, line, items, allowed, key)
                values[key] = items[0]
                continue
            values[key] = items
        if len(self.problems) > before:
            return None
        return Expect(line=here or 1, **values)

    def fired(self, path: Path, line: int | None, value: Any) -> Fired | None:
        if value is False or value == []:
            return Fired()
        if isinstance(value, dict):
            unknown = set(value) - {"phrase", "after", "before"}
            if unknown or "phrase" not in value:
                self._bad(path, line, "expect.fired: {phrase, after?, before?}")
                return None
            phrases = _strings(value["phrase"])
            try:
                after = parse_duration(value["after"]) if value.get("after") is not None else None
                before = parse_duration(value["before"]) if value.get("before") is not None else None
            except ValueError as exc:
                self._bad(path, line, f"expect.fired: {exc}")
                return None
        else:
            phrases, after, before = _strings(value), None, None
        if not phrases:
            self._bad(path, line, "expect.fired: a phrase id, a list of them, false, or {phrase, after?, before?}")
            return None
        self._known(path, line, phrases, self.phrase_ids, "phrase id")
        return Fired(phrases, after, before)

    def _known(self, path: Path, line: int | None, items: Iterable[str], known: Iterable[str], what: str) -> None:
        known = frozenset(known)
        for item in items:
            if item not in known:
                self._bad(path, line, f"unknown {what} {item!r}" + _did_you_mean(item, known))


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str) and value.strip():
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    return None


def _did_you_mean(item: str, known: frozenset[str]) -> str:
    import difflib

    close = difflib.get_close_matches(item, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        err = errors()[0]
        loc = ".".join(map(str, err["loc"]))
        return f"{loc}: {err['msg']}" if loc else err["msg"]
    return str(exc)
