"""Markdown and self-contained HTML reports of a validation run.

Layout: a summary table of the cases (equation, reference, result, time), then one section per
case with its description (what is checked, the reference, why the tolerances), its checks
(expected, measured, tolerance, pass, note) and its figures.
"""

from __future__ import annotations

import base64
import datetime
import html
import platform
import re
from pathlib import Path

HEADER = "| case | quantity | expected | measured | tolerance | pass | note |"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _md(v) -> str:
    """A table cell for Markdown: pipes escaped."""
    return _fmt(v).replace("|", "\\|")


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", name.lower().replace(" ", "-"))


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) if not p.lstrip().startswith(("*", "-")) else p.strip()
            for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _environment() -> str:
    import numpy
    import scipy

    import fpgen

    parts = [f"fpgen {fpgen.__version__}", f"numpy {numpy.__version__}",
             f"scipy {scipy.__version__}"]
    try:
        import numba

        parts.append(f"numba {numba.__version__}")
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
    return ", ".join(parts) + f", Python {platform.python_version()}, {platform.machine()}"


def write_report(results, out: Path, *, quick: bool, command: str = "python -m validation"
                 ) -> tuple[Path, Path]:
    n_fail = sum(not r.passed for r in results)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    env = _environment()
    title = "fpgen validation report" + (" (quick)" if quick else "")
    summary = f"{len(results) - n_fail} passed, {n_fail} failed"
    n_checks = sum(len(r.checks) for r in results)
    total = sum(r.seconds for r in results)
    intro = ("Each case states an equation, a reference (an analytic law, a published rate or "
             "an exact bias), the quantities measured and the tolerance fixed in advance with "
             "its justification; Monte-Carlo checks give their standard errors (SE). "
             "Time convention: t = 0 is the data; time runs toward equilibrium.")

    md = [f"# {title}", "", f"{stamp} — {env}", "",
          f"**{summary}** ({n_checks} checks, {total:.0f} s of case time)", "",
          f"Regenerate: `{command}` (from the repository root).", "", intro, "",
          "## Cases", "", "| case | equation | reference | result | time (s) |",
          "|---|---|---|---|---|"]
    for r in results:
        md.append(f"| [{_md(r.case.name)}](#{_anchor(r.case.name)}) | {_md(r.case.equation)} | "
                  f"{_md(r.case.reference)} | {'pass' if r.passed else '**FAIL**'} | "
                  f"{r.seconds:.1f} |")
    for r in results:
        md += ["", f"## {r.case.name}", "",
               f"**{r.case.equation}** — reference: {r.case.reference} — "
               f"{'pass' if r.passed else '**FAIL**'}", ""]
        for para in _paragraphs(r.case.description):
            md += [para, ""]
        md += [HEADER, "|---|---|---|---|---|---|---|"]
        if r.error:
            md.append(f"| {_md(r.case.name)} | (crashed) | | | | **no** | see below |")
        for c in r.checks:
            md.append(f"| {_md(r.case.name)} | {_md(c.quantity)} | {_md(c.expected)} | "
                      f"{_md(c.measured)} | {_md(c.tolerance)} | "
                      f"{'yes' if c.passed else '**no**'} | {_md(c.note)} |")
        if r.error:
            md += ["", "```", r.error.rstrip(), "```"]
        for f in r.figures:
            md += ["", f"![{r.case.name}]({f})"]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n")

    e = html.escape
    h = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{e(title)}</title>",
         "<style>body{font-family:system-ui,sans-serif;max-width:1250px;margin:2em auto;"
         "padding:0 1em;color:#222;line-height:1.4}table{border-collapse:collapse;width:100%;"
         "margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;"
         "text-align:left;vertical-align:top}th{background:#f3f3f3}.fail{background:#fde2e2}"
         ".pass{background:#e6f4ea}img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}"
         "code{background:#f5f5f5;padding:0 3px}h2{border-top:1px solid #ddd;padding-top:1em}"
         ".desc{color:#333;font-size:14px}pre{background:#f8f8f8;padding:0.5em;overflow:auto}"
         "</style></head><body>",
         f"<h1>{e(title)}</h1><p>{e(stamp)} — {e(env)}</p>",
         f"<p><b>{e(summary)}</b> ({n_checks} checks, {total:.0f} s of case time)</p>",
         f"<p>Regenerate: <code>{e(command)}</code> (from the repository root).</p>",
         f"<p>{e(intro)}</p>",
         "<h2>Cases</h2><table><tr><th>case</th><th>equation</th><th>reference</th>"
         "<th>result</th><th>time (s)</th></tr>"]
    for r in results:
        cls = "pass" if r.passed else "fail"
        h.append(f"<tr class='{cls}'><td><a href='#{_anchor(r.case.name)}'>{e(r.case.name)}</a>"
                 f"</td><td>{e(r.case.equation)}</td><td>{e(r.case.reference)}</td>"
                 f"<td>{'pass' if r.passed else 'FAIL'}</td><td>{r.seconds:.1f}</td></tr>")
    h.append("</table>")
    for r in results:
        h.append(f"<h2 id='{_anchor(r.case.name)}'>{e(r.case.name)} — "
                 f"{'pass' if r.passed else 'FAIL'}</h2>"
                 f"<p><b>{e(r.case.equation)}</b> — reference: {e(r.case.reference)}</p>")
        for para in _paragraphs(r.case.description):
            h.append(f"<p class='desc'>{e(para)}</p>")
        h.append("<table><tr><th>quantity</th><th>expected</th><th>measured</th>"
                 "<th>tolerance</th><th>pass</th><th>note</th></tr>")
        for c in r.checks:
            cls = "pass" if c.passed else "fail"
            h.append(f"<tr class='{cls}'><td>{e(c.quantity)}</td><td>{e(_fmt(c.expected))}</td>"
                     f"<td>{e(_fmt(c.measured))}</td><td>{e(c.tolerance)}</td>"
                     f"<td>{'yes' if c.passed else 'no'}</td><td>{e(c.note)}</td></tr>")
        h.append("</table>")
        if r.error:
            h.append(f"<pre class='fail'>{e(r.error)}</pre>")
        for f in r.figures:
            data = base64.b64encode((out / f).read_bytes()).decode()
            h.append(f"<img alt='{e(r.case.name)}' src='data:image/png;base64,{data}'>")
    h.append("</body></html>")
    html_path = out / "report.html"
    html_path.write_text("\n".join(h))
    return md_path, html_path
