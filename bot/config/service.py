"""How the service runs: `server:`, `outbox:`, `orders:`, `store:`, `reports:`."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from bot.config.base import Section as _Section
from bot.config.base import require_unique
from bot.config.times import parse_clock, parse_duration, positive_duration


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
    #: Which requests get a line in the log (aiohttp's access log, one line each: address,
    #: time, request line, status, size, user agent). errors: only those answered 4xx or 5xx
    #: (refused, bad, failed), the ones a shop needs to look at. all: every request — at
    #: hundreds of messages a second that is a log line each, and CPU the webhooks would use.
    #: Volumes by status are always on /metrics (kefu_http_responses_total).
    access_log: Literal["errors", "all"] = "errors"


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
    #: SQLite file (relative to the config file), or sqlite:///path; redis://HOST:PORT/DB for several
    #: workers (`kefu serve --workers N`, docs/scale.md).
    path: str = "kefu.sqlite"
    #: SQLite with WAL. full: every commit is fsync'd before the platform gets its 2xx (survives a
    #: kill -9, an OS crash and a power cut). normal: fsync'd only at checkpoints, faster; a kill -9
    #: still loses nothing, but an OS crash or power cut may lose the last acknowledged messages.
    synchronous: Literal["full", "normal"] = "full"
    #: Days the agent workspace's live event log (one row per message, ticket change and presence
    #: change, read by GET /api/events) keeps its rows; `kefu serve` deletes older ones hourly, in
    #: bounded batches. Reveal events (which agent saw a full phone number or address) are kept;
    #: a page away longer than this loads its state afresh. 0 keeps every row. On Redis the same,
    #: by one worker at a time (docs/scale.md).
    events_days: float = Field(7.0, ge=0)


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
        if value:
            parse_clock(value)
        return value

    @field_validator("answer_within", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, targets: list[ReportTarget]) -> list[ReportTarget]:
        require_unique([t.name for t in targets], "report target names")
        return targets
