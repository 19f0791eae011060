"""The shop's settings: `config.yaml`, validated once at start.

Every section is a pydantic model with ``extra="forbid"`` so that a typo in a key fails at
start-up with one sentence naming the key, instead of silently falling back to a default
(STYLE lesson 8). Secrets never live in the file: a value written as ``${ENV_VAR}`` is read from
the environment when the config loads, and a missing variable is a start-up error.
"""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from intents.labels import AFTERSALE, DEFAULT_INTENTS, FALLBACK, IntentGroup, IntentSet

PLATFORM_NAMES = {"taobao": "淘宝", "tmall": "天猫", "jd": "京东"}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The config file cannot be used; the message says which file, key or line and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Shop(_Section):
    """The shop profile: every field (and every key of ``custom``) is a phrasebook placeholder."""

    #: The shop's name as customers see it ({shop_name}).
    shop_name: str = "本店"
    #: The brand the shop sells ({brand}), e.g. in "本店是{brand}官方授权店铺".
    brand: str = "本品牌"
    #: Where the shop sells: decides platform rules such as Tmall's invoice red line.
    platform: Literal["taobao", "tmall", "jd"] = "taobao"
    #: The default courier ({courier}).
    courier: str = "中通快递"
    #: A courier available on request ({extra_courier}); the customer pays the difference.
    extra_courier: str = "顺丰"
    #: Yuan the customer adds for the extra courier ({extra_courier_fee}).
    extra_courier_fee: float = 10
    #: The service phone given to customers ({phone}).
    phone: str = ""
    #: Orders ship within this many hours of payment ({ship_within_hours}).
    ship_within_hours: int = 48
    #: Days of no-reason returns ({return_days}).
    return_days: int = 7
    #: When the desk answers, as told to customers ({service_hours}).
    service_hours: str = "09:00-23:00"
    #: Orders at or above this many yuan ship free ({free_shipping_over}; 0 = no threshold).
    free_shipping_over: float = 0
    #: From this quantity the bulk (tiered) price applies ({bulk_min_qty}).
    bulk_min_qty: int = 10
    #: The bulk price ({bulk_discount}).
    bulk_discount: str = "9折"
    #: The members' price ({member_discount}).
    member_discount: str = "95折"
    #: The small gift the bargaining ladder may offer ({gift}).
    gift: str = "小礼品一份"
    #: The shop's own placeholders: name → text, e.g. {activity: 双十二满300减30}.
    custom: dict[str, str] = Field(default_factory=dict)

    @property
    def platform_name(self) -> str:
        return PLATFORM_NAMES[self.platform]

    def placeholders(self) -> dict[str, str]:
        """All values a reply may use, as display strings (12.0 shows as 12)."""
        values = self.model_dump(exclude={"custom"})
        values["platform_name"] = self.platform_name
        values.update(self.custom)
        return {k: _display(v) for k, v in values.items()}


#: Placeholders filled at send time by a flow rather than from the shop profile. The order-state
#: lines (bot/orders/answers.py) also fill ``{courier}`` with the order's real courier: it stays
#: a shop placeholder (the default courier) everywhere else, so it is not listed here.
RUNTIME_PLACEHOLDERS = frozenset({"wait_minutes", "order_id", "order_status", "tracking_no", "confirm"})


def _display(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class ShopIntent(_Section):
    """An intent of the shop's own (installation, engraving, pre-orders …), beside the defaults.

    Its examples go in a training file listed in ``intents.data_paths`` and its replies in the
    shop's phrasebook, exactly like a default intent's.
    """

    #: lower_snake_case, like the defaults: the name training files and phrasebook entries use.
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    #: Which queue its conversations belong to; ``general`` ones go to pre-sale agents.
    group: IntentGroup
    description: str = ""
    #: A person handles it: the bot suggests but never auto-sends, and hands the conversation over.
    handoff: bool = False


class IntentSettings(_Section):
    #: Where `kefu train` saves the model; empty = a per-user cache folder.
    model_path: str = ""
    #: The shop's own training files (intent → lines), added to the default examples.
    data_paths: list[str] = Field(default_factory=list)
    #: Below this probability the top intent counts as unsure (the line is `other`). Calibrated:
    #: on jddc dev a top intent below 0.4 is right less than half the time.
    min_confidence: float = Field(0.4, ge=0, le=1)
    #: ...or below this margin over the runner-up.
    min_margin: float = Field(0.0, ge=0, le=1)
    #: The shop's own intents (see ShopIntent).
    custom: list[ShopIntent] = Field(default_factory=list)
    #: Default intents this shop switches off (their lines then count as `other`).
    disabled: list[str] = Field(default_factory=list)

    @field_validator("custom")
    @classmethod
    def _custom_names(cls, custom: list[ShopIntent]) -> list[ShopIntent]:
        names = [c.name for c in custom]
        clash = sorted({n for n in names if n in DEFAULT_INTENTS})
        if clash:
            raise ValueError(f"{', '.join(clash)}: already a default intent (remove it from custom)")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"intent names must be unique: {', '.join(dupes)}")
        return custom

    @field_validator("disabled")
    @classmethod
    def _disabled_names(cls, disabled: list[str]) -> list[str]:
        if FALLBACK in disabled:
            raise ValueError(f"{FALLBACK!r} cannot be switched off: it is where unclear lines go")
        unknown = [n for n in disabled if n not in DEFAULT_INTENTS]
        if unknown:
            raise ValueError(f"not a default intent: {', '.join(unknown)} (only defaults can be switched off)")
        return disabled

    def intent_set(self) -> IntentSet:
        return IntentSet.build({c.name: c.group for c in self.custom}, self.disabled)


class PhrasebookSettings(_Section):
    #: The shop's phrasebook files or folders, loaded after the default phrasebook.
    paths: list[str] = Field(default_factory=list)
    #: Load kefu's default phrasebook first (false: only the shop's own entries).
    include_default: bool = True


DEFAULT_HANDOFF_INTENTS = (
    "lost_parcel",
    "missing_item",
    "quality_complaint",
    "counterfeit_claim",
    "bad_review_threat",
    "platform_dispute",
    "human_request",
)


class PolicySettings(_Section):
    mode: Literal["auto", "away", "suggest"] = "away"
    #: A suggestion's score must reach this to be sent without an agent.
    auto_send_min: float = Field(0.5, ge=0, le=1)
    #: ...and the intent's probability must reach this (the intent decides the reply's topic).
    auto_intent_min: float = Field(0.96, ge=0, le=1)
    top_k: int = Field(3, ge=1, le=20)
    #: Words the shop never wants sent on its own, on top of the built-in red lines.
    banned_words: list[str] = Field(default_factory=list)
    #: Intents a human must handle; the bot suggests but never auto-sends for them.
    handoff_intents: list[str] = Field(default_factory=lambda: list(DEFAULT_HANDOFF_INTENTS))
    #: After-sale intents (their tickets go to the aftersale queue); set from the shop's
    #: intent set by Config, so a shop intent of group aftersale counts too.
    _aftersale: frozenset[str] = PrivateAttr(default=frozenset(AFTERSALE))

    def is_aftersale(self, intent: str | None) -> bool:
        return intent in self._aftersale


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_duration(value: object) -> timedelta:
    """``30m``, ``2m30s``, ``1h``, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value).strip())
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration like 30m, 2m30s, 1h or 90s")
    h, m, s = (int(g or 0) for g in match.groups())
    return timedelta(hours=h, minutes=m, seconds=s)


def positive_duration(value: object) -> timedelta:
    """`parse_duration`, refusing zero and negative lengths (``-5`` would fire at once)."""
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError(f"{value!r} must be a positive duration like 30m, 2m30s, 1h or 90s")
    return duration


def parse_hours(value: str) -> tuple[time, time]:
    """``"22:00-08:00"`` → (22:00, 08:00); a window may wrap midnight."""
    match = _HOURS.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a window like 09:00-23:00")
    a, b, c, d = (int(g) for g in match.groups())
    return time(a, b), time(c, d)


def in_window(moment: time, window: tuple[time, time]) -> bool:
    start, end = window
    if start == end:
        return False
    return start <= moment < end if start < end else moment >= start or moment < end


class FlowSettings(_Section):
    """Timing of the scripted flows, in the shop's time zone."""

    #: The shop's time zone: working hours, quiet hours and reports are in it.
    timezone: str = "Asia/Shanghai"
    #: When agents are on duty; in `away` mode the bot answers alone outside these hours.
    working_hours: str = "09:00-23:00"
    #: Never chase a payment in these hours; a chase due then moves to the window's end.
    quiet_hours: str = "22:00-08:00"
    payment_chase_after: timedelta = timedelta(minutes=30)
    bargain_followup_after: timedelta = timedelta(seconds=150)
    #: From this quantity a bulk request goes to a person in the sales group.
    bulk_handoff_qty: int = Field(50, ge=1)
    #: Auto-sends allowed per conversation per minute (stops bot-to-bot loops).
    max_auto_per_minute: int = Field(6, ge=1)

    @field_validator("payment_chase_after", "bargain_followup_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return positive_duration(value)

    @field_validator("working_hours", "quiet_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Agent(_Section):
    """A human agent: which queues they take and how many conversations at once."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.@-]+$")
    name: str = ""
    groups: list[Literal["presale", "aftersale", "sales"]] = Field(min_length=1)
    capacity: int = Field(5, ge=1)


DEFAULT_SLA = {"presale": timedelta(minutes=3), "aftersale": timedelta(minutes=10), "sales": timedelta(minutes=30)}


class HandoffSettings(_Section):
    """Who takes over from the bot, how fast, and when the bot gets the conversation back."""

    agents: list[Agent] = Field(default_factory=list)
    #: Time to first human answer, per group; a ticket past it is flagged as breached.
    sla: dict[Literal["presale", "aftersale", "sales"], timedelta] = Field(default_factory=lambda: dict(DEFAULT_SLA))
    #: This many unsure turns in a row and a person takes over.
    low_confidence_turns: int = Field(3, ge=1)
    #: A conversation a person owns returns to the bot after this long without agent activity.
    release_after: timedelta = timedelta(minutes=30)
    #: Strong negativity: the detector's score from which a customer counts as angry even
    #: without anger words (0–1; an ordinary complaint scores 0.5–0.8).
    anger_threshold: float = Field(0.95, ge=0, le=1)

    @field_validator("release_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return positive_duration(value)

    @field_validator("sla", mode="before")
    @classmethod
    def _sla(cls, value: object) -> object:
        # a shop that sets one queue's SLA keeps the defaults of the others
        if isinstance(value, dict):
            return {**DEFAULT_SLA, **{k: positive_duration(v) for k, v in value.items()}}
        return value

    @field_validator("agents")
    @classmethod
    def _unique_agents(cls, agents: list[Agent]) -> list[Agent]:
        seen = [a.id for a in agents]
        dupes = sorted({a for a in seen if seen.count(a) > 1})
        if dupes:
            raise ValueError(f"agent ids must be unique: {', '.join(dupes)}")
        return agents


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: Larger webhook bodies are refused with 413 before they are read.
    max_body_bytes: int = Field(1_000_000, ge=1024)
    #: HMAC secret of POST /events/order (X-Kefu-Signature, as the generic webhook); put
    #: ${ENV_VAR} here. Empty: the secret of the only generic connector.
    events_secret: str = ""
    #: How long shutdown waits for accepted messages to be processed and replies delivered.
    drain_seconds: float = Field(10.0, ge=0)
    #: Messages one worker may hold (accepted and not yet answered, or in requests being read).
    #: When it is full, webhooks get 503 with Retry-After before anything is read or stored,
    #: and the platform delivers again; a message waits about max_queue ÷ messages/s at most.
    max_queue: int = Field(1000, ge=1)
    #: Bearer token that shows connector names and volumes on /healthz and /metrics to callers
    #: other than loopback (put ${ENV_VAR} here). Empty: only loopback sees them.
    metrics_token: str = ""


class OutboxSettings(_Section):
    """How replies reach the platforms (bot/outbox): one lane per destination, each on its own.

    An attempt that fails waits ``backoff`` seconds, doubled per failure (jittered, at most
    ``max_backoff``); after ``attempts`` failures the item goes to dead-letter (``kefu outbox``).
    """

    #: Retry budget: attempts per reply before it goes to dead-letter.
    attempts: int = Field(6, ge=1, le=100)
    #: One attempt (all the platform calls of one decision) may take this long, then it fails.
    attempt_timeout: float = Field(15.0, gt=0)
    #: Wait after the first failure (seconds), doubled per failure, jittered ±50 %.
    backoff: float = Field(1.0, gt=0)
    #: Longest wait between two attempts (seconds).
    max_backoff: float = Field(300.0, gt=0)
    #: A line for a conversation whose connector cannot push waits this long for the next
    #: response to that conversation, then expires (never sent, never marked delivered).
    hold_for: timedelta = timedelta(hours=24)
    #: /healthz is degraded when more items than this wait (accepted messages or deliveries).
    max_waiting: int = Field(1000, ge=1)

    @field_validator("hold_for", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return positive_duration(value)


class OrderSettings(_Section):
    """Where kefu reads an order's state before answering about it (bot/orders)."""

    #: store: the order events kefu received (default) · http: the shop's ERP, signed like the
    #: generic webhook · taobao: taobao.trade.fullinfo.get with the shop's session.
    source: Literal["store", "http", "taobao"] = "store"
    #: A look-up slower than this is given up: the answer is then only suggested.
    timeout_seconds: float = Field(2.0, gt=0, le=30)
    #: http: the ERP's look-up URL and the shared HMAC secret (${ENV_VAR}).
    url: str = ""
    secret: str = ""
    #: taobao: the taobao_tmc connector whose app key, secret and gateway to use, and the
    #: shop's session key (${ENV_VAR}).
    connector: str = ""
    session: str = ""


class StoreSettings(_Section):
    #: SQLite file (relative to the config file), or sqlite:///path.
    path: str = "kefu.sqlite"
    #: SQLite with WAL. full: every commit is fsync'd before the platform gets its 2xx (survives a
    #: kill -9, an OS crash and a power cut). normal: fsync'd only at checkpoints, faster; a kill -9
    #: still loses nothing, but an OS crash or power cut may lose the last acknowledged messages.
    synchronous: Literal["full", "normal"] = "full"


class ReportTarget(_Section):
    """A group robot the daily summary goes to. Secrets as ``${ENV_VAR}``: read when pushing."""

    #: The name in logs and in the push outbox (unique).
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    #: dingtalk: 钉钉自定义机器人 (signed webhook) · wecom: 企业微信群机器人 (webhook key).
    type: Literal["dingtalk", "wecom"]
    #: dingtalk: the access_token of the robot's webhook.
    access_token: str = ""
    #: dingtalk: the 加签 secret (SEC…); the request is signed with it.
    secret: str = ""
    #: wecom: the key of the robot's webhook.
    key: str = ""
    #: The send endpoint; empty: the platform's (a proxy or a test server may replace it).
    url: str = ""


class ReportSettings(_Section):
    """Shop reports (`kefu report`) and the daily summary pushed to the team's groups."""

    #: Shop time (flows.timezone) when `kefu serve` pushes yesterday's summary; empty: never.
    push_at: str = "09:00"
    #: The group robots (钉钉 custom robot, 企业微信 group robot) the daily summary goes to.
    targets: list[ReportTarget] = Field(default_factory=list)
    #: A first response within this long counts as "answered in time" (the seeds' one minute).
    answer_within: timedelta = timedelta(seconds=60)
    #: Unanswered-question groups in the report and in the push.
    top_questions: int = Field(10, ge=1, le=100)

    @field_validator("push_at")
    @classmethod
    def _clock(cls, value: str) -> str:
        if value and not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
            raise ValueError(f"{value!r} is not a time like 09:00")
        return value

    @field_validator("answer_within", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, targets: list[ReportTarget]) -> list[ReportTarget]:
        names = [t.name for t in targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"report target names must be unique: {', '.join(dupes)}")
        return targets


class Config(_Section):
    """The whole `config.yaml`."""

    shop: Shop = Field(default_factory=Shop)
    intents: IntentSettings = Field(default_factory=IntentSettings)
    phrasebook: PhrasebookSettings = Field(default_factory=PhrasebookSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    flows: FlowSettings = Field(default_factory=FlowSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    #: name (the {name} in /webhook/{name}) → {type: …, settings of that platform}; each
    #: connector validates its own settings (connectors/registry.py).
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Folder the config was read from; relative paths in it are relative to this.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @field_validator("base_dir", mode="before")
    @classmethod
    def _absolute(cls, value: object) -> Path:
        return Path(value).resolve()

    @model_validator(mode="after")
    def _intent_references(self) -> Config:
        """Every intent the config names must exist: a typo would silently switch a rule off."""
        intents = self.intents.intent_set()
        unknown = [n for n in self.policy.handoff_intents if n not in intents.groups]
        if unknown:
            raise ValueError(f"policy.handoff_intents: unknown intent {', '.join(map(repr, unknown))}")
        off = [n for n in self.policy.handoff_intents if n in intents.disabled]
        if off:
            raise ValueError(f"policy.handoff_intents: {', '.join(off)} is switched off in intents.disabled")
        wanted = [c.name for c in self.intents.custom if c.handoff and c.name not in self.policy.handoff_intents]
        self.policy.handoff_intents = [*self.policy.handoff_intents, *wanted]
        self.policy._aftersale = intents.aftersale
        return self

    def intent_set(self) -> IntentSet:
        """The intents this shop recognises: the defaults, its own, minus the switched-off ones."""
        return self.intents.intent_set()

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else self.base_dir / p


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
