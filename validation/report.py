"""Markdown and self-contained HTML reports of a validation run."""

from __future__ import annotations

import base64
import datetime
import html
import platform
from pathlib import Path


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _md(v) -> str:
    """A table cell for Markdown: pipes escaped."""
    return _fmt(v).replace("|", "\\|")


def _rows(results):
    for r in results:
        if r.error:
            yield r, None
        for c in r.checks:
            yield r, c


def write_report(results, out: Path, *, quick: bool) -> tuple[Path, Path]:
    import numpy
    import scipy

    import fpgen

    n_fail = sum(not r.passed for r in results)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    env = (f"fpgen {fpgen.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
           f"Python {platform.python_version()}, {platform.machine()}")
    title = "fpgen validation report" + (" (quick)" if quick else "")
    summary = f"{len(results) - n_fail} passed, {n_fail} failed"

    md = [f"# {title}", "", f"{stamp} — {env}", "", f"**{summary}**", "",
          "Time convention: t = 0 is the data; time runs toward equilibrium.", "",
          "## Cases", "", "| case | equation | reference | result | time (s) |",
          "|---|---|---|---|---|"]
    for r in results:
        md.append(f"| {_md(r.case.name)} | {_md(r.case.equation)} | {_md(r.case.reference)} | "
                  f"{'pass' if r.passed else '**FAIL**'} | {r.seconds:.1f} |")
    md += ["", "## Checks", "",
           "| case | quantity | expected | measured | tolerance | pass | note |",
           "|---|---|---|---|---|---|---|"]
    for r, c in _rows(results):
        if c is None:
            md.append(f"| {r.case.name} | (crashed) | | | | **no** | see the run log |")
        else:
            md.append(f"| {_md(r.case.name)} | {_md(c.quantity)} | {_md(c.expected)} | "
                      f"{_md(c.measured)} | {_md(c.tolerance)} | {'yes' if c.passed else '**no**'} "
                      f"| {_md(c.note)} |")
    figs = [(r.case.name, f) for r in results for f in r.figures]
    if figs:
        md += ["", "## Figures", ""]
        for name, f in figs:
            md += [f"### {name}", "", f"![{name}]({f})", ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n")

    e = html.escape
    h = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{e(title)}</title>",
         "<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;"
         "padding:0 1em;color:#222}table{border-collapse:collapse;width:100%;margin:1em 0;"
         "font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}"
         "th{background:#f3f3f3}.fail{background:#fde2e2}.pass{background:#e6f4ea}"
         "img{max-width:100%;border:1px solid #ddd}code{background:#f5f5f5}</style></head><body>",
         f"<h1>{e(title)}</h1><p>{e(stamp)} — {e(env)}</p><p><b>{e(summary)}</b></p>",
         "<p>Time convention: t = 0 is the data; time runs toward equilibrium.</p>",
         "<h2>Cases</h2><table><tr><th>case</th><th>equation</th><th>reference</th>"
         "<th>result</th><th>time (s)</th></tr>"]
    for r in results:
        cls = "pass" if r.passed else "fail"
        h.append(f"<tr class='{cls}'><td>{e(r.case.name)}</td><td>{e(r.case.equation)}</td>"
                 f"<td>{e(r.case.reference)}</td><td>{'pass' if r.passed else 'FAIL'}</td>"
                 f"<td>{r.seconds:.1f}</td></tr>")
    h.append("</table><h2>Checks</h2><table><tr><th>case</th><th>quantity</th><th>expected</th>"
             "<th>measured</th><th>tolerance</th><th>pass</th><th>note</th></tr>")
    for r, c in _rows(results):
        if c is None:
            h.append(f"<tr class='fail'><td>{e(r.case.name)}</td><td colspan=6><pre>"
                     f"{e(r.error)}</pre></td></tr>")
            continue
        cls = "pass" if c.passed else "fail"
        h.append(f"<tr class='{cls}'><td>{e(r.case.name)}</td><td>{e(c.quantity)}</td>"
                 f"<td>{e(_fmt(c.expected))}</td><td>{e(_fmt(c.measured))}</td>"
                 f"<td>{e(c.tolerance)}</td><td>{'yes' if c.passed else 'no'}</td>"
                 f"<td>{e(c.note)}</td></tr>")
    h.append("</table>")
    if figs:
        h.append("<h2>Figures</h2>")
        for name, f in figs:
            data = base64.b64encode((out / f).read_bytes()).decode()
            h.append(f"<h3>{e(name)}</h3><img alt='{e(name)}' src='data:image/png;base64,{data}'>")
    h.append("</body></html>")
    html_path = out / "report.html"
    html_path.write_text("\n".join(h))
    return md_path, html_path
