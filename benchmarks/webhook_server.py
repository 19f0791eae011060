"""The server rows of `bench_webhook.py`: `kefu serve` under wrk, and in callback mode.

Each row starts the server of one checkout in a subprocess on a free loopback port, warms it,
loads it (wrk with the signed bodies of `webhook_load`, or an open-loop sender for callback
mode), stops it with SIGTERM, and checks every 2xx against the store (`webhook_inprocess`'s
counts). What it measured beside messages/s — CPU per message, threads, Redis figures, group
commit rounds — comes back as note lines.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import resource
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from redis_figures import Watch, worker_figures
from serve_support import (
    Failure,
    Others,
    code_env,
    free_port,
    http,
    kefu,
    start_profiler,
    stop_profiler,
    stop_server,
    tail,
    thread_cpu_seconds,
    tree_cpu_seconds,
    wait_balanced,
    wait_healthy,
    wait_workers,
)
from webhook_inprocess import count_measured
from webhook_load import RUN_PREFIX, SECRET_ENV, SEED, WARMUP, Row, ServerSpec, messages, write_bodies

from connectors.crypto import generic as signing

LUA = Path(__file__).resolve().parent / "wrk_generic.lua"


def parse_wrk(stdout: str) -> dict[str, str]:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("KEFU_WRK ")), None)
    if line is None:
        raise Failure(f"wrk printed no KEFU_WRK line; its output:\n{stdout}")
    return dict(part.split("=", 1) for part in line.split()[1:])


@dataclass
class ServerRun:
    row: Row
    wrk: dict[str, str]
    checks: list[tuple[bool, str]]
    facts: list[str]


def bench_server(args, wrk: str, spec: ServerSpec, name: str, secret: str, bodies_per_thread: int) -> ServerRun:
    config_path, tmp = spec.config_path, spec.folder
    tmp.mkdir(parents=True, exist_ok=True)
    prefix = tmp / "bodies-"
    t0 = time.perf_counter()
    ids = write_bodies(prefix, args.threads, bodies_per_thread, secret, args.conversations)
    facts = [f"{bodies_per_thread * args.threads:,} signed bodies written in {time.perf_counter() - t0:.1f} s "
             f"({bodies_per_thread:,} per wrk thread, each sent at most once)"]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "serve.log"
    env = code_env(spec.code, **{SECRET_ENV: secret})
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            kefu("serve", "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port),
                 *spec.serve_args()),
            cwd=spec.code, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    checks: list[tuple[bool, str]] = []
    try:
        ready = wait_healthy(proc, base, log)
        if spec.workers > 1:  # /healthz answers from one worker: load once every worker serves
            ready += wait_workers(proc, log, spec.workers)
            if spec.store.startswith("redis://"):  # ... and holds its share of the inbox shards
                ready += wait_balanced(spec.store, spec.workers)
        facts.append(f"kefu serve (pid {proc.pid}) answered /healthz after {ready:.1f} s")
        url = f"{base}/webhook/{name}"
        for m in itertools.islice(messages("warm", args.conversations, SEED + 1), WARMUP):
            body = m.body()
            status, answer = http("POST", url, body, {"Content-Type": "application/json",
                                                      signing.HEADER: signing.sign(secret, body)})
            if status != 200:
                raise Failure(f"warm-up request answered {status}: {answer[:300]!r}\n{tail(log)}")

        run_seconds = args.duration + args.grace
        cmd = [wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{run_seconds:g}s",
               "--timeout", f"{run_seconds + 5:g}s", "--latency", "-s", str(LUA), url,
               "--", str(prefix), f"{args.duration:g}", f"/webhook/{name}"]
        profile = args.profile.with_name(f"{args.profile.stem}-{spec.folder.name}{args.profile.suffix}") if args.profile else None
        spy = start_profiler(profile, proc.pid, args.duration) if profile else None
        cpu_before = tree_cpu_seconds(proc.pid)
        threads_before = thread_cpu_seconds(proc.pid) if spec.workers == 1 else {}
        watch = Watch(proc.pid, spec.redis_pid, spec.store) if spec.redis_pid else None
        if watch is not None:
            watch.start()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        others = Others()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=run_seconds + 60, check=False)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        if watch is not None:
            watch.stop()
        server_cpu = tree_cpu_seconds(proc.pid) - cpu_before
        threads = {name: cpu - threads_before.get(name, 0.0)
                   for name, cpu in (thread_cpu_seconds(proc.pid) if spec.workers == 1 else {}).items()}
        wrk_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
        contention = others.cores()  # averaged over wrk -d, drain included
        if spy is not None:
            stop_profiler(spy, profile)
        (tmp / "wrk.out").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0:
            raise Failure(f"wrk exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
        w = parse_wrk(done.stdout)

        status, health = http("GET", base + "/healthz")
        queued = json.loads(health).get("queued") if status == 200 else None
        _, metrics = http("GET", base + "/metrics")
        accepted = sum(float(v) for v in re.findall(rb'^kefu_messages_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))
        rejected = sum(float(v) for v in re.findall(rb'^kefu_rejected_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))
        rounds = group_commit_rounds(metrics)

        # graceful stop
        stop_started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        drain_limit = yaml.safe_load(config_path.read_text(encoding="utf-8"))["server"].get("drain_seconds", 10) + 15
        try:
            rc = proc.wait(timeout=drain_limit)
            stopped = time.perf_counter() - stop_started
            checks.append((rc == 0, f"SIGTERM: kefu serve exited with code {rc} after {stopped:.2f} s "
                                    f"({'clean, drained' if rc == 0 else 'NOT clean'})"))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            checks.append((False, f"SIGTERM: kefu serve still running after {drain_limit:.0f} s; killed"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    sent, answered, ok = int(w["sent"]), int(w["answered"]), int(w["ok"])
    window = float(w["window_s"])
    socket_errors = sum(int(w[k]) for k in ("err_connect", "err_read", "err_write", "err_timeout"))
    non2xx = answered - ok
    persisted, processed, decided, stored_ids = count_measured(spec.store, name, args.conversations)
    row = Row(spec.label, ok, window,
              p50_ms=float(w["p50_us"]) / 1000, p99_ms=float(w["p99_us"]) / 1000,
              errors=non2xx + socket_errors + int(w["in_flight"]), persisted=persisted,
              note=spec.note, others=contention)

    statuses = w["statuses"]
    checks.append((non2xx == 0, f"responses: {answered:,} of {sent:,} sent; 2xx {ok:,}, non-2xx {non2xx:,}"
                                + (f" (status:count {statuses})" if statuses != "-" else "")))
    checks.append((socket_errors == 0, "socket errors: connect {err_connect}, read {err_read}, write {err_write}, "
                                       "timeout {err_timeout}".format(**w)))
    checks.append((w["in_flight"] == "0", f"in flight when wrk stopped: {w['in_flight']} "
                                          f"(the Lua drain lets every sent message finish)"))
    checks.append((w["exhausted"] == "0", "bodies sufficed: " + ("yes" if w["exhausted"] == "0" else
                   "NO, a thread ran out before the deadline; raise the body count")))
    sent_by_thread = dict(part.split(":") for part in w["sent_by_thread"].split(","))
    sent_ids = {mid for t, n in sent_by_thread.items() for mid in ids[int(t)][: int(n)]}
    stray = stored_ids - sent_ids
    checks.append((persisted == ok and not stray,
                   f"durability: {persisted:,} measured messages in the store, {ok:,} answered 2xx"
                   + ("" if not stray else f"; {len(stray)} stored ids were never sent")))
    checks.append((processed == persisted and decided == persisted,
                   f"processed: {processed:,} marked processed, {decided:,} with a stored decision"))
    if spec.workers == 1:  # with several workers /metrics is one worker's: the store's counts above hold
        checks.append((accepted == WARMUP + persisted and rejected == 0,
                       f"/metrics: kefu_messages_total {accepted:.0f} (= {WARMUP} warm-up + {persisted:,}), "
                       f"kefu_rejected_total {rejected:.0f}; /healthz queued {queued}"))
    log_text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    bad = [ln for ln in log_text if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", ln)]
    checks.append((not bad, f"server log: {len(log_text):,} lines, {len(bad)} error lines"
                            + ("".join(f"\n      {ln[:200]}" for ln in bad[:5]))))
    facts.append(f"wrk: {sent:,} messages sent in {window:.2f} s (first request to last response; wrk -d "
                 f"{run_seconds:g}s leaves {args.grace:g} s to drain), {w['parked']} parked drain requests")
    facts.append(f"CPU during the wrk run: kefu serve {server_cpu:.1f} s, wrk {wrk_cpu:.1f} s; over the "
                 f"{window:.2f} s message window that is {server_cpu / window:.2f} and {wrk_cpu / window:.2f} "
                 f"cores (both idle while draining)")
    facts.append(f"server latency: p90 {float(w['p90_us']) / 1000:.1f} ms, p99.9 {float(w['p999_us']) / 1000:.1f} ms, "
                 f"max {float(w['max_us']) / 1000:.1f} ms; Little's law c/throughput = "
                 f"{args.connections / row.rate * 1000 if row.rate else math.nan:.1f} ms")
    if watch is not None:
        facts += watch.figures(ok, wrk_cpu)
        facts += worker_figures("\n".join(log_text))
    busy = sorted(((cpu, name) for name, cpu in threads.items() if cpu >= 0.05), reverse=True)
    if busy:
        facts.append("CPU by thread during the run, ms per 2xx message: " + ", ".join(
            f"{name} {cpu * 1000 / max(ok, 1):.2f}" for cpu, name in busy)
            + " (other threads: the store's writer, which runs the turns, and the outbox)")
    if rounds is not None:  # a baseline before group commit has no such metric
        facts.append(f"group commit: {rounds[1]:,.0f} store jobs in {rounds[0]:,.0f} rounds (one transaction and "
                     f"fsync each), {rounds[1] / max(rounds[0], 1):.1f} per round, since start (warm-up included)")
    checks = [(ok_, f"{spec.label}: {text}") for ok_, text in checks]
    facts = [f"{spec.label}: {text}" for text in facts]
    return ServerRun(row, w, checks, facts)


def group_commit_rounds(metrics: bytes) -> tuple[float, float] | None:
    """(rounds, jobs) of the store writer's group commit, from /metrics' kefu_store_round_jobs."""
    count = re.search(rb'^kefu_store_round_jobs_count ([0-9.e+]+)$', metrics, re.M)
    total = re.search(rb'^kefu_store_round_jobs_sum ([0-9.e+]+)$', metrics, re.M)
    return (float(count.group(1)), float(total.group(1))) if count and total else None


def bench_callback(args, spec: ServerSpec, name: str, secret: str, rate: float, port: int) -> ServerRun:
    """Callback mode: webhook POST → the decision POSTed to the receiver, at a fixed rate (open loop)."""
    import asyncio

    import webhook_callback as cb

    spec.folder.mkdir(parents=True, exist_ok=True)
    log = spec.folder / "serve.log"
    checks: list[tuple[bool, str]] = []
    count = max(1, int(rate * args.duration))

    def signed(prefix: str, seed: int):
        for m in messages(prefix, args.conversations, seed):
            body = m.body()
            yield m.message_id, body, {"Content-Type": "application/json", signing.HEADER: signing.sign(secret, body)}

    async def run() -> tuple[cb.Paced, cb.Receiver, float]:
        receiver = cb.Receiver()
        await receiver.start(port)
        server_port = free_port()
        base = f"http://127.0.0.1:{server_port}"
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                kefu("serve", "--config", str(spec.config_path), "--host", "127.0.0.1", "--port", str(server_port),
                     *spec.serve_args()),
                cwd=spec.code, env=code_env(spec.code, **{SECRET_ENV: secret}), stdout=log_file,
                stderr=subprocess.STDOUT)
        try:
            ready = await asyncio.to_thread(wait_healthy, proc, base, log)
            url = f"{base}/webhook/{name}"
            warm = await cb.send_paced(url, signed("warm", SEED + 1), 20, WARMUP)
            await cb.wait_arrivals(receiver, warm.accepted, 30)
            if len(warm.accepted) != WARMUP:
                raise Failure(f"callback warm-up: {dict(warm.statuses)}\n{tail(log)}")
            others = Others()
            paced = await cb.send_paced(url, signed(RUN_PREFIX, SEED), rate, count)
            await cb.wait_arrivals(receiver, paced.accepted, 30 + args.grace)
            paced.others = others.cores()
        finally:
            clean, how = await asyncio.to_thread(stop_server, proc)
            checks.append((clean, how))
            await receiver.stop()
        return paced, receiver, ready

    paced, receiver, ready = asyncio.run(run())
    lat = cb.latencies_ms(paced, receiver)
    measured = [mid for mid in paced.accepted if mid.startswith(f"{RUN_PREFIX}-")]
    persisted, processed, decided, _ = count_measured(spec.store, name, args.conversations)
    missing = [mid for mid in measured if mid not in receiver.arrived]
    row = Row(spec.label, len(measured), paced.seconds, lat, errors=len(missing) + paced.errors,
              persisted=persisted, note=spec.note, others=paced.others)
    checks += [
        (paced.errors == 0 and set(paced.statuses) <= {200, 503},
         f"webhook answers: {dict(sorted(paced.statuses.items()))}, {paced.errors} socket errors "
         f"(503 = refused by backpressure, retried by a real platform)"),
        (not missing, f"callbacks: {len(measured) - len(missing):,} of {len(measured):,} accepted messages "
                      f"had their decision POSTed back; {receiver.repeats} repeats; kinds "
                      f"{dict(Counter(receiver.kind[m] for m in measured if m in receiver.kind))}"),
        (persisted == len(measured) and processed == persisted and decided == persisted,
         f"store: {persisted:,} persisted, {processed:,} processed, {decided:,} with a decision"),
    ]
    facts = [f"server answered /healthz after {ready:.1f} s; {count:,} messages sent at {rate:.0f}/s "
             f"(open loop) in {paced.seconds:.2f} s; latency = decision POST received − webhook POST started"]
    return ServerRun(row, {}, [(ok, f"{spec.label}: {text}") for ok, text in checks],
                     [f"{spec.label}: {text}" for text in facts])
