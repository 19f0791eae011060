"""Outbound calls to platform APIs: timeouts, retries with backoff, cached access tokens.

Every platform call goes through `Outbound`, so a slow or flaky API never hangs a worker
and never gets hammered: each attempt has a timeout, 5xx/429/network errors are retried with
exponential backoff (jittered), 4xx are not (they will not get better). Access tokens
(WeCom, Feishu) are cached until shortly before they expire and fetched once even when many
replies need one at the same moment.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import aiohttp

from bot.errors import DeliveryError

_LOGGER = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class OutboundError(DeliveryError, RuntimeError):
    """A platform call failed for good (after retries, or with a non-retryable status)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        """A 4xx other than 429 (too many requests) will be refused again: no retry helps."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


class Outbound:
    """One shared aiohttp session for all platform calls of a server."""

    def __init__(self, *, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5):
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff
        self._session: aiohttp.ClientSession | None = None

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Call ``url`` and return its JSON body, retrying what may succeed on a second try.

        Raises:
            OutboundError: a 4xx (other than 429), or still failing after ``retries`` attempts.
        """
        session = await self.session()
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * (0.5 + random.random()))
            try:
                async with session.request(method, url, json=json, params=params, headers=headers) as resp:
                    if resp.status in RETRY_STATUS:
                        last = f"{method} {_safe(url)}: HTTP {resp.status}"
                        continue
                    if resp.status >= 400:
                        raise OutboundError(f"{method} {_safe(url)}: HTTP {resp.status}", resp.status)
                    if resp.content_length == 0:
                        return {}
                    return await resp.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = f"{method} {_safe(url)}: {exc.__class__.__name__}"
        raise OutboundError(f"{last} (gave up after {self.retries + 1} attempts)")

    async def post_json(self, url: str, payload: Any, **kwargs: Any) -> Any:
        return await self.request_json("POST", url, json=payload, **kwargs)


def _safe(url: str) -> str:
    """The URL without its query string: access tokens travel there and must not be logged."""
    return url.split("?", 1)[0]


class TokenCache:
    """An access token fetched on demand and reused until ``margin`` seconds before it expires."""

    def __init__(self, fetch: Callable[[], Awaitable[tuple[str, float]]], margin: float = 300.0):
        self._fetch = fetch  # returns (token, seconds valid)
        self._margin = margin
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token is not None and time.monotonic() < self._expires:
            return self._token
        async with self._lock:  # one fetch even when many replies need a token at once
            if self._token is None or time.monotonic() >= self._expires:
                token, valid = await self._fetch()
                self._token, self._expires = token, time.monotonic() + max(0.0, valid - self._margin)
        return self._token

    def invalidate(self) -> None:
        """Forget the token (the platform said it expired early)."""
        self._token = None


class SentSteps:
    """Platform calls of a decision made (or under way) in this process: each is made once.

    The server retries a whole delivery when one call fails; without this, replies that went out
    before the failure would reach the customer twice. A step is claimed before its call, so a
    second delivery of the same decision running at the same time (restart recovery can start
    one) skips it too; a failed call gives its claim back for the retry. Bounded: the oldest
    entries are forgotten.
    """

    def __init__(self, size: int = 4096):
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._size = size

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    async def once(self, key: Hashable, call: Callable[[], Awaitable[Any]]) -> None:
        """Run ``call`` unless ``key`` was claimed already; a failure releases the claim."""
        if key in self:
            return
        self.add(key)
        try:
            await call()
        except BaseException:
            self.discard(key)
            raise
