"""`kefu report` over a store of 100k messages: how long, against baselines in the same run.

    python benchmarks/bench_report.py [--messages 100000] [--keep]

Builds its own SQLite store (a shop day in Asia/Shanghai: half the messages from customers,
half replies; each customer message with a decision shaped like the Assistant's — 31-intent
ranking, three suggestions, replies, reasons; ~15% not understood, worded from a few hundred
questions; orders created, paid and chased; handoff tickets), then times:

* ``kefu report --format json`` end to end (a new process: imports, phrasebook, report) and
  ``--format html``, against the target of 10 s;
* `build_report` in process, and each of its reads;
* baselines: the full decision payloads read through the existing ``Store.decisions()`` (what
  a report would do without the period reads), and a bare ``COUNT(*)`` of the period.

Nothing here is a test: it prints a table. Synthetic data only.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.config import load_config  # noqa: E402
from bot.reports import build_report  # noqa: E402
from bot.reports.period import Period  # noqa: E402
from bot.store import SqliteStore  # noqa: E402
from intents.labels import DEFAULT_INTENTS  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 23)
KNOWN = {
    "free_shipping": ["包邮吗", "运费多少", "能包邮吗亲"], "price_bargain": ["能便宜点吗", "少点呗", "抹个零吧"],
    "stock": ["有货吗", "还有吗", "什么时候补货"], "shipping_time": ["什么时候发货", "几天能到", "今天能发吗"],
    "greeting": ["在吗", "你好", "有人吗"], "track_parcel": ["到哪了", "单号多少", "发货了吗"],
    "spec_size": ["穿多大码", "尺寸多少", "怎么选"], "invoice": ["能开发票吗", "开专票吗"],
}
UNKNOWN_HEADS = ["可以刻字吗", "有实体店吗", "能定制颜色吗", "支持以旧换新吗", "可以送到公司吗", "能帮忙包装成礼物吗",
                 "有没有儿童款", "可以分期吗", "保修几年", "有说明书吗", "能不能放驿站", "可以开箱验货吗"]
TAILS = ["", "呀", "呢", "？", "亲", "啊", "吗", "我想问下", "请问"]


def payload(intent: str, score: float, text: str, replies: list[dict]) -> dict:
    ranking = [[intent, score]] + [[i, (1 - score) / 30] for i in DEFAULT_INTENTS if i != intent][:30]
    suggestions = [{"id": f"{intent}.{k}", "text": f"亲，关于{text}的回复{k}，感谢您的耐心等待～", "score": 0.8 - k / 10,
                    "intent": intent, "auto_send": True, "why": "similar to …"} for k in range(3)]
    return {"kind": "auto_send", "text": text, "intent": intent, "intent_score": score, "intents": ranking,
            "slots": {}, "suggestions": suggestions, "replies": replies, "handoff": None,
            "reasons": ["confident intent and a matching reply"]}


def build(path: Path, messages: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    store = SqliteStore(path)
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=TZ)
    customers = max(1, messages // 12)
    counts = {"messages": 0, "orders": 0, "tickets": 0}
    with store.transaction():
        for c in range(customers):
            cid = f"buyer{c:06d}"
            at = start + timedelta(seconds=rng.randrange(0, 86_000))
            for turn in range(6):
                if counts["messages"] >= messages:
                    break
                if rng.random() < 0.15:
                    intent, score = "other", rng.uniform(0.1, 0.45)
                    text = rng.choice(TAILS[-2:]) + rng.choice(UNKNOWN_HEADS) + rng.choice(TAILS)
                else:
                    intent = rng.choice(list(KNOWN))
                    score, text = rng.uniform(0.6, 1.0), rng.choice(KNOWN[intent])
                if rng.random() < 0.02:
                    text += f"，电话1{rng.randrange(3, 10)}{rng.randrange(10**8, 10**9)}"
                row, _ = store.add_message(cid, "in", text, at, platform="taobao", message_id=f"{cid}-{turn}",
                                           customer_id=cid)
                store.mark_processed(row)
                reply_at = at + timedelta(seconds=rng.choice([0, 0, 0, 5, 40, 90, 300]))
                reply = f"亲，关于{text}：我们马上为您处理～"
                bot = reply_at == at
                store.add_message(cid, "out", reply, reply_at)
                replies = [{"id": f"{intent}.a", "text": reply}] if bot else []
                store.add_decision(cid, at, "message", "auto_send" if bot else "suggest",
                                   payload(intent, score, text, replies), message_row=row)
                counts["messages"] += 2
                at = reply_at + timedelta(seconds=rng.randrange(10, 600))
            if rng.random() < 0.25:
                order = f"o{c:06d}"
                store.add_order_event(order, cid, "created", at, {"amount": rng.randrange(20, 500)})
                store.schedule(f"payment_chase:{order}", "payment_chase", at + timedelta(minutes=30), cid,
                               {"order_id": order})
                counts["orders"] += 1
                if rng.random() < 0.6:
                    store.add_order_event(order, cid, "paid", at + timedelta(minutes=rng.randrange(1, 90)), {})
            if rng.random() < 0.05:
                store.add_ticket(cid, cid, reason=rng.choice(["human_request", "angry", "quality_complaint"]),
                                 priority="normal", group=rng.choice(["presale", "aftersale"]), created_at=at,
                                 sla_due=at + timedelta(minutes=3), summary={"intents": []})
                counts["tickets"] += 1
    store.close()
    return counts


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the machine may be shared)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn):
    """(wall seconds, result); the CPU seconds of the last call are in ``timed.cpu``."""
    t0, c0 = time.perf_counter(), _cpu()
    result = fn()
    timed.cpu = _cpu() - c0
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (store, config, outputs)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-report-"))
    db = tmp / "kefu.sqlite"
    build_s, counts = timed(lambda: build(db, args.messages))
    size_mb = db.stat().st_size / 1e6
    print(f"store: {counts['messages']:,} messages, {counts['orders']:,} orders, {counts['tickets']:,} tickets, "
          f"{size_mb:.1f} MB, built in {build_s:.1f} s  ({db})")

    config = load_config(REPO / "config.yaml")
    period = Period(DAY, DAY, TZ)
    now = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), tzinfo=TZ) + timedelta(hours=9)
    rows: list[tuple[str, float, float]] = []

    def add(name: str, fn) -> object:
        seconds, result = timed(fn)
        rows.append((name, seconds, timed.cpu))
        return result

    def cli(fmt: str) -> None:
        out = tmp / f"report.{fmt}"
        cmd = [sys.executable, "-m", "bot.cli", "report", "--config", str(REPO / "config.yaml"), "--store", str(db),
               "--since", DAY.isoformat(), "--format", fmt, "--out", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        if proc.returncode != 0:
            raise SystemExit(f"kefu report failed:\n{proc.stderr}")

    add("kefu report --format json (new process)", lambda: cli("json"))
    add("kefu report --format html (new process)", lambda: cli("html"))
    add("python -c 'import bot.cli' (start-up only)", lambda: subprocess.run(
        [sys.executable, "-c", "import bot.cli"], env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True))
    store = SqliteStore(db)
    from bot.engine import load_shop_phrasebook
    from phrasebook.matcher import Matcher

    matcher = Matcher(load_shop_phrasebook(config))
    report = add("build_report in process", lambda: build_report(store, config, period, now, matcher=matcher))
    horizon = period.end + timedelta(hours=12)
    add("  read: iter_messages_between", lambda: sum(1 for _ in store.iter_messages_between(period.start, horizon)))
    add("  read: decision_facts_between", lambda: store.decision_facts_between(period.start, horizon))
    add("baseline: Store.decisions() (full payloads)", lambda: store.decisions())
    add("baseline: COUNT(*) of the period", lambda: store.count_messages_between(period.start, period.end))
    store.close()

    base = next(cpu for name, _, cpu in rows if name.startswith("baseline: Store.decisions"))
    print(f"\n{'what':<48}{'wall s':>9}{'CPU s':>9}{'CPU ÷ decisions()':>19}")
    print("-" * 85)
    for name, wall, cpu in rows:
        print(f"{name:<48}{wall:>9.2f}{cpu:>9.2f}{cpu / base:>19.2f}")
    cli_s = rows[0][1]
    print(f"\nreport: asked {report['conversion']['asked']:,}, waits {report['response_times']['waits']:,}, "
          f"unanswered groups {report['unanswered']['groups']}, inquiry log {report['inquiries']['count']:,} rows")
    cli_cpu = rows[0][2]
    print(f"target: kefu report on {counts['messages']:,} messages under 10 s — wall {cli_s:.2f} s "
          f"({'met' if cli_s < 10 else 'NOT met'}), CPU {cli_cpu:.2f} s ({'met' if cli_cpu < 10 else 'NOT met'}); "
          f"the wall time includes waiting for a shared machine's cores")
    written = (tmp / "report.json").read_text(encoding="utf-8")
    json.loads(written)
    phones = re.findall(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", written)
    print(f"check: full phone numbers in the JSON report: {len(phones)} (must be 0)")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
