"""kefu's error family: one root, so every entry point knows what it may tell a person.

Three kinds of failure need three different answers, and the type says which:

- `UserError` — something a shop can fix in a file, a setting or a store (a typo in
  ``config.yaml``, a malformed phrasebook line, a store written by a newer kefu). The CLI prints
  it as ONE line naming the file (and line) or path and the fix, and exits 1 (or the error's
  ``exit_code``); ``kefu --debug`` shows the traceback instead. Its three branches are
  `ConfigError`, `DataFileError` and `StoreError`; an error with ``problems`` (a phrasebook with
  five bad entries) prints each ``file:line: reason`` first, then one closing sentence.
- `RefusedError` — a request refused (a bad webhook body, a desk action on someone else's
  ticket): ``status`` is the HTTP status an API answers with, in the JSON error shape.
- `DeliveryError` — a platform did not take a line. `TransientDeliveryError` is retried with
  back-off; `PermanentDeliveryError` (an expired reply window, a 4xx) cannot get better and
  goes to dead-letter at once. ``permanent`` says which, so the outbox asks the error, not a
  list of connector classes.

Anything else that escapes is a bug: a traceback in the CLI, a logged 500 on the server.

This module imports nothing of kefu: the intent, phrasebook and connector layers raise these
too, so it sits below all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "ConfigError",
    "DataFileError",
    "DeliveryError",
    "KefuError",
    "PermanentDeliveryError",
    "RefusedError",
    "StoreError",
    "TransientDeliveryError",
    "UserError",
]


class KefuError(Exception):
    """The root: every error kefu raises on purpose is one of these."""


class UserError(KefuError):
    """A person can fix it: the message names the file (and line) or path and what to do.

    ``problems`` (optional) lists several ``file:line: reason`` lines found in one pass; the CLI
    prints them before the one-line summary.
    """

    #: The CLI's exit status for it (`kefu eval` uses 2 for an unknown gold label).
    exit_code: ClassVar[int] = 1
    problems: Sequence[str] = ()


class ConfigError(UserError):
    """``config.yaml`` (or a setting given on the command line) cannot be used."""


class DataFileError(UserError):
    """A data file a shop writes — phrasebook, training data, replay script, suite, labelled set,
    saved model — cannot be used."""


class StoreError(UserError):
    """The store cannot be opened or used (path, permissions, schema, an unsupported URL)."""


class RefusedError(KefuError):
    """A request is refused; ``status`` is the HTTP status (4xx) an API answers with."""

    status: int = 400


class DeliveryError(KefuError):
    """A platform did not take a line. Transient unless ``permanent`` says otherwise."""

    #: True: retrying cannot help (dead-letter now); False: retry with back-off.
    @property
    def permanent(self) -> bool:
        return False


class TransientDeliveryError(DeliveryError):
    """The platform may take it later (timeout, 5xx, 429, a rate limit): retry with back-off."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (no push channel, an expired reply window, a 4xx): dead-letter now."""

    @property
    def permanent(self) -> bool:
        return True
