"""intents.wordtrie: jieba's segmentation over a word trie gives jieba's tokens, word for word."""

import random
from pathlib import Path

import jieba
import pytest
import yaml

from intents import tokenize, wordtrie
from intents.text import normalise

REPO = Path(__file__).resolve().parents[1]


def _training_texts() -> list[str]:
    texts: list[str] = []

    def walk(node):
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((REPO / "intents" / "data").glob("*.yaml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return [normalise(text) for text in texts]


def plain_jieba() -> jieba.Tokenizer:
    """jieba as intents.tokenize used it before the trie: its dict plus the user dictionary, word by word."""
    plain = jieba.Tokenizer()
    plain.initialize()
    for word, freq, tag in tokenize._read_userdict(tokenize.USERDICT):
        plain.add_word(word, freq, tag)
    return plain


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(trie tokenizer, plain jieba with the same user dictionary added word by word)."""
    cache = tmp_path_factory.mktemp("trie") / tokenize.CACHE_FILE
    return wordtrie.load_or_build(cache, tokenize.USERDICT, tokenize._read_userdict), plain_jieba()


@pytest.fixture(scope="module")
def texts():
    train = _training_texts()
    rng = random.Random(7)
    alphabet = sorted(set("".join(train)))
    noise = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    words = [word for word, _f, _t in tokenize._read_userdict(tokenize.USERDICT)]
    return train + noise + words + ["", "a", "123", "在吗？？", "[订单x]", "🙂包邮吗"]


@pytest.mark.timeout(300)
def test_tokens_equal_jiebas_on_the_training_set_dictionary_and_noise(pair, texts):
    trie, plain = pair
    assert len(texts) > 10000
    differ = [t for t in texts if list(trie.cut(t, HMM=True)) != list(plain.cut(t, HMM=True))]
    assert differ == []


@pytest.mark.timeout(300)
def test_the_other_jieba_modes_agree_too(pair, texts):
    trie, plain = pair
    sample = texts[::7]
    assert [list(trie.cut(t, HMM=False)) for t in sample] == [list(plain.cut(t, HMM=False)) for t in sample]
    assert [list(trie.cut(t, cut_all=True)) for t in sample] == [list(plain.cut(t, cut_all=True)) for t in sample]


def test_frequency_lookups_match_jiebas_dict(pair):
    trie, plain = pair
    for word in ["包邮", "充电宝", "的", "七天无理由", "充电", "充", "七天无", "zzz不是词", "退"]:
        assert trie.FREQ.get(word) == plain.FREQ.get(word), word
        assert (word in trie.FREQ) == (word in plain.FREQ), word
    assert trie.total == plain.total


@pytest.mark.timeout(120)
def test_added_and_deleted_words_behave_as_in_jieba(tmp_path, texts):
    cache = tmp_path / tokenize.CACHE_FILE
    trie = wordtrie.load_or_build(cache, tokenize.USERDICT, tokenize._read_userdict)
    plain = plain_jieba()
    for tok in (trie, plain):
        tok.add_word("超能充电宝套装", 20000)  # new, longer than a dictionary word it contains
        tok.add_word("发货", 3)  # an existing word, weaker now
        tok.add_word("运费险", 0)  # a shop word removed again
    assert list(trie.cut("超能充电宝套装包邮吗")) == ["超能充电宝套装", "包邮", "吗"]
    sample = texts[::3] + ["超能充电宝套装有运费险吗什么时候发货"]
    assert [list(trie.cut(t)) for t in sample] == [list(plain.cut(t)) for t in sample]
    assert trie.total == plain.total


def test_cache_is_reused_private_and_rebuilt_when_corrupt(tmp_path, caplog):
    cache = tmp_path / tokenize.CACHE_FILE
    first = wordtrie.load_or_build(cache, tokenize.USERDICT, tokenize._read_userdict)
    assert cache.stat().st_mode & 0o777 == 0o600
    written = cache.stat().st_mtime_ns
    again = wordtrie.load_or_build(cache, tokenize.USERDICT, tokenize._read_userdict)
    assert cache.stat().st_mtime_ns == written  # read, not rebuilt
    assert list(again.cut("充电宝包邮吗")) == list(first.cut("充电宝包邮吗")) == ["充电宝", "包邮", "吗"]
    cache.write_bytes(cache.read_bytes()[:5000])  # truncated
    rebuilt = wordtrie.load_or_build(cache, tokenize.USERDICT, tokenize._read_userdict)
    assert "unreadable" in caplog.text
    assert list(rebuilt.cut("充电宝包邮吗")) == ["充电宝", "包邮", "吗"]
    assert len(cache.read_bytes()) > 5000


def test_building_the_trie_removes_the_old_jieba_cache_beside_it(tmp_path):
    old = tmp_path / "jieba-0.42.1.cache"
    old.write_bytes(b"x" * 1000)
    mine = tmp_path / "intent-model.joblib"  # anything else in kefu's cache dir stays
    mine.write_bytes(b"model")
    wordtrie.load_or_build(tmp_path / tokenize.CACHE_FILE, tokenize.USERDICT, tokenize._read_userdict)
    assert not old.exists() and mine.exists() and (tmp_path / tokenize.CACHE_FILE).is_file()


def test_cache_name_follows_the_user_dictionary():
    base = tokenize.USERDICT.read_bytes()
    assert wordtrie.cache_name(base) == tokenize.CACHE_FILE
    assert wordtrie.cache_name(base + "新词 100\n".encode()) != tokenize.CACHE_FILE


def test_a_fixed_dictionary_cannot_be_swapped(pair):
    trie, _ = pair
    trie.initialize()  # already initialised: a no-op
    with pytest.raises(ValueError, match="fixed"):
        trie.initialize("/some/other/dict.txt")
