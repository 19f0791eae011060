"""Messages/s through `kefu serve`'s generic webhook, durable, with ratios against baselines of the same run.

    python benchmarks/bench_webhook.py [--duration 10] [--connections 16] [--threads 2]
        [--baseline /tmp/kefu-baseline] [--store redis --workers 2] [--callback-rate N] [--rounds 3]
        [--only redis | --only callback --callback-rate N]

Needs wrk (Debian/Ubuntu: ``apt-get install -y wrk``); without it the script says so and exits 2.
``--store redis`` needs redis-server. Everything stays on 127.0.0.1. One run measures, in order:

1. **in-process Engine.suggest** — a loop calling ``Engine.suggest(text)`` (no HTTP, no store);
   with ``--store redis --workers N>1`` also **×2 processes**: the same loop forked twice and run
   at once, the box's own 2-process ceiling for a worker's CPU work (benchmarks/cpu_ceiling.py);
2. **in-process Assistant** — ``Assistant.handle_message``: engine + conversation state + the
   SQLite store, still no HTTP (the yardstick of "server ÷ Assistant");
3. **kefu serve @ baseline** (with ``--baseline DIR``) — the server of another checkout, e.g.
   today's code beside this one (``git worktree add /tmp/kefu-baseline edbb11e``), run with
   cwd and PYTHONPATH pointing there, its own config copy and model, under the same load;
4. **kefu serve @ this checkout** — ``python -m bot.cli serve`` (i.e. ``kefu serve``) in a
   subprocess on a free loopback port, loaded by wrk with ``--connections`` connections on
   ``--threads`` threads for ``--duration`` seconds. Every request is a new message (unique
   ``message_id``) with a correct HMAC-SHA256 signature: the bodies are signed here beforehand
   and benchmarks/wrk_generic.lua sends each one once. Texts cycle through realistic customer
   lines over ``--conversations`` conversations;
5. **kefu serve --workers 1 and --workers N on Redis** (``--store redis``) — the same load on a
   throw-away redis-server (AOF, ``appendfsync always``: durable like SQLite's FULL);
6. **callback mode** — ``mode: callback`` with ``callback_url`` pointing at a receiver in this
   process; messages are sent open loop at ``--callback-rate`` (default half the sync server's
   rate, so the figure is latency, not a growing queue) and the latency is from the webhook
   POST to its decision's POST arriving (``benchmarks/webhook_callback.py``). Every decision is
   POSTed, suggest-only ones too.

The parts live beside this runner: `webhook_load` (the texts, the message stream, the signed
bodies, the config copy), `webhook_inprocess` (rows 1–2 and the store counts), `webhook_server`
(rows 3–6: a server under wrk or in callback mode, and its checks), `redis_figures`,
`serve_support`, `cpu_ceiling`, `webhook_callback`.

Server setup: a temporary copy of the config with the intent model and the store in a temp
folder (each checkout's model trained once, before any timing, with its own ``kefu train``),
and only the first generic connector kept, in ``mode: sync`` (so a 2xx means the message was
persisted *and* answered) with a throw-away secret in ``KEFU_GENERIC_SECRET``.

``--rounds N`` (default 1): rows 2 and 4 — the in-process Assistant and this checkout's server,
the pair behind "server ÷ Assistant" — are measured N times, alternating (Assistant, server,
Assistant, server, …), each round on fresh store files; every round's ratio is printed and
their median. This VM's speed drifts by ±15 % within minutes, so one pair measured a minute
apart can be off by that much either way; alternating rounds share the drift. Every round is
shown, never only the best; the other rows are measured once.

Checks, each reported (exit 1 if any fails): no non-2xx and no socket error; durability — after
each run the store holds exactly one processed inbound message, with its decision, per 2xx
(counted in the store: SQL for SQLite files, this checkout's Store interface for Redis); in
callback mode every accepted message's decision reached the receiver; the server exits 0 on
SIGTERM (graceful drain) and logged no error.

Latency: in-process rows time one call at a time; wrk rows are wrk's request latency with
``--connections`` requests outstanding, so they include the wait in the server's queue (about
connections ÷ throughput for a closed loop). Ratios compare messages/s within this run; the
"others cores" column says how busy the machine was with other work meanwhile.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_support import Failure, free_port, machine_facts, require_wrk, revision, start_redis, train  # noqa: E402
from webhook_inprocess import bench_assistant, bench_engine, bench_engine_pair  # noqa: E402
from webhook_load import SECRET_ENV, TEXTS, Row, ServerSpec, write_config  # noqa: E402
from webhook_server import ServerRun, bench_callback, bench_server  # noqa: E402

from bot.app import build  # noqa: E402
from bot.config import load_config  # noqa: E402

# --- report -----------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    header = (f"{'method':<44}{'messages/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'persisted':>11}"
              f"{'others cores':>14}")
    print(header)
    print("-" * len(header))
    for r in rows:
        p50, p99 = r.percentiles()
        persisted = "-" if r.persisted is None else f"{r.persisted:,}"
        lat = "".join(f"{'-':>9}" if math.isnan(v) else f"{v:>9.2f}" for v in (p50, p99))
        print(f"{r.method:<44}{r.rate:>11,.1f}{lat}{r.errors:>8}{persisted:>11}{r.others:>14.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured method [10]")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections [16]")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    parser.add_argument("--conversations", type=int, default=200, help="distinct conversation ids [200]")
    parser.add_argument("--grace", type=float, default=5,
                        help="extra wrk seconds for messages in flight at the deadline to finish [5]")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of the code to compare with (git worktree add /tmp/kefu-baseline edbb11e): "
                             "its kefu serve runs under the same load, with PYTHONPATH pointing there")
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite",
                        help="redis: also run kefu serve on a throw-away redis-server, --workers 1 and N [sqlite]")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the Redis rows [2]")
    parser.add_argument("--only", choices=("redis", "callback"), default=None,
                        help="redis: only the Redis rows (no in-process, SQLite or callback rows): the "
                             "--workers ratio and its per-message figures in ~1 minute; callback: only the "
                             "callback-mode row, at --callback-rate")
    parser.add_argument("--redis-code", type=Path, default=None,
                        help="another checkout whose kefu serve runs the Redis rows (per-message figures "
                             "before and after a change, each in its own run) [this checkout]")
    parser.add_argument("--callback-rate", type=float, default=None,
                        help="messages/s of the callback-mode row [half the sync server's rate]")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the in-process Assistant and this checkout's server N times, alternating, "
                             "and print each round's server ÷ Assistant and the median [1]")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (store, logs, bodies)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the server with py-spy during the run (raw stacks to this file); "
                             "sampling costs a little throughput, so profile and measure in separate runs")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 600:
        parser.error("--duration must be in (0, 600]")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be in [1, 20]")
    if args.threads < 1 or args.connections < args.threads or args.connections % args.threads:
        parser.error("need --threads >= 1 and --connections a multiple of --threads "
                     "(wrk gives each thread connections ÷ threads, rounded down)")
    if args.only == "callback" and not args.callback_rate:
        parser.error("--only callback needs --callback-rate (there is no sync row to take half of)")
    wrk = require_wrk()

    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-webhook-"))
    secret = secrets.token_hex(24)
    os.environ[SECRET_ENV] = secret
    rows: list[Row] = []
    runs: list[ServerRun] = []
    redis: subprocess.Popen | None = None
    try:
        print(machine_facts(wrk))
        model = tmp / "intent-model.joblib"
        config_path, name, changed = write_config(args.config, tmp / "current", model=model)
        print(f"config: {args.config} copied to {config_path}" + (f" ({changed})" if changed else ""))
        train(REPO, config_path)
        config = load_config(config_path)
        engine = build(config, retrain=False).engine
        print(f"load: {args.connections} connections, {args.threads} wrk threads, {args.duration:g} s per method, "
              f"{len(TEXTS)} customer texts over {args.conversations} conversations, every message new\n")

        if args.baseline and args.only is None:  # trained here, before any timing: nothing runs between a round's two rows
            base_config, _, _ = write_config(args.baseline / "config.yaml", tmp / "baseline")
            train(args.baseline, base_config)

        label = f"kefu serve, SQLite (wrk -c{args.connections})"
        specs = []
        if args.only == "callback":
            args.store, per_thread = "sqlite", 0
        elif args.only == "redis":
            args.store = "redis"
            per_thread = max(10_000, math.ceil(2 * 1500 * args.duration))  # (no engine row to size them by)
        else:
            rows.append(bench_engine(engine, args.duration, args.conversations))
            if args.store == "redis" and args.workers > 1:
                rows.append(bench_engine_pair(engine, args.duration, args.conversations))
            # each thread alone could go on at the in-process engine's pace for the whole run, twice over
            per_thread = max(10_000, math.ceil(2 * rows[0].rate * args.duration))
            for n in range(1, args.rounds):  # the extra rounds first: the last pair stays next to the other rows
                assistant = bench_assistant(engine, tmp / f"inprocess-{n}.sqlite", name, args.duration,
                                            args.conversations)
                assistant.method += f" (round {n})"
                rows.append(assistant)
                folder = tmp / f"round-{n}"
                round_config, _, _ = write_config(args.config, folder, model=model)
                run = bench_server(args, wrk, ServerSpec(f"{label} @ this checkout (round {n})", REPO, round_config,
                                                         str(folder / "kefu.sqlite"), folder), name, secret, per_thread)
                runs.append(run)
                rows.append(run.row)
            rows.append(bench_assistant(engine, tmp / "inprocess.sqlite", name, args.duration, args.conversations))
            if args.rounds > 1:
                rows[-1].method += f" (round {args.rounds})"
        if args.baseline and args.only is None:
            specs.append(ServerSpec(f"{label} @ baseline {revision(args.baseline)}", args.baseline, base_config,
                                    str(tmp / "baseline" / "kefu.sqlite"), tmp / "baseline",
                                    note="the baseline checkout's kefu serve, same load"))
        if args.only is None:
            last = f" (round {args.rounds})" if args.rounds > 1 else ""
            this = ServerSpec(f"{label} @ this checkout{last}", REPO, config_path,
                              str(tmp / "current" / "kefu.sqlite"), tmp / "current")
            # in rounds, the last round's server comes right after its Assistant (the baseline after it)
            specs.insert(0 if args.rounds > 1 else len(specs), this)
        if args.store == "redis":
            redis, redis_port = start_redis(tmp / "redis")
            code = (args.redis_code or REPO).resolve()
            where = "" if code == REPO else f" @ {revision(code)}"
            for n in sorted({1, args.workers}):
                url = f"redis://127.0.0.1:{redis_port}/{n}"
                path, _, _ = write_config(args.config, tmp / f"redis-{n}", store=url, model=model)
                specs.append(ServerSpec(f"kefu serve --workers {n}, Redis{where} (wrk -c{args.connections})", code,
                                        path, url, tmp / f"redis-{n}", workers=n,
                                        note=f"{n} worker process(es) on one Redis (appendfsync always)",
                                        redis_pid=redis.pid))
        for spec in specs:
            run = bench_server(args, wrk, spec, name, secret, per_thread)
            runs.append(run)
            rows.append(run.row)
        if args.only == "redis":
            raise _Done
        if args.callback_rate:
            rate = args.callback_rate
        else:
            current = next(r for r in reversed(runs) if "@ this checkout" in r.row.method).row
            rate = max(5.0, current.rate / 2)
        port = free_port()
        cb_store = str(tmp / "callback" / "kefu.sqlite")
        cb_config, _, _ = write_config(args.config, tmp / "callback", model=model, mode="callback",
                                       callback_url=f"http://127.0.0.1:{port}/callback")
        runs.append(bench_callback(args, ServerSpec(
            f"kefu serve, SQLite, callback mode at {rate:.0f}/s", REPO, cb_config, cb_store, tmp / "callback",
            note="latency: webhook POST → its decision POSTed back (open loop, "
                 + ("--callback-rate)" if args.callback_rate else "half the sync rate)")),
            name, secret, rate, port))
        rows.append(runs[-1].row)
    except _Done:
        pass
    except Failure as exc:
        if rows:
            print_table(rows)
        print(f"\nerror: {exc.message}", file=sys.stderr)
        print(f"(temp folder kept: {tmp})", file=sys.stderr)
        return 1
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)

    print_table(rows)
    print("\nratios (messages/s, this run):")
    for text in ratios(rows):
        print(f"  {text}")
    checks = [c for run in runs for c in run.checks]
    print("\nchecks:")
    for ok, text in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    print("\nnotes:")
    for r in rows:
        print(f"  {r.method}: {r.note}")
    for run in runs:
        for text in run.facts:
            print(f"  {text}")
    print("  in-process rows time one call at a time; the wrk rows' latency includes queueing behind "
          f"{args.connections - 1} other connections; the callback row's is one message's, end to end")
    print(f"  others cores: CPU used by processes outside this benchmark while each row ran (of {os.cpu_count()}); "
          "well above 0 means a shared machine and figures to distrust")
    if args.profile:
        print(f"  py-spy profiles of the servers: {args.profile.stem}-<row folder>{args.profile.suffix} beside {args.profile} (figures of a profiled run are not the benchmark's)")
    failed = [text for ok, text in checks if not ok]
    if args.keep or failed:
        print(f"\ntemp folder kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


class _Done(Exception):
    """The rows asked for (``--only``) are measured."""


def ratios(rows: list[Row]) -> list[str]:
    """The ratios the issue asks for, from the rows of this run."""
    by = {r.method: r for r in rows}
    find = lambda text: next((r for m, r in by.items() if text in m), None)  # noqa: E731
    engine, assistant = find("in-process Engine.suggest"), find("in-process Assistant")
    pair = find("Engine.suggest ×2")
    current, baseline = find("@ this checkout"), find("@ baseline")
    rounds = [(a, s) for k in range(1, 21)
              if (a := find(f"in-process Assistant (round {k})")) and (s := find(f"@ this checkout (round {k})"))]
    if rounds:
        current = rounds[-1][1]  # the one measured beside the baseline and the callback row
    out = []
    if current and baseline:
        out.append(f"durable single worker: this checkout ÷ baseline = {current.rate / baseline.rate:.2f} (target ≥ 2.5)")
    if rounds:
        each = [s.rate / a.rate for a, s in rounds]
        out.append(f"server ÷ in-process Assistant by round: {', '.join(f'{r:.2f}' for r in each)}; "
                   f"median {float(np.median(each)):.2f} (target ≥ 0.9)")
    elif current and assistant:
        out.append(f"server ÷ in-process Assistant = {current.rate / assistant.rate:.2f} (target ≥ 0.9)")
    if assistant and engine:
        out.append(f"in-process Assistant ÷ Engine.suggest = {assistant.rate / engine.rate:.2f}")
    redis = sorted((r for r in rows if ", Redis" in r.method), key=lambda r: r.method)
    if len(redis) == 2:
        one, many = redis
        out.append(f"Redis: {many.method.split(',')[0].removeprefix('kefu serve ')} ÷ --workers 1 = "
                   f"{many.rate / one.rate:.2f} (target ≥ 1.7 for 2)")
        if pair and engine:
            ceiling = pair.rate / engine.rate
            out.append(f"box ceiling: Engine.suggest in 2 processes ÷ 1 = {ceiling:.2f}; the Redis ratio is "
                       f"{many.rate / one.rate / ceiling:.2f} of it (Redis, wrk and the kernel share the same cores)")
    return out


if __name__ == "__main__":
    sys.exit(main())
