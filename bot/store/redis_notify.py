"""Wake-ups between the workers of one Redis store: "a message was accepted on shard N" and
"message row R is processed", published by the commits that make them true.

Without them a worker learns both by asking: the shard reader naps (up to 50 ms) between empty
reads, and a sync webhook on another worker than the shard's owner asks "is the decision there
yet?" every few milliseconds — round trips that cost CPU on a 2-core box and add latency to
every turn. The commit scripts PUBLISH instead (`RedisStore.add_message`, `mark_processed`: no
extra round trip, the PUBLISH runs inside the commit), and one thread per worker listens.

A wake-up is a hint, never the truth: Pub/Sub drops messages while a subscriber reconnects, so
every waiter still looks in Redis itself after a bounded wait (the reader's nap, the sync
wait's slices). Losing a notification costs latency, never a message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

_LOGGER = logging.getLogger(__name__)


def inbox_channel(store: Any) -> str:
    return store.core.key("notify", "inbox")


def processed_channel(store: Any) -> str:
    return store.core.key("notify", "processed")


class Listener:
    """One thread subscribed to both channels, calling ``on_inbox(shard)`` and
    ``on_processed(row)`` (on its own thread: callbacks must be quick and thread-safe).

    Args:
        store: The `RedisStore` (its connection settings; the subscription has its own connection).
    """

    def __init__(self, store: Any, on_inbox: Callable[[int], None], on_processed: Callable[[int], None]):
        self.store = store
        self.on_inbox = on_inbox
        self.on_processed = on_processed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()

    def start(self) -> Listener:
        self.store.listeners.append(self)  # `RedisStore.close` ends it
        self._thread = threading.Thread(target=self._run, name="kefu-notify", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self in self.store.listeners:
            self.store.listeners.remove(self)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        channels = {inbox_channel(self.store): self.on_inbox, processed_channel(self.store): self.on_processed}
        while not self._stop.is_set():
            pubsub = self.store.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(*channels)
                self.subscribed.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)  # bounded: `stop` is seen within 0.5 s
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        channels[message["channel"]](int(message["data"]))
                    except Exception:  # a bad payload or callback must not end the wake-ups
                        _LOGGER.warning("notification %r not handled", message, exc_info=True)
            except (redis.RedisError, OSError, ValueError):  # (ValueError: its socket closed under it)
                self.subscribed.clear()
                if not self._stop.is_set():
                    _LOGGER.warning("notifications: Redis connection lost; subscribing again in 0.5 s")
                    self._stop.wait(0.5)
            finally:
                try:
                    pubsub.close()
                except Exception:  # closing a broken connection: nothing left to do
                    pass
