"""The `kefu` command line.

Output contracts (other tools and tests depend on them): ``suggest --json`` prints one JSON
object; ``eval --json`` prints one JSON object; ``lint`` prints one ``file:line: reason`` per
problem and exits 1 when there is any. Every command takes ``--config PATH``
(default ./config.yaml).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import click

from bot.config import RUNTIME_PLACEHOLDERS, Config, ConfigError, load_config
from bot.engine import Engine, load_shop_phrasebook, load_shop_training_set, model_path
from bot.evaluate import EvalDataError, evaluate, format_report, read_examples
from bot.replay import ReplayError
from intents.classifier import StaleModelError, train
from intents.dataset import TrainingDataError
from phrasebook.lint import lint_phrasebook
from phrasebook.loader import PhrasebookError

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Shop settings file [default: ./config.yaml].",
)


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def with_config(command):
    """Load the config first; turn every known user error into one line and exit 1."""

    @config_option
    @functools.wraps(command)
    def wrapper(config_path: Path | None, **kwargs):
        try:
            config = load_config(config_path)
            return command(config, **kwargs)
        except EvalDataError as exc:
            _fail(str(exc), exc.exit_code)
        except (ConfigError, StaleModelError, ReplayError) as exc:
            _fail(str(exc))
        except (PhrasebookError, TrainingDataError) as exc:
            for problem in exc.problems:
                click.echo(problem, err=True)
            what = "phrasebook" if isinstance(exc, PhrasebookError) else "training data"
            _fail(f"{len(exc.problems)} problem(s) in the {what} (listed above); `kefu lint` checks everything")

    return wrapper


@click.group()
@click.version_option(package_name="kefu")
def main() -> None:
    """kefu — chat-assist bot for Chinese e-commerce customer service."""


@main.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_config
def suggest(config: Config, text: str, as_json: bool) -> None:
    """Rank replies for one customer message TEXT."""
    decision = Engine.from_config(config).suggest(text)
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
    lines = [f"intent    {decision.intent} ({decision.intent_score:.2f})   top: {top}"]
    if len(decision.clauses) > 1 or any(c.role != "main" for c in decision.clauses):
        lines.append("clauses   " + " | ".join(_clause(c) for c in decision.clauses))
    if decision.slots:
        lines.append("slots     " + ", ".join(f"{k}={v}" for k, v in decision.slots.items()))
    lines.append(f"decision  {decision.kind}" + (f"  ({'; '.join(decision.reasons)})" if decision.reasons else ""))
    for rank, s in enumerate(decision.suggestions, 1):
        flag = "" if s.auto_send else "  [agent only]"
        lines.append(f"  {rank}. {s.score:.2f}  {s.id:<24} {s.text}{flag}")
    if not decision.suggestions:
        lines.append("  (no matching reply)")
    for clause in decision.clauses:
        if clause.role == "question":
            lines.append(f"question  {clause.text} ({clause.intent} {clause.score:.2f})")
            lines += [f"  {rank}. {s.score:.2f}  {s.id:<24} {s.text}" for rank, s in enumerate(clause.suggestions, 1)]
    return "\n".join(lines)


def _clause(clause) -> str:
    label = f"{clause.role} {clause.intent}" if clause.intent else clause.role
    return f"{clause.text} ({label})"


@main.command()
@click.option("--agents-online", is_flag=True, help="Pretend an agent is online (away mode then only suggests).")
@with_config
def chat(config: Config, agents_online: bool) -> None:
    """Type as a customer; see the intent, score and top replies for each line."""
    from bot.engine import Context

    engine = Engine.from_config(config)
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo(f"{config.shop.shop_name} — type a customer message (Ctrl-D to quit)")
    for line in sys.stdin:
        text = line.strip()
        if not text:
            continue
        if not interactive:
            click.echo(f"> {text}")
        click.echo(_describe(engine.suggest(text, Context(agents_online=agents_online))))
        click.echo("")


@main.command(name="train")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to save the model [default: intents.model_path or the user cache].")
@with_config
def train_command(config: Config, output: Path | None) -> None:
    """Fit the intent model on the training examples and save it with their digest."""
    data = load_shop_training_set(config)
    started = time.perf_counter()
    clf = train(data, min_confidence=config.intents.min_confidence, min_margin=config.intents.min_margin)
    seconds = time.perf_counter() - started
    path = output or model_path(config)
    clf.save(path)
    click.echo(f"trained on {len(data)} examples of {len(data.examples)} intents in {seconds:.1f}s")
    click.echo(f"digest {data.digest()[:16]}  saved to {path}")


@main.command()
@with_config
def lint(config: Config) -> None:
    """Check phrasebook and training data, red lines included; print file:line per problem."""
    problems: list[str] = []
    try:
        phrasebook = load_shop_phrasebook(config)
        problems += lint_phrasebook(
            phrasebook,
            config.shop.placeholders(),
            config.shop.platform,
            config.policy.banned_words,
            RUNTIME_PLACEHOLDERS,
        )
    except PhrasebookError as exc:
        problems += exc.problems
        phrasebook = None
    try:
        data = load_shop_training_set(config)
    except TrainingDataError as exc:
        problems += exc.problems
        data = None
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(phrasebook)} phrasebook entries, {len(data)} training examples")


@main.command(name="eval")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON lines {"text", "intent", "alt"?}.')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--accept-alt", is_flag=True, help="Count the alt label as correct too.")
@with_config
def eval_command(config: Config, data_path: Path, as_json: bool, accept_alt: bool) -> None:
    """Measure intent accuracy, macro-F1 and auto-send precision on a labelled file."""
    intent_set = config.intent_set()
    examples = read_examples(data_path, intents=set(intent_set.groups))
    report = evaluate(Engine.from_config(config), examples, accept_alt=accept_alt)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        click.echo(format_report(report))


@main.command()
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per decision.")
@click.option("--store", "store_url", default=":memory:", show_default=True,
              help="Where the replay keeps its conversations (a SQLite file to inspect afterwards).")
@with_config
def replay(config: Config, script: Path, as_json: bool, store_url: str) -> None:
    """Run a scripted conversation on a simulated clock (no network, no waiting)."""
    from bot.replay import Replay, format_line, load_script
    from bot.store import open_store

    start, agents_online, events = load_script(script, config)
    runner = Replay(Engine.from_config(config), start, agents_online, open_store(store_url))
    for line in runner.run(events):
        if as_json:
            click.echo(json.dumps(line.model_dump(include=REPLAY_KEYS), ensure_ascii=False))
        else:
            click.echo(format_line(line))


@main.command()
@click.option("--host", default=None, help="Interface to listen on [default: server.host].")
@click.option("--port", type=int, default=None, help="Port [default: server.port].")
@with_config
def serve(config: Config, host: str | None, port: int | None) -> None:
    """Run the webhook server: connectors, order events, health and metrics."""
    import logging

    from aiohttp import web

    from bot.web.server import build_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = build_server(config)
    host = host or config.server.host
    port = config.server.port if port is None else port
    names = ", ".join(f"/webhook/{name}" for name in server.connectors) or "no connectors configured"
    click.echo(f"kefu serving on http://{host}:{port} ({names})")
    web.run_app(server.app(), host=host, port=port, print=None, handle_signals=True)


#: `kefu replay --json` contract: one object per decision with exactly these keys.
REPLAY_KEYS = {"at", "customer", "trigger", "kind", "phrase_id", "text", "intent", "handoff"}


