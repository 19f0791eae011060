"""`kefu init [DIR]`: start a shop folder (config, phrasebook, examples, a test, a README)."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import click

from bot.cli.core import _fail, main
from bot.i18n import _
from bot.scaffold import ScaffoldError, ShopAnswers, create_shop

QUESTIONS = {
    "shop_name": "店铺名称",
    "platform": "平台 (taobao / tmall / jd)",
    "courier": "默认快递",
    "phone": "客服电话（可留空）",
    "service_hours": "客服时间 (如 09:00-23:00)",
}


def stdin_is_terminal() -> bool:
    """Questions only make sense to a person at a terminal (tests replace this)."""
    return sys.stdin.isatty()


@main.command(name="init")
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--yes", "-y", is_flag=True, help="Take the defaults (and any flags) without asking.")
@click.option("--force", is_flag=True, help="Overwrite the kefu files of an existing shop folder.")
@click.option("--shop-name", default=None, help="Shop name (店铺名称).")
@click.option("--platform", type=click.Choice(["taobao", "tmall", "jd"]), default=None, help="Platform.")
@click.option("--courier", default=None, help="Default courier (默认快递).")
@click.option("--phone", default=None, help="Service phone (客服电话).")
@click.option("--service-hours", default=None, help="Service hours, e.g. 09:00-23:00.")
def init_command(folder: Path, yes: bool, force: bool, **given: str | None) -> None:
    """Create a shop folder in FOLDER (default: here) that works at once.

    On a terminal it asks for the shop's name, platform, courier, phone and service hours;
    without one (or with --yes) it takes the defaults and the flags, and says so.
    """
    defaults = ShopAnswers()
    values = {f.name: getattr(defaults, f.name) for f in fields(ShopAnswers)}
    values.update({k: v for k, v in given.items() if v is not None})
    ask = not yes and stdin_is_terminal()
    if ask:
        for name, question in QUESTIONS.items():
            if given.get(name) is None:
                values[name] = click.prompt(question, default=values[name], show_default=True)
    else:
        taken = ", ".join(f"{k}={values[k]}" for k in QUESTIONS if given.get(k) is None)
        if taken:
            reason = "--yes" if yes else _("no terminal")
            click.echo(_("({reason}: using defaults {taken}; edit config.yaml to change them)").format(
                reason=reason, taken=taken))
    try:
        written = create_shop(folder, ShopAnswers(**values), force=force)
    except ScaffoldError as exc:
        _fail(str(exc))
    click.echo(_("created a kefu shop folder in {folder}:").format(folder=folder.resolve()))
    for path in written:
        click.echo(f"  {path.as_posix()}")
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    click.echo(_("next: {commands}   (see README.md)").format(
        commands=f'{where}kefu lint && kefu train && kefu suggest "包邮吗"'))
