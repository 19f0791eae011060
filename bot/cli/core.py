"""The `kefu` command line.

Output contracts (other tools and tests depend on them): ``suggest --json`` prints one JSON
object; ``eval --json`` prints one JSON object; ``lint`` prints one ``file:line: reason`` per
problem and exits 1 when there is any. Every command takes ``--config PATH``
(default ./config.yaml).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
import time
from pathlib import Path

import click

from bot.app import App, build, store_target
from bot.cli.progress import retraining, training
from bot.config import Config, load_config
from bot.engine import Engine, load_shop_training_set, model_path
from bot.errors import ConfigError, RefusedError, UserError
from bot.evaluate import evaluate, format_report, read_examples, run_examples, write_decisions
from bot.i18n import LANGUAGES, N_, _, localise, set_language
from bot.suites.loader import SuiteError
from intents.dataset import TrainingDataError
from intents.modelfile import train
from phrasebook.loader import PhrasebookError

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Shop settings file [default: ./config.yaml].",
)


def app_for(config: Config, **parts) -> App:
    """kefu composed for a command (`bot.app.build`), retraining visibly, saying why, when the model is stale."""
    return build(config, on_retrain=retraining, **parts)


def engine_for(config: Config) -> Engine:
    """The engine of `app_for` (commands that only classify and rank)."""
    return app_for(config).engine


def _fail(message: str, code: int = 1) -> None:
    click.echo(_("error: {message}").format(message=localise(message)), err=True)
    sys.exit(code)


#: Errors a user can cause and fix (a file, a setting, a store — `bot.errors.UserError`) or a
#: refused request (a desk action, `RefusedError`): one line, exit 1, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, RefusedError)

#: The closing sentence after a list of problems, by the kind of file they are in.
PROBLEM_SUMMARIES: tuple[tuple[type[BaseException], str], ...] = (
    (PhrasebookError, N_("{n} problem(s) in the phrasebook (listed above); `kefu lint` checks everything")),
    (TrainingDataError, N_("{n} problem(s) in the training data (listed above); `kefu lint` checks everything")),
    (SuiteError, N_("{n} problem(s) in the test suites (listed above)")),
    (ConfigError, N_("{n} problem(s) in the config (listed above); `kefu lint` checks everything")),
    (Exception, N_("{n} problem(s) (listed above)")),
)


def debugging() -> bool:
    """`kefu --debug …`: show the traceback instead of the one-line error."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


def with_config(command):
    """Load the config first; turn every foreseeable user error into one line and exit 1."""

    @config_option
    @functools.wraps(command)
    def wrapper(config_path: Path | None, **kwargs):
        try:
            config = load_config(config_path)
            return command(config, **kwargs)
        except Exception as exc:
            if debugging():
                raise
            explain(exc)

    return wrapper


def explain(exc: BaseException) -> None:
    """Print a foreseeable error as one line (problem lists first) and exit; re-raise a bug.

    Foreseeable: the `bot.errors` user family and refused requests, a file the system cannot
    open (an OSError naming it) and a store SQLite cannot write. Anything else is a bug and
    keeps its traceback.
    """
    if isinstance(exc, USER_ERRORS):
        code = getattr(exc, "exit_code", 1)
        problems = list(getattr(exc, "problems", ()) or ())
        if problems:
            for problem in problems:
                click.echo(localise(problem), err=True)
            template = next(t for kind, t in PROBLEM_SUMMARIES if isinstance(exc, kind))
            _fail(_(template).format(n=len(problems)), code)
        _fail(one_line(exc), code)
    if isinstance(exc, OSError) and exc.filename:
        _fail(f"{exc.filename}: {exc.strerror or exc}")
    if isinstance(exc, sqlite3.OperationalError):  # a full disk, a locked or read-only file
        _fail(_("the store cannot be used ({reason}); free disk space or fix the store file's permissions,"
                " and make sure no other program holds it").format(reason=exc))
    raise exc


def one_line(exc: BaseException) -> str:
    """The error's message on one line (a message spanning lines is joined with "; ")."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


class KefuGroup(click.Group):
    """The `kefu` group: any foreseeable error of any command is one line and exit 1 (`explain`),
    whether or not the command loads a config; ``--debug`` keeps the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if debugging():
                raise
            explain(exc)


@click.group(cls=KefuGroup)
@click.version_option(package_name="kefu")
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
@click.option("--lang", type=click.Choice(LANGUAGES), default=None,
              help="Language of messages [default: from KEFU_LANG or the locale; zh_* → zh].")
def main(debug: bool, lang: str | None) -> None:
    """kefu — chat-assist bot for Chinese e-commerce customer service."""
    set_language(lang)


@main.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def suggest(config: Config, text: str, as_json: bool) -> None:
    """Rank replies for one customer message TEXT."""
    from bot.pipeline.offline import fresh_decision

    decision = fresh_decision(engine_for(config), text)  # the server's pipeline, a fresh conversation
    if as_json:
        click.echo(json.dumps(suggest_payload(decision), ensure_ascii=False))
        return
    click.echo(_describe(decision))


def suggest_payload(decision) -> dict:
    """The ``suggest --json`` contract."""
    return {
        "intent": decision.intent,
        "intent_score": decision.intent_score,
        "intents": [[name, p] for name, p in decision.intents],
        "slots": decision.slots,
        "suggestions": [
            {"id": s.id, "text": s.text, "score": s.score, "intent": s.intent}
            for s in decision.suggestions
        ],
        "decision": decision.kind,
    }


def _describe(decision) -> str:
    top = ", ".join(f"{name} {p:.2f}" for name, p in decision.intents[:3])
    best = decision.intents[0][0] if decision.intents else decision.intent
    if best != decision.intent:
        # the top guess fell below the confidence bar: never show its score as the fallback's
        head = _("intent    {intent} (unsure: best guess {best} {score:.2f} is too low)").format(
            intent=decision.intent, best=best, score=decision.intent_score)
    else:
        head = _("intent    {intent} ({score:.2f})").format(intent=decision.intent, score=decision.intent_score)
    lines = [_("{head}   top: {top}").format(head=head, top=top)]
    if len(decision.clauses) > 1 or any(c.role != "main" for c in decision.clauses):
        lines.append(_("clauses   ") + " | ".join(_clause(c) for c in decision.clauses))
    for change in decision.trace.get("repaired", ()):
        lines.append(_("repaired  {old} → {new}").format(old=change["from"], new=change["to"]))
    for change in decision.trace.get("read_again", ()):
        lines.append(_("read again {old} → {new}").format(old=change["from"], new=change["to"]))
    if decision.slots:
        lines.append(_("slots     ") + ", ".join(f"{k}={v}" for k, v in decision.slots.items()))
    why = f"  ({'; '.join(decision.reasons)})" if decision.reasons else ""
    lines.append(_("decision  {kind}").format(kind=decision.kind) + why)
    if decision.replies:
        lines.append(_("sends     ") + ", ".join(r.id for r in decision.replies))
    for rank, s in enumerate(decision.suggestions, 1):
        flag = "" if s.auto_send else _("  [agent only]")
        lines.append(f"  {rank}. {s.score:.2f}  {s.id:<24} {s.text}{flag}")
    if not decision.suggestions:
        lines.append(_("  (no matching reply)"))
    for clause in decision.clauses:
        if clause.role == "question":
            lines.append(_("question  {text} ({intent} {score:.2f})").format(
                text=clause.text, intent=clause.intent, score=clause.score))
            lines += [f"  {rank}. {s.score:.2f}  {s.id:<24} {s.text}" for rank, s in enumerate(clause.suggestions, 1)]
    return "\n".join(lines)


def _clause(clause) -> str:
    label = f"{clause.role} {clause.intent}" if clause.intent else clause.role
    return f"{clause.text} ({label})"


@main.command(name="train")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to save the model [default: intents.model_path or the user cache].")
@with_config
def train_command(config: Config, output: Path | None) -> None:
    """Fit the intent model on the training examples and save it with their digest."""
    data = load_shop_training_set(config)
    started = time.perf_counter()
    with training(examples=len(data)):
        clf = train(data, min_confidence=config.intents.min_confidence, min_margin=config.intents.min_margin)
    seconds = time.perf_counter() - started
    path = output or model_path(config)
    clf.save(path)
    click.echo(_("trained on {n} examples of {k} intents in {s:.1f}s").format(
        n=len(data), k=len(data.examples), s=seconds))
    click.echo(_("digest {digest}  saved to {path}").format(digest=data.digest()[:16], path=path))


@main.command(name="eval")
@click.option("--data", "data_path", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON lines {"text", "intent", "alt"?, "context"?} (not needed with --cross-validation).')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--accept-alt", is_flag=True, help="Top-level JSON keys and per-intent table count alt too.")
@click.option("--cross-validation", "cross_validation", is_flag=True,
              help="Measure on the shop's own training examples: stratified, seeded folds.")
@click.option("--folds", default=5, show_default=True, help="Folds for --cross-validation.")
@click.option("--seed", default=13, show_default=True, help="Shuffling seed for --cross-validation.")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every wrong message (text, expected, predicted, score) as JSON lines.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write one self-contained HTML report (confusion matrix, histogram, errors, coverage).")
@click.option("--decisions", "decisions_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write each message's decision (intent, kind, phrase id, replies) as JSON lines.")
@with_config
def eval_command(config: Config, data_path: Path | None, as_json: bool, accept_alt: bool, cross_validation: bool,
                 folds: int, seed: int, errors_path: Path | None, html_path: Path | None,
                 decisions_path: Path | None = None) -> None:
    """Intent accuracy, macro-F1 and auto-send precision, strict and lenient, on a labelled file (or by CV)."""
    from bot.suites.eval_report import cross_validation_report, details_report, write_outputs

    if cross_validation:
        report, engine = cross_validation_report(config, folds, seed, quiet=as_json), None
    elif data_path is None:
        raise click.UsageError("give --data FILE.jsonl, or --cross-validation")
    else:
        intent_set = config.intent_set()
        examples = read_examples(data_path, intents=set(intent_set.groups))
        engine = engine_for(config)
        decisions = run_examples(engine, examples)  # the server's pipeline, one fresh conversation each
        report = evaluate(engine, examples, accept_alt=accept_alt, decisions=decisions)
        if errors_path is not None or html_path is not None:
            details_report(engine, examples, report, decisions)
        if decisions_path is not None:
            write_decisions(decisions_path, examples, decisions)
    write_outputs(config, engine, report, errors_path, html_path)
    if as_json:
        click.echo(json.dumps({k: v for k, v in report.items() if k != "details"}, ensure_ascii=False))
    else:
        click.echo(format_report(report))
        if "details" in report:
            from bot.suites.eval_report import format_histogram

            click.echo("")
            click.echo(format_histogram(report["details"]["histogram"]))


@main.command()
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per decision.")
@click.option("--store", "store_url", default=":memory:", show_default=True,
              help="Where the replay keeps its conversations (a SQLite file to inspect afterwards).")
@with_config
def replay(config: Config, script: Path, as_json: bool, store_url: str) -> None:
    """Run a scripted conversation on a simulated clock (no network, no waiting)."""
    from bot.replay import Replay, format_line, load_script

    start, agents_online, events = load_script(script, config)
    target = store_target(config, store_url)
    existing = target != ":memory:" and Path(target).exists()
    app = app_for(config, store=target)
    try:
        store = app.store
    except ValueError as exc:  # an unsupported URL or an empty path: the user's to fix
        _fail(f"--store: {exc}")
    before = len(store.decisions()) if existing else 0
    runner = Replay(app.engine, start, agents_online, store)
    for line in runner.run(events):
        if as_json:
            click.echo(json.dumps(line.model_dump(include=REPLAY_KEYS), ensure_ascii=False))
        else:
            click.echo(format_line(line))
    if existing:
        # said on stderr so --json stays one object per decision
        added = len(store.decisions()) - before
        click.echo(
            _("replayed into the existing store {store}: it held {before} decisions, this run added {count};"
              " messages already in it (same customer and message id) are skipped, never answered twice,"
              " and conversations of the same customers go on where they were").format(
                store=store_url, before=before, count=added),
            err=True,
        )


@main.command()
@click.option("--host", default=None, help="Interface to listen on [default: server.host].")
@click.option("--port", type=int, default=None, help="Port [default: server.port].")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes behind the one port (above 1 needs store.path: redis://…).")
@with_config
def serve(config: Config, host: str | None, port: int | None, workers: int) -> None:
    """Run the webhook server: connectors, order events, health and metrics."""
    import logging

    from aiohttp import web

    from bot.cli.store import store_file
    from bot.store.serve_lock import serve_lock

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = host or config.server.host
    port = config.server.port if port is None else port
    if workers > 1:
        return serve_workers(config, host, port, workers)
    lock = serve_lock(store_file(config))  # one server per SQLite file: a second one exits here
    if lock is not None:
        lock.acquire()  # held until this process exits (the kernel drops it even on kill -9)
    server = app_for(config).server
    names = ", ".join(f"/webhook/{name}" for name in server.connectors) or _("no connectors configured")
    sock = listen(host, port)  # before saying "serving": a busy port is one clear line, not a traceback
    click.echo(_("kefu serving on http://{host}:{port} ({names})").format(host=host, port=port, names=names))
    web.run_app(server.app(), sock=sock, print=None, handle_signals=True)


def serve_workers(config: Config, host: str, port: int, workers: int) -> None:
    """`kefu serve --workers N`: bind once, fork N workers, restart any that dies (bot.web.workers)."""
    from bot.web.shared_accept import serve_app
    from bot.web.workers import StartFailed, Supervisor, refusal

    why = refusal(config.store.path, workers)
    if why:
        _fail(why)
    sock = listen(host, port)
    names = ", ".join(f"/webhook/{name}" for name in config.connectors) or _("no connectors configured")

    def run_worker(number: int, ready) -> None:
        try:
            server = app_for(config).server
        except USER_ERRORS as exc:
            raise StartFailed(localise(str(exc))) from None  # the parent prints it and stops everything
        app = server.app()

        async def served(_app) -> None:
            ready()

        app.on_startup.append(served)
        serve_app(app, sock)  # (web.run_app, the connections shared among the workers by count)

    click.echo(_("kefu serving on http://{host}:{port} ({names})").format(host=host, port=port, names=names)
               + f" — {workers} workers on {config.store.path}")
    supervisor = Supervisor(sock, workers, run_worker, stop_timeout=config.server.drain_seconds + 10)
    code = supervisor.run()
    if supervisor.failed:
        _fail(supervisor.failed)
    sys.exit(code)


def listen(host: str, port: int):
    """The listening socket of `kefu serve`, or exit 1 with one line saying why there is none."""
    import errno
    import socket

    try:
        return socket.create_server((host, port), backlog=1024)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why += " (another program, maybe another kefu serve, listens there: stop it or pass --port)"
        elif exc.errno == errno.EACCES:
            why += " (ports below 1024 need privileges: pass --port 8080)"
        _fail(f"cannot listen on {host}:{port}: {why}")


#: `kefu replay --json` contract: one object per decision with exactly these keys.
REPLAY_KEYS = {"at", "customer", "trigger", "kind", "phrase_id", "text", "intent", "handoff"}


