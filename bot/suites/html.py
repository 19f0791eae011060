"""One self-contained HTML report for `kefu test --html` and `kefu eval --html`.

Written for a customer-service lead, not an engineer: the summary first, then the failing
cases (what the customer said, what the bot did, what was expected), the per-intent table,
the confusion matrix as an inline SVG heat map, the confidence histogram, the worst errors,
phrasebook coverage and, with ``--baseline``, what changed. No CDN, no script, no external
file: it opens from an e-mail attachment or a CI artifact as it is.
"""

from __future__ import annotations

from html import escape

_CSS = """
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;
vertical-align:top;font-size:.9rem}th{background:#f6f8fa}.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:600}
.case{border:1px solid #cf222e;border-radius:6px;padding:.5rem 1rem;margin:.75rem 0}
.diff-better{color:#1a7f37}.diff-worse{color:#cf222e}.diff-different{color:#9a6700}
.muted{color:#656d76}code{background:#f6f8fa;padding:0 .2rem}
"""


def _table(head: list[str], rows: list[list[str]], table_id: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    out = [f"<table{ident}><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def confusion_svg(labels: list[str], matrix: list[list[int]], cell: int = 18) -> str:
    """A heat map: rows are the true intent, columns the predicted one; each cell names its count."""
    n = len(labels)
    margin = 10 + 7 * max((len(label) for label in labels), default=1)
    size = margin + n * cell + 10
    parts = [f'<svg id="confusion-matrix" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="confusion matrix" width="{size + margin // 2}" height="{size}" font-size="11" '
             'font-family="monospace">',
             "<title>confusion matrix: rows = true intent, columns = predicted intent</title>"]
    for i, label in enumerate(labels):
        y = margin + i * cell + cell * 0.7
        parts.append(f'<text x="{margin - 4}" y="{y:.1f}" text-anchor="end">{escape(label)}</text>')
        x = margin + i * cell + cell * 0.7
        parts.append(f'<text x="{x:.1f}" y="{margin - 4}" transform="rotate(-60 {x:.1f} {margin - 4})">'
                     f"{escape(label)}</text>")
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            if count == 0:
                fill = "#ffffff"
            elif i == j:
                fill = f"rgb({int(255 - 200 * share)},{int(255 - 120 * share)},255)"
            else:
                fill = f"rgb(255,{int(235 - 200 * share)},{int(235 - 200 * share)})"
            x, y = margin + j * cell, margin + i * cell
            parts.append(f'<rect class="cell" data-true="{escape(labels[i])}" data-predicted="{escape(labels[j])}" '
                         f'data-count="{count}" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" '
                         f'stroke="#d0d7de"><title>{escape(labels[i])} → {escape(labels[j])}: {count}</title></rect>')
            if count:
                parts.append(f'<text x="{x + cell / 2:.1f}" y="{y + cell * 0.7:.1f}" text-anchor="middle" '
                             f'font-size="9">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(rows: list[dict], width: int = 420, height: int = 160) -> str:
    """Right (blue) and wrong (red) answers per confidence bin, stacked."""
    top = max((r["right"] + r["wrong"] for r in rows), default=1) or 1
    bar = (width - 40) / max(len(rows), 1)
    parts = [f'<svg id="confidence-histogram" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="confidence histogram" width="{width}" height="{height + 30}" font-size="10">']
    for k, r in enumerate(rows):
        x = 30 + k * bar
        h_right = height * r["right"] / top
        h_wrong = height * r["wrong"] / top
        parts.append(f'<rect x="{x:.1f}" y="{height - h_right:.1f}" width="{bar - 2:.1f}" height="{h_right:.1f}" '
                     f'fill="#54aeff"><title>{r["low"]}–{r["high"]}: {r["right"]} right</title></rect>')
        parts.append(f'<rect x="{x:.1f}" y="{height - h_right - h_wrong:.1f}" width="{bar - 2:.1f}" '
                     f'height="{h_wrong:.1f}" fill="#ff8182"><title>{r["low"]}–{r["high"]}: {r["wrong"]} wrong'
                     "</title></rect>")
        parts.append(f'<text x="{x:.1f}" y="{height + 14}">{r["low"]:.1f}</text>')
    parts.append(f'<text x="30" y="{height + 28}">top-intent probability (blue right, red wrong)</text></svg>')
    return "".join(parts)


def _cases_section(cases: list[dict]) -> str:
    failed = [c for c in cases if not c["passed"]]
    out = ['<h2 id="failing">失败的用例 Failing cases</h2>']
    if not failed:
        out.append('<p class="pass">全部通过 All cases pass.</p>')
    for c in failed:
        rows = []
        for t in c["turns"]:
            bot = ", ".join(escape(x) for x in t["lines"]) or escape("/".join(t["kinds"]) or "—")
            said = "<br>".join(escape(x) for x in t.get("texts", [])[:3])
            problems = "<br>".join(escape(p) for p in t["problems"])
            rows.append([str(t["line"]), escape(t["action"]), f"{escape('/'.join(t['kinds']))}: {bot}"
                         + (f'<div class="muted">{said}</div>' if said else ""),
                         f'<span class="fail">{problems}</span>' if problems else '<span class="pass">✓</span>'])
        out.append(f'<article class="case failed" data-case="{escape(c["name"])}"><h3>{escape(c["name"])}</h3>'
                   f'<p class="muted">{escape(c["file"])}:{c["line"]}</p>'
                   f'<p class="fail">{escape(c["first_difference"] or "")}</p>'
                   + _table(["line", "turn", "bot", "expected vs got"], rows) + "</article>")
    out.append('<h2 id="all-cases">全部用例 All cases</h2>')
    out.append(_table(["result", "case", "where", "checks"], [
        ['<span class="pass">PASS</span>' if c["passed"] else '<span class="fail">FAIL</span>', escape(c["name"]),
         escape(f'{c["file"]}:{c["line"]}'), str(c["checks"])] for c in cases], "cases"))
    return "".join(out)


def _intent_section(report: dict, title: str) -> str:
    out = [f'<h2 id="intents">{escape(title)}</h2>',
           f'<p>accuracy <b>{report["accuracy"]:.3f}</b> · macro-F1 <b>{report["macro_f1"]:.3f}</b> · '
           f'{report["n"]} messages</p>']
    rows = [[escape(label), f'{r["precision"]:.3f}', f'{r["recall"]:.3f}', f'{r["f1"]:.3f}', str(r["support"])]
            for label, r in sorted(report["per_intent"].items(), key=lambda kv: (kv[1]["f1"], kv[0]))]
    out.append(_table(["intent", "precision", "recall", "F1", "support"], rows, "per-intent"))
    d = report.get("details")
    if d:
        out.append('<h2 id="confusion">混淆矩阵 Confusion matrix</h2>')
        out.append(confusion_svg(d["confusion"]["labels"], d["confusion"]["matrix"]))
        out.append('<h2 id="histogram">置信度分布 Confidence histogram</h2>' + histogram_svg(d["histogram"]))
        errors = d["errors"][:100]
        out.append(f'<h2 id="errors-title">识别错误 Errors ({len(d["errors"])}, most confident first)</h2>')
        out.append(_table(["text", "expected", "predicted", "score"], [
            [escape(e["text"]), escape(e["expected"]), escape(e["predicted"]), f'{e["score"]:.2f}'] for e in errors],
            "errors"))
    return "".join(out)


def _coverage_section(coverage: dict) -> str:
    out = ['<h2 id="coverage">话术覆盖 Phrasebook coverage</h2>',
           f'<p>{coverage["reached"]} of {coverage["entries"]} entries reached by a test or an example.</p>']
    out.append("<h3>没有测试或例句触达的话术 Entries no test and no example reaches</h3>")
    out.append(_table(["entry", "intent", "where"], [
        [escape(e["id"]), escape(e["intent"]), escape(e["source"])] for e in coverage["unreached"]], "unreached"))
    out.append(f'<h3>例句太少的意图 Intents with fewer than {coverage["min_examples"]} examples</h3>')
    out.append(_table(["intent", "examples"], [
        [escape(i["intent"]), str(i["examples"])] for i in coverage["few_examples"]], "few-examples"))
    return "".join(out)


def _diff_section(diff: dict) -> str:
    out = [f'<h2 id="diff">与旧版本对比 Compared with {escape(diff["baseline"])}</h2>',
           f'<p>{len(diff["cases"])} cases and {len(diff["messages"])} evaluation messages changed.</p>']
    out.append(_table(["change", "case", "turn", "before", "after"], [
        [f'<span class="diff-{c["change"]}">{c["change"]}</span>', escape(c["name"]), escape(c.get("turn") or ""),
         escape(c["before"]), escape(c["after"])] for c in diff["cases"]], "diff-cases"))
    out.append(_table(["change", "message", "expected", "before", "after"], [
        [f'<span class="diff-{m["change"]}">{m["change"]}</span>', escape(m["text"]), escape(m["expected"]),
         escape(m["before"]), escape(m["after"])] for m in diff["messages"]], "diff-messages"))
    return "".join(out)


def render_report(title: str, summary: list[tuple[str, str]], *, cases: list[dict] | None = None,
                  intents: dict | None = None, intents_title: str = "意图 Per-intent figures",
                  coverage: dict | None = None, diff: dict | None = None) -> str:
    body = [f"<h1>{escape(title)}</h1>", _table(["", ""], [[escape(k), escape(v)] for k, v in summary], "summary")]
    if diff is not None:
        body.append(_diff_section(diff))
    if cases is not None:
        body.append(_cases_section(cases))
    if intents is not None:
        body.append(_intent_section(intents, intents_title))
    if coverage is not None:
        body.append(_coverage_section(coverage))
    return ('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>\n")
