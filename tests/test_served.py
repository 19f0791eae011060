"""The intent model's serve cache: the same answers as scikit-learn, without importing it.

`intents.served` stores the direct path's arrays (and the compact pinyin table) once a model
file has been read or trained; the next `load_or_train` answers from them. These tests prove
the cached classifier ranks every default training line and every jddc dev message as the
sklearn path over the model file does (|Δp| < 1e-6), that a fresh process answers with neither
scikit-learn, scipy, joblib nor pypinyin imported, and that the cache is never used for
another model: a replaced model file, other examples, a damaged or foreign cache file all go
through the model file and its checks again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import joblib
import pytest
from test_fastpath import JDDC_DEV, TWO, assert_same_answers

from bot.engine import load_shop_training_set, model_path
from intents import served
from intents.classifier import IntentClassifier
from intents.dataset import TrainingSet
from intents.modelfile import StaleModelError, load_or_train
from tests_support import REPO

MORE = TrainingSet(examples={**TWO.examples, "other": ["嗯", "好的", "哦", "是的", "知道了", "行"]})


def from_cache(clf: IntentClassifier) -> bool:
    return "_fitted_file" in clf.__dict__


@pytest.fixture(scope="module")
def cached(engine):
    """The session model as a restarted server gets it: from the serve cache."""
    config = engine.config
    clf = load_or_train(load_shop_training_set(config), model_path(config), retrain=False,
                        min_confidence=config.intents.min_confidence, min_margin=config.intents.min_margin)
    assert from_cache(clf)
    return clf


def test_cached_model_answers_every_default_training_line_as_sklearn(cached, engine):
    texts, _ = load_shop_training_set(engine.config).pairs()
    assert len(texts) > 5000
    assert_same_answers(cached, texts)  # the reference: sklearn over the model file, pypinyin's pinyin
    assert not from_cache(cached)  # the reference path did read the model file


@pytest.mark.skipif(not JDDC_DEV.exists(), reason="../shared/data is not beside the checkout")
def test_cached_model_answers_every_jddc_dev_message_as_sklearn(cached):
    with JDDC_DEV.open(encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle if line.strip()]
    assert len(texts) > 200
    assert_same_answers(cached, texts)


def test_cached_model_keeps_names_settings_and_thresholds(cached, engine):
    trained = engine.classifier
    assert cached.intents == trained.intents
    assert (cached.temperature, cached.digest, cached.c) == (trained.temperature, trained.digest, trained.c)
    assert cached.min_confidence == engine.config.intents.min_confidence


def test_a_cached_classifier_reaches_the_calibrations_parts_through_its_model_file(engine):
    """The serve cache keeps the softened temperature only; the held-out one is read when asked."""
    config = engine.config
    clf = load_or_train(load_shop_training_set(config), model_path(config), retrain=False)
    assert from_cache(clf)
    trained = engine.classifier
    assert (clf.held_out_temperature, clf.softening) == (trained.held_out_temperature, trained.softening)
    assert clf.temperature == pytest.approx(clf.held_out_temperature * clf.softening)


def test_a_fresh_process_answers_without_sklearn_scipy_joblib_or_pypinyin(engine, config_path):
    probe = (
        "import json, sys\n"
        "from bot.config import load_config\n"
        "from bot.engine import Engine\n"
        f"engine = Engine.from_config(load_config({str(config_path)!r}), retrain=False)\n"
        "d = engine.suggest('亲，这个充电宝包邮吗？什么时候发货')\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'joblib', 'pypinyin'})\n"
        "print(json.dumps({'heavy': heavy, 'intents': d.intents}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["heavy"] == []
    want = engine.suggest("亲，这个充电宝包邮吗？什么时候发货").intents
    assert [n for n, _ in got["intents"]] == [n for n, _ in want]
    assert max(abs(p - dict(want)[n]) for n, p in got["intents"]) < 1e-3  # rounded to 4 places


def test_the_cache_file_is_private(cached, engine):
    path = served.cache_file(served.default_dir(), model_path(engine.config))
    assert path.stat().st_mode & 0o777 == 0o600
    assert served.pinyin_file(served.default_dir()).stat().st_mode & 0o777 == 0o600


def test_a_replaced_model_file_is_not_answered_from_the_old_cache(tmp_path):
    path = tmp_path / "m.joblib"
    load_or_train(TWO, path)
    assert from_cache(load_or_train(TWO, path))
    # another model trained on the same examples (so its stamp passes) replaces the file
    IntentClassifier(c=0.25).fit(TWO).save(path)
    again = load_or_train(TWO, path)
    assert not from_cache(again) and again.c == 0.25  # read from the new file...
    assert from_cache(load_or_train(TWO, path)) and load_or_train(TWO, path).c == 0.25  # ...and cached anew


def test_other_examples_miss_the_cache_and_keep_the_stale_rules(tmp_path):
    path = tmp_path / "m.joblib"
    load_or_train(TWO, path)
    with pytest.raises(StaleModelError, match="trained on other examples"):
        load_or_train(MORE, path, retrain=False)
    retrained = load_or_train(MORE, path)
    assert set(retrained.intents) == {"free_shipping", "shipping_time", "other"}
    assert set(load_or_train(MORE, path).intents) == set(retrained.intents)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "world-writable", "other key"])
def test_a_damaged_or_foreign_cache_is_ignored_and_rebuilt(tmp_path, damage):
    path = tmp_path / "m.joblib"
    load_or_train(TWO, path)
    cache = served.cache_file(served.default_dir(), path)
    if damage == "truncate":
        cache.write_bytes(cache.read_bytes()[:1000])
    elif damage == "garbage":
        cache.write_bytes(b"PK\x03\x04 not a zip")
    elif damage == "world-writable":
        cache.chmod(0o666)
    else:  # a cache written for another model file sits under this one's name
        other = tmp_path / "other.joblib"
        load_or_train(MORE, other)
        os.replace(served.cache_file(served.default_dir(), other), cache)
    again = load_or_train(TWO, path)
    assert not from_cache(again)
    assert set(again.intents) == {"free_shipping", "shipping_time"}
    assert cache.stat().st_mode & 0o777 == 0o600
    assert from_cache(load_or_train(TWO, path))


def test_cache_off_reads_the_model_file(tmp_path):
    path = tmp_path / "m.joblib"
    load_or_train(TWO, path)
    assert not from_cache(load_or_train(TWO, path, cache=None))


def test_a_cached_classifier_saves_refits_and_reaches_its_sklearn_objects(tmp_path):
    path = tmp_path / "m.joblib"
    load_or_train(TWO, path)
    clf = load_or_train(TWO, path)
    assert from_cache(clf)
    copy = tmp_path / "copy.joblib"
    clf.save(copy)  # pickling reads the fitted objects from the model file first
    loaded = joblib.load(copy)["classifier"]
    assert_same_answers(loaded, ["包邮吗", "几天能发"])
    clf.fit(MORE)  # a refit replaces everything the cache gave
    assert not from_cache(clf) and set(clf.intents) == {"free_shipping", "shipping_time", "other"}


def test_the_sklearn_objects_of_a_changed_file_are_refused(tmp_path):
    path = tmp_path / "m.joblib"
    load_or_train(TWO, path)
    clf = load_or_train(TWO, path)
    IntentClassifier(c=0.25).fit(TWO).save(path)
    with pytest.raises(StaleModelError, match="changed after it was loaded"):
        clf.sklearn_scores(["包邮吗"])
