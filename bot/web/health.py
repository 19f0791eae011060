"""Honest health: /healthz says 503 with the reasons when kefu cannot do its job.

Checked on each call: the store accepts a write (a one-row probe, at most once a second so a
busy probe never loads the store), no recent store write failed, the message worker, the timer
loop and the outbox lanes are alive, nothing sits in dead-letter, and what waits (accepted
messages, pending deliveries) is under ``outbox.max_waiting``.

Connector names and volumes (every name is a webhook URL) are shown only to callers that are
trusted: loopback without a proxy in front (no ``X-Forwarded-For``), or ``Authorization:
Bearer <server.metrics_token>``. Everyone else gets the verdict and the reasons, which never
name a connector.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
#: A store write failure this recent (seconds) still degrades health.
STORE_FAILURE_WINDOW = 60.0
PROBE_EVERY = 1.0


def trusted(request: web.Request, token: str) -> bool:
    """Loopback without a proxy, or the metrics token."""
    auth = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(auth.encode(), f"Bearer {token}".encode()):
        return True
    proxied = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    return request.remote in LOOPBACK and not proxied


@dataclass
class StoreWatch:
    """The last store write that failed, and the last probe's verdict."""

    last_failure: float | None = None
    last_error: str = ""
    probed_at: float = 0.0
    probe_error: str | None = None
    failures: int = field(default=0)

    def failed(self, error: BaseException) -> None:
        self.last_failure, self.last_error = time.monotonic(), f"{error.__class__.__name__}: {error}"
        self.failures += 1

    def recent_failure(self) -> str | None:
        if self.last_failure is not None and time.monotonic() - self.last_failure < STORE_FAILURE_WINDOW:
            return self.last_error
        return None


def report(server: Any, probe_error: str | None) -> tuple[list[str], dict[str, Any]]:
    """(reasons the server is degraded — empty when healthy, details for trusted callers)."""
    reasons: list[str] = []
    path = getattr(server.store, "path", "")
    if probe_error:
        reasons.append(f"store {path} cannot write: {probe_error}")
    elif (recent := server.store_watch.recent_failure()) is not None:
        reasons.append(f"store {path} failed a write in the last {int(STORE_FAILURE_WINDOW)} s: {recent}")
    for name, task in (("message worker", server.worker_task), ("timer loop", server.timer_task)):
        if task is None or task.done():
            reasons.append(f"{name} is not running")
    if not server.delivery.alive:
        reasons.append("outbox sweeper is not running")
    counts: dict[str, int] = {}
    depths: dict[str, int] = {}
    try:
        counts = server.outbox.counts()
        depths = server.outbox.lane_depths()
    except Exception as exc:  # the store cannot even read
        reasons.append(f"store {path} cannot read the outbox: {exc.__class__.__name__}: {exc}")
    if counts.get("dead"):
        reasons.append(f"{counts['dead']} deliveries in dead-letter (see `kefu outbox`)")
    waiting = server.queue_size() + counts.get("pending", 0)
    if waiting > server.config.outbox.max_waiting:
        reasons.append(f"{waiting} items waiting (over outbox.max_waiting {server.config.outbox.max_waiting})")
    details = {
        "queued": server.queue_size(),
        "outbox": counts,
        "lanes": depths,
        "connectors": sorted(server.connectors),
    }
    return reasons, details


async def healthz(server: Any, request: web.Request) -> web.Response:
    from connectors.base import json_response

    watch = server.store_watch
    now = time.monotonic()
    if now - watch.probed_at >= PROBE_EVERY:
        watch.probed_at = now
        try:
            await server.run(server.store.probe_write)
            watch.probe_error = None
        except Exception as exc:
            watch.probe_error = f"{exc.__class__.__name__}: {exc}"
            server.metrics.store_errors.inc()
    reasons, details = report(server, watch.probe_error)
    for status, n in details["outbox"].items():
        server.metrics.outbox_items.labels(status).set(n)
    body: dict[str, Any] = {"ok": not reasons, "status": 503 if reasons else 200}
    if reasons:
        body["error"] = "degraded: " + "; ".join(reasons)
        body["reasons"] = reasons
    if trusted(request, server.metrics_token):
        body.update(details)
    return json_response(body, status=body["status"])
