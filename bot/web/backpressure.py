"""Backpressure: a bound on the messages one worker holds, and the answer when it is reached.

Why: a webhook is acknowledged as soon as its messages are persisted, and the worker answers
them later, one at a time. Acknowledging is several times cheaper than answering, so a burst
used to queue without bound: replies minutes late, memory growing, a restart replaying it all.

`Backlog` counts the messages a worker holds — accepted and not yet processed, the one being
processed, and those of webhook requests admitted and still being read — and admits a new
webhook request only while that count is below ``server.max_queue``. A refused request gets
503 with ``Retry-After`` before anything of it is read or persisted, so nothing accepted is ever
dropped: the platform delivers a refused message again (every platform kefu connects retries a
non-2xx or unanswered webhook; none defines a "retry later" body of its own), and it is
deduplicated as usual if it was accepted after all.

A request admitted brings all its messages (a pull connector such as WeCom KF may fetch many in
one request), so the count can pass the bound by one request's messages; it never grows
further. The count changes only on the event loop's thread, so it needs no lock (the worker
thread only feeds the processing-time estimate).
"""

from __future__ import annotations

import math

from aiohttp import web

from bot.web.errors import error_response

#: Weight of the newest processing time in the running mean that estimates Retry-After.
_SMOOTHING = 0.05
#: Retry-After bounds in seconds: at least one, and never so long that a shop waits needlessly.
RETRY_AFTER_MIN, RETRY_AFTER_MAX = 1, 30


class Backlog:
    """Messages held by one worker, bounded by ``limit`` (``server.max_queue``)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0
        self.refused = 0
        self._seconds = 0.0  # running mean of one message's processing time

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    def admit(self) -> Hold | None:
        """Slots for one webhook request (one until its messages are known), or None when full."""
        if self.full:
            self.refused += 1
            return None
        self.count += 1
        return Hold(self)

    def add(self, n: int) -> None:
        """Held messages change by ``n`` (a request's messages once parsed; recovered rows)."""
        self.count = max(0, self.count + n)

    def done(self, n: int = 1) -> None:
        """``n`` held messages are finished: processed, answered inline, duplicate, or refused."""
        self.add(-n)

    def processed_in(self, seconds: float) -> None:
        self._seconds = seconds if self._seconds == 0.0 else (
            (1 - _SMOOTHING) * self._seconds + _SMOOTHING * seconds)

    def retry_after(self) -> int:
        """Seconds until the worker has worked off what it holds now (bounded)."""
        wait = math.ceil(self.count * self._seconds)
        return max(RETRY_AFTER_MIN, min(RETRY_AFTER_MAX, wait))

    def refusal(self) -> web.Response:
        """503 in the JSON error shape, with ``Retry-After``; nothing of the request was read."""
        seconds = self.retry_after()
        response = error_response(
            503, f"busy: {self.count} messages are waiting for the worker (server.max_queue "
                 f"{self.limit}); nothing of this request was accepted, retry in {seconds} s")
        response.headers["Retry-After"] = str(seconds)
        return response


class Hold:
    """The backlog slots of one webhook request: one per message until each is queued or answered."""

    def __init__(self, backlog: Backlog):
        self.backlog = backlog
        self.slots = 1

    def resize(self, messages: int) -> None:
        """The request turned out to carry ``messages`` messages."""
        self.backlog.add(messages - self.slots)
        self.slots = messages

    def hand_over(self) -> None:
        """One message went to the worker's queue: the worker releases its slot when processed."""
        self.slots -= 1

    def release(self) -> None:
        """The request is answered: free what it still holds (inline answers, duplicates, errors)."""
        self.backlog.done(self.slots)
        self.slots = 0
