"""The second reading of an unsure message with a dropped character put back (`intents.repair.dropped`).

What must hold: the candidates come from the training lines' character model only (so the
fitted model and the serve cache propose the same ones); a confident reading is never read
again; a second reading can only confirm the first reading's top intent, confidently; and on
dropped-character versions of our own lines it does give some readings back.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import intents.classifier as classifier_module
from bot.engine import load_shop_training_set
from intents.features import syllables
from intents.labels import FALLBACK
from intents.repair import Lexicon, Restorer, build
from intents.repair.dropped import MAX_CANDIDATES
from intents.repair.lexicon import END, START
from intents.tokenize import cut
from tests_support import REPO

#: 签收 ends many lines; 已签 alone ends none
SIGNED = ["快递显示已签收", "显示已签收了", "已签收但是没收到", "物流说已签收", "怎么就已签收了", "已经签收了吗"]


def restorer(lines=SIGNED) -> Restorer:
    return Restorer(build(lines, cut, syllables))


def test_the_lexicon_counts_the_character_pairs_of_the_runs_with_their_ends():
    lexicon = build(["包邮吗", "包邮 不包邮"], cut, syllables)
    # runs: 包邮吗 / 包邮 / 不包邮; each run's start counts as a character that something follows
    assert lexicon.chars == {START: 3, "包": 3, "邮": 3, "吗": 1, "不": 1}
    assert lexicon.pairs[START + "包"] == 2 and lexicon.pairs["包邮"] == 3 and lexicon.pairs["邮" + END] == 2
    assert lexicon.pairs["邮吗"] == 1 and lexicon.pairs["吗" + END] == 1 and lexicon.pairs[START + "不"] == 1


def test_the_character_model_round_trips_and_is_checked():
    lexicon = build(SIGNED, cut, syllables)
    arrays = lexicon.to_arrays()
    assert Lexicon.from_arrays(arrays) == lexicon
    body = json.loads(arrays["repair"].tobytes())
    for damage in ({**body, "pairs": {"签收签": 3}}, {**body, "chars": {"签": "many"}}, {**body, "pairs": []}):
        with pytest.raises(ValueError):
            Lexicon.from_arrays({"repair": np.frombuffer(json.dumps(damage).encode(), dtype=np.uint8)})


def test_a_dropped_last_character_is_proposed_back():
    found = restorer()("快递显示已签")
    assert "快递显示已签收" in found and len(found) <= MAX_CANDIDATES
    assert all(len(c) == len("快递显示已签") + 1 for c in found)  # one character, never more


def test_placeholders_digits_and_latin_are_left_as_they_are():
    for candidate in restorer()("订单# 已签 ok 12"):
        assert candidate.startswith("订单# ") or candidate.startswith("订单")
        assert candidate.endswith(" ok 12") and "#" in candidate


def test_no_character_model_no_candidates():
    assert Restorer(Lexicon({}, {}, {}, 0))("快递显示已签") == []


def test_a_confident_reading_is_never_read_again(engine, monkeypatch):
    clf = engine.classifier
    asked: list[str] = []
    real = Restorer.__call__
    monkeypatch.setattr(Restorer, "__call__", lambda self, text: asked.append(text) or real(self, text))
    result = clf.predict("这个包邮吗")
    assert result.confident and not asked


def _dropped_own_lines(engine) -> list[str]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_robustness import drop_character

    texts, _ = load_shop_training_set(engine.config).pairs()
    return [drop_character(t) for t in texts]


def test_a_second_reading_only_confirms_the_first_readings_top_intent(engine, monkeypatch):
    clf = engine.classifier
    texts = _dropped_own_lines(engine)
    first = clf._predict(texts, False)
    final = clf.predict_many(texts)
    changed = 0
    for before, after in zip(first, final):
        if after.ranking == before.ranking:
            continue
        changed += 1
        assert not before.confident and before.ranking[0][0] != FALLBACK  # only an unsure reading
        assert after.confident and after.intent == before.ranking[0][0] and after.score > before.score
        # it says what it read: the candidate's own reading, one character longer than the first
        read, candidate = after.reread
        assert len(candidate) == len(read) + 1 and clf.predict(candidate).ranking == after.ranking
    assert all(r.reread is None for r in first)
    assert changed >= 10, changed  # it does give readings back
    # switched off, the results are the first reading's
    monkeypatch.setattr(classifier_module, "SECOND_READING", False)
    assert [r.ranking for r in clf.predict_many(texts[:300])] == [r.ranking for r in first[:300]]


def test_the_trace_and_suggest_show_the_second_reading(engine, config_path):
    clf = engine.classifier
    texts = _dropped_own_lines(engine)
    reread = [(t, r.reread) for t, r in zip(texts, clf.predict_many(texts)) if r.reread is not None]
    assert reread
    shown = [(t, pair) for t, pair in reread if engine.suggest(t).trace.get("read_again")]
    assert shown, "no re-read text shows it in its trace"
    text, (old, new) = shown[0]
    assert {"from": old, "to": new} in engine.suggest(text).trace["read_again"]
    assert "read_again" not in engine.suggest("这个包邮吗").trace
    from click.testing import CliRunner

    from bot.cli import main

    out = CliRunner().invoke(main, ["suggest", text, "--config", str(config_path)])
    assert out.exit_code == 0, out.output
    assert f"read again {old} → {new}" in out.output


def test_the_serve_cache_proposes_the_same_candidates(engine, tmp_path):
    from intents import served
    from intents.modelfile import stamp as _stamp

    trained = engine.classifier
    model = tmp_path / "m.joblib"
    trained.save(model)
    stamp = _stamp(trained.digest)
    served.store(tmp_path / "cache", model, stamp, trained)
    cached = served.load(tmp_path / "cache", model, stamp)
    assert cached is not None and cached.lexicon.pairs == trained.lexicon.pairs
    texts = [cached.read(t) for t in _dropped_own_lines(engine)[:800]]
    assert [cached.restorer()(t) for t in texts] == [trained.restorer()(t) for t in texts]
    assert sum(bool(trained.restorer()(t)) for t in texts) > 50
