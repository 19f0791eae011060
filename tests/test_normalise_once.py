"""One message, one normalisation of each text: the layers that read a message (clauses, answer
acts, classifier, anger, slots, red lines, carry-over) ask `normalise` again and again; the work
is done once per distinct text and the rest are look-ups."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import intents.text as text_module
from bot.app import build
from bot.models import Inbound
from bot.scheduler import ManualClock
from bot.testkit import engine_under
from intents.text import normalise


def test_a_message_is_normalised_once_however_many_layers_read_it(engine, monkeypatch):
    computed: Counter[str] = Counter()
    real = text_module._normalise

    def counting(value: str) -> str:
        computed[value] += 1
        return real(value)

    monkeypatch.setattr(text_module, "_normalise", counting)
    text_module._remembered.cache_clear()
    assistant = build(engine.config, engine=engine_under(engine.config, engine), store=":memory:", orders=None,
                      clock=ManualClock(datetime.fromisoformat("2026-11-23T10:00:00+08:00"))).assistant
    said = "亲 在吗？包邮吗，发什么快递"
    before = text_module._remembered.cache_info()
    assistant.handle_message(Inbound(connector="t", conversation_id="c1", customer_id="c1", message_id="m1", text=said))
    after = text_module._remembered.cache_info()
    assert computed[said] == 1
    assert max(computed.values()) == 1, "no text is normalised twice"
    asked = (after.hits + after.misses) - (before.hits + before.misses)
    assert asked > len(computed), "the layers asked again and got the remembered result"
    text_module._remembered.cache_clear()


def test_the_remembered_result_is_the_computed_one():
    for value in ("ＡＢＣ１２３，包邮吗？？？", "這個價格", "亲亲亲 [微笑] http://x.cn/a 好的"):
        assert normalise(value) == text_module._normalise(value)
        assert normalise(value) == normalise(value)
