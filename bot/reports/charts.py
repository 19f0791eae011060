"""Inline SVG charts for the HTML report: no script, no CDN, nothing fetched.

Each function returns one ``<svg>`` element with an ``id`` (the browser test finds the charts
by it), a ``<title>`` for screen readers, and text labels on the marks themselves, so the
numbers can be read without hovering.
"""

from __future__ import annotations

from html import escape

from bot.reports.formatting import pct

BLUE, GREEN, ORANGE, GREY = "#3b82f6", "#10b981", "#f59e0b", "#9ca3af"


def funnel(element_id: str, steps: list[tuple[str, int]]) -> str:
    """Centred bars narrowing step by step, each labelled with its count and rate to the first."""
    width, row, gap = 560, 46, 10
    top = max((n for _, n in steps), default=0) or 1
    height = len(steps) * (row + gap) + 10
    parts = [
        f'<svg id="{element_id}" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>转化漏斗</title>'
    ]
    first = steps[0][1] if steps else 0
    colors = (BLUE, GREEN, ORANGE)
    left, right = 110, width - 90  # labels | centred bars | rate to the first step
    for i, (label, n) in enumerate(steps):
        w = max(4.0, (right - left) * n / top)
        x, y = left + (right - left - w) / 2, 5 + i * (row + gap)
        rate = pct(n / first) if first else "-"
        parts.append(
            f'<g class="step" data-count="{n}"><text x="8" y="{y + row / 2 + 6}" font-size="17" fill="#111">'
            f'{escape(label)} {n}</text><rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row}" rx="6" '
            f'fill="{colors[i % 3]}"/><text x="{width - 8}" y="{y + row / 2 + 6}" text-anchor="end" '
            f'font-size="15" fill="#374151">{rate}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def hbars(element_id: str, title: str, rows: list[tuple[str, float, str]], color: str = BLUE) -> str:
    """Horizontal bars: (label, value, text shown after the bar)."""
    width, row = 560, 26
    top = max((v for _, v, _ in rows), default=0) or 1
    height = max(1, len(rows)) * row + 10
    parts = [
        f'<svg id="{element_id}" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    if not rows:
        parts.append(f'<text x="10" y="20" font-size="14" fill="{GREY}">（无数据）</text>')
    for i, (label, value, shown) in enumerate(rows):
        y = 5 + i * row
        w = max(2.0, 260 * value / top)
        parts.append(
            f'<g class="bar"><text x="118" y="{y + 17}" text-anchor="end" font-size="14">{escape(label)}</text>'
            f'<rect x="124" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="3" fill="{color}"/>'
            f'<text x="{130 + w:.1f}" y="{y + 17}" font-size="13" fill="#374151">{escape(shown)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def hours(element_id: str, title: str, series: list[tuple[str, str, list[float | None]]], unit: str = "秒") -> str:
    """24 hourly groups of vertical bars, one bar per series (name, colour, 24 values)."""
    width, height, left, bottom = 760, 260, 50, 30
    plot_w, plot_h = width - left - 10, height - bottom - 30
    values = [v for _, _, vs in series for v in vs if v is not None]
    top = max(values, default=0) or 1
    slot = plot_w / 24
    bar = slot * 0.8 / max(1, len(series))
    parts = [
        f'<svg id="{element_id}" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="{GREY}"/>',
        f'<text x="{left - 6}" y="34" text-anchor="end" font-size="11">{top:.0f}{unit}</text>',
    ]
    for h in range(24):
        x0 = left + h * slot + slot * 0.1
        parts.append(
            f'<text x="{x0 + slot * 0.4:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11">{h:02d}</text>'
        )
        for s, (name, color, vs) in enumerate(series):
            v = vs[h]
            if v is None:
                continue
            bh = max(1.0, plot_h * v / top)
            parts.append(
                f'<rect class="hour-bar" x="{x0 + s * bar:.1f}" y="{height - bottom - bh:.1f}" '
                f'width="{bar:.1f}" height="{bh:.1f}" fill="{color}"><title>{h:02d}时 {escape(name)} '
                f"{v:.0f}{unit}</title></rect>"
            )
    for s, (name, color, _) in enumerate(series):
        parts.append(
            f'<rect x="{left + s * 110}" y="6" width="12" height="12" fill="{color}"/>'
            f'<text x="{left + 16 + s * 110}" y="17" font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
