"""A fake platform API for tests: a real aiohttp server on loopback that records every call it
gets and answers from canned replies.

Connectors, order sources and report pushes talk to platforms over HTTP; a test points their
``api_base`` / ``url`` at `FakePlatform.url` and then asserts on `FakePlatform.calls` (what kefu
sent, exactly as the platform would see it). Answers are registered per method and path
template (aiohttp's ``{name}`` syntax):

    fake.answer("POST", "/bot{token}/sendMessage", {"ok": True, "result": {}})
    fake.answer("POST", "/robot/send", {"errcode": 310000}, times=1)   # the next call only
    fake.answer("POST", "/api", lambda call: {"echo": call.json})      # computed from the call

A reply is a JSON value, a ``(status, JSON value)`` pair, an aiohttp response, or a function of
the `Call` (sync or async) returning one of those. ``fail_at[n] = reply`` answers the n-th call
(counting from 1, whatever its route) with ``reply`` instead. One-shot answers (``times=``) go
first, in the order they were added; then the latest standing answer for the route. A call with no
answer gets 404 and is listed in `FakePlatform.unanswered`, so a test sees a wrong path
instead of a confusing retry.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

__all__ = ["Call", "FakePlatform"]


@dataclass(frozen=True)
class Call:
    """One request the fake received, as the platform would see it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    match: dict[str, str] = field(default_factory=dict)  # the path template's {names}

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, str]:
        """The body as an urlencoded form (TOP's ``router/rest``)."""
        return dict(parse_qsl(self.text, keep_blank_values=True))


@dataclass
class _Answer:
    method: str
    pattern: re.Pattern[str]
    reply: Any
    status: int
    times: int | None  # None: standing


_VARIABLE = re.compile(r"\{(\w+)(?::([^{}]+))?\}")


def _compile(template: str) -> re.Pattern[str]:
    """aiohttp-style ``/a/{name}/b`` (``{name:regex}`` too, e.g. ``/{tail:.*}``) → one named group each."""
    regex, at = "", 0
    for found in _VARIABLE.finditer(template):
        regex += re.escape(template[at:found.start()]) + f"(?P<{found[1]}>{found[2] or '[^/]+'})"
        at = found.end()
    return re.compile(f"^{regex}{re.escape(template[at:])}$")


class FakePlatform:
    """Records every call (`calls`) and serves canned answers (`answer`); start it with `start`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.unanswered: list[Call] = []
        #: call number (1-based, over all routes) → the reply it gets instead of the route's
        self.fail_at: dict[int, Any] = {}
        self._answers: list[_Answer] = []
        self.server: Any = None  # the aiohttp TestServer once started

    # --- set-up -------------------------------------------------------------------------------

    def answer(self, method: str, path: str, reply: Any = None, *, status: int = 200,
               times: int | None = None) -> FakePlatform:
        """Answer ``method path`` with ``reply`` (see the module docstring); ``times``: only that often."""
        self._answers.append(_Answer(method.upper(), _compile(path), {} if reply is None else reply, status, times))
        return self

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self, aiohttp_server) -> FakePlatform:
        """Serve on a free loopback port with pytest-aiohttp's ``aiohttp_server`` fixture."""
        self.server = await aiohttp_server(self.app())
        return self

    def url(self, path: str = "/") -> str:
        """The address of ``path`` on the running fake (what a connector's ``api_base`` is set to)."""
        if self.server is None:
            raise RuntimeError("the fake platform is not started: await fake.start(aiohttp_server)")
        return str(self.server.make_url(path))

    # --- what it got --------------------------------------------------------------------------

    def calls_to(self, path: str, method: str | None = None) -> list[Call]:
        """The calls whose path matches the template ``path`` (and ``method``, if given)."""
        pattern = _compile(path)
        return [c for c in self.calls if pattern.match(c.path) and (method is None or c.method == method.upper())]

    # --- serving ------------------------------------------------------------------------------

    def _find(self, method: str, path: str) -> tuple[_Answer, dict[str, str]] | None:
        candidates = [a for a in self._answers if a.times is not None] + \
                     [a for a in reversed(self._answers) if a.times is None]
        for answer in candidates:
            found = answer.pattern.match(path)
            if answer.method in {method, "*"} and found:
                return answer, found.groupdict()
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        found = self._find(request.method, request.path)
        call = Call(request.method, request.path, dict(request.query), dict(request.headers), body,
                    found[1] if found else {})
        self.calls.append(call)
        if found is None:
            self.unanswered.append(call)
            return web.json_response({"error": f"the fake has no answer for {request.method} {request.path}"},
                                     status=404)
        answer = found[0]
        if answer.times is not None:
            answer.times -= 1
            if answer.times <= 0:
                self._answers.remove(answer)
        reply, status = answer.reply, answer.status
        if len(self.calls) in self.fail_at:
            reply = self.fail_at[len(self.calls)]
        if callable(reply):
            reply = reply(call)
            if inspect.isawaitable(reply):
                reply = await reply
        if isinstance(reply, web.StreamResponse):
            return reply
        if isinstance(reply, tuple):
            status, reply = reply
        return web.Response(text=json.dumps(reply, ensure_ascii=False), status=status,
                            content_type="application/json")
