"""Tests for intents.tokenize: the shop dictionary, placeholders, add_words and the jieba cache."""

import os
import subprocess
import sys
from pathlib import Path

import jieba
import pytest

from intents import tokenize
from intents.text import normalise
from intents.tokenize import add_words, cut, cut_joined

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("充电宝包邮吗", ["充电宝", "包邮", "吗"]),
        ("七天无理由", ["七天无理由"]),
        ("支持七天无理由退换吗", ["支持", "七天无理由退换", "吗"]),
        ("发顺丰", ["发", "顺丰"]),
        ("申请小二介入", ["申请", "小二介入"]),
        ("开专票", ["开", "专票"]),
        ("有运费险吗", ["有", "运费险", "吗"]),
        ("能用花呗吗", ["能", "用", "花呗", "吗"]),
        ("我要转人工", ["我要", "转人工"]),
        ("拍下改地址", ["拍下", "改地址"]),
        ("京东快递到付", ["京东快递", "到付"]),
        ("发EMS可以吗", ["发", "ems", "可以", "吗"]),  # the dictionary is in normalised form
        ("亲在吗", ["亲", "在吗"]),
        ("现在吗", ["现在", "吗"]),  # 在吗 is frequent but must not break 现在
        ("這個價格還能優惠嗎", ["这个", "价格", "还", "能", "优惠", "吗"]),
    ],
)
def test_user_dictionary_keeps_shop_words_whole(raw, expected):
    assert cut(normalise(raw)) == expected


def test_placeholders_are_one_token():
    assert cut("订单号[订单x]怎么还没发货") == ["订单号", "[订单x]", "怎么", "还", "没", "发货"]
    assert cut("[商品快照]有货吗") == ["[商品快照]", "有货", "吗"]


def test_whitespace_tokens_are_dropped():
    assert cut("亲  在吗 ") == ["亲", "在吗"]
    assert cut("") == []


def test_cut_joined_uses_single_spaces():
    assert cut_joined("充电宝包邮吗") == "充电宝 包邮 吗"


def test_private_tokenizer_leaves_global_jieba_alone():
    assert cut("充电宝包邮吗") == ["充电宝", "包邮", "吗"]
    assert tokenize._get() is not jieba.dt
    assert "运费险" not in jieba.dt.FREQ or jieba.dt.FREQ["运费险"] < tokenize.DEFAULT_FREQ


def test_add_words_extends_the_dictionary():
    text = normalise("喵喵星人猫粮好吃吗")
    assert "喵喵星人猫粮" not in cut(text)
    add_words(["喵喵星人猫粮", "  "])
    assert cut(text)[0] == "喵喵星人猫粮"


def test_add_words_normalises_the_words():
    add_words(["ＺＸ牌充電線"])  # full-width, traditional
    assert "zx牌充电线" in cut(normalise("ZX牌充電線多少钱"))


def test_userdict_comments_skipped_and_bad_lines_named(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("# comment\n\n包郵 100 v\n新词\n", encoding="utf-8")
    assert list(tokenize._read_userdict(good)) == [
        ("包邮", 100, "v"),
        ("新词", tokenize.DEFAULT_FREQ, None),
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("好词 100\n坏词 many\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        list(tokenize._read_userdict(bad))


# --- the jieba cache, in a fresh interpreter each time (the tokenizer is built once per process)

_PROBE = """
import sys, tempfile
if len(sys.argv) > 1:
    tempfile.tempdir = sys.argv[1]  # make the system temp dir unusable too
from intents.tokenize import cache_dir, cut
print(cache_dir())
print("/".join(cut("充电宝包邮吗")))
"""


def _probe(env_cache_dir, *args, tmpdir=None):
    env = {**os.environ, "KEFU_CACHE_DIR": str(env_cache_dir)}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    chosen, tokens = done.stdout.strip().splitlines()
    return chosen, tokens, done.stderr


def test_cache_file_goes_to_kefu_cache_dir(tmp_path):
    cache = tmp_path / "new" / "cache"  # missing: created on demand
    chosen, tokens, _ = _probe(cache)
    assert tokens == "充电宝/包邮/吗"
    assert Path(chosen) == cache
    assert (cache / tokenize.CACHE_FILE).is_file()
    # second start loads the cache instead of rebuilding it
    mtime = (cache / tokenize.CACHE_FILE).stat().st_mtime_ns
    assert _probe(cache)[1] == "充电宝/包邮/吗"
    assert (cache / tokenize.CACHE_FILE).stat().st_mtime_ns == mtime


def test_unusable_cache_dir_falls_back_to_temp_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    fallback = tmp_path / "tmp"
    fallback.mkdir()
    chosen, tokens, _ = _probe(blocker / "cache", tmpdir=fallback)
    assert tokens == "充电宝/包邮/吗"
    assert Path(chosen) == fallback
    assert (fallback / tokenize.CACHE_FILE).is_file()


def test_read_only_cache_dir_still_tokenises(tmp_path):
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        chosen, tokens, _ = _probe(cache, tmpdir=tmp_path)
    finally:
        cache.chmod(0o700)
    assert tokens == "充电宝/包邮/吗"
    if os.geteuid() != 0:  # root writes through 0o500, so only then is the dir really read-only
        assert Path(chosen) == tmp_path
        assert not (cache / tokenize.CACHE_FILE).exists()


def test_no_writable_dir_at_all_still_tokenises_quietly(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    chosen, tokens, stderr = _probe(blocker / "cache", str(blocker / "tmp"))
    assert chosen == "None"
    assert tokens == "充电宝/包邮/吗"
    assert "Traceback" not in stderr and "Dump cache file failed" not in stderr


def test_jieba_is_imported_without_pkg_resources_and_still_builds_its_dictionary(tmp_path):
    """pkg_resources cost ~0.1 s and ~10 MB of each start; jieba opens its dict.txt without it."""
    probe = ("import sys\nfrom intents.tokenize import cut\n"
             "print('/'.join(cut('充电宝包邮吗')), 'pkg_resources' in sys.modules)\n"
             "import pkg_resources\nprint(pkg_resources.__name__)\n")
    env = {**os.environ, "KEFU_CACHE_DIR": str(tmp_path / "fresh")}  # no cache: built from dict.txt
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["充电宝/包邮/吗", "False", "pkg_resources"]
    assert (tmp_path / "fresh" / tokenize.CACHE_FILE).is_file()
