"""Number formats shared by the renderers (terminal, CSV, HTML, push)."""

from __future__ import annotations


def pct(value: float) -> str:
    """0.3333 → 33.3%"""
    return f"{value * 100:.1f}%"


def seconds(value: float | None) -> str:
    """A response time: 42 s, 3.5 min, 1.2 h; "-" for none."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.0f} 秒"
    if value < 3600:
        return f"{value / 60:.1f} 分钟"
    return f"{value / 3600:.1f} 小时"


def clock(iso: str | None) -> str:
    """ "2026-11-23T10:03:00+08:00" → "11-23 10:03"."""
    return f"{iso[5:10]} {iso[11:16]}" if iso else "-"


def answered(author: str) -> str:
    from bot.reports.labels import ANSWERED_BY

    return ANSWERED_BY.get(author, author)


def unpaid_title(up: dict) -> str:
    return (
        f"未付款明细（下单 {up['created']}，未付款 {up['unpaid']}，"
        f"催付 {up['chased']}，催付后付款 {up['paid_after_chase']}）"
    )


def yes(flag: bool) -> str:
    return "是" if flag else "否"
