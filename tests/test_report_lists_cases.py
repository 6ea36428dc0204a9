"""The committed full validation report lists every registered case (and only those).

The report in ``docs/validation/`` is written by ``python -m validation --out docs/validation``
(the full campaign, from the repository root); a case added, renamed or removed since then makes
these tests fail until the report is regenerated with that command.  Nothing is run here: the
cases are only discovered (their modules imported) and the committed files read.
"""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "docs" / "validation"
REGENERATE = "python -m validation --out docs/validation"


def _registered_names() -> list[str]:
    sys.path.insert(0, str(ROOT))
    try:
        from validation.runner import discover
    finally:
        sys.path.remove(str(ROOT))
    return [case.name for case in discover()]


@pytest.fixture(scope="module")
def registered() -> list[str]:
    names = _registered_names()
    assert len(names) == len(set(names)), f"two validation cases share a name: {sorted(names)}"
    return names


@pytest.fixture(scope="module")
def report_md() -> str:
    return (REPORT_DIR / "report.md").read_text()


def _sections(md: str) -> list[str]:
    """The case sections of a report.md: its level-2 headings but the summary's."""
    return [h for h in re.findall(r"^## (.+)$", md, re.M) if h != "Cases"]


def test_committed_report_is_a_full_run(report_md):
    first = report_md.splitlines()[0]
    assert first == "# fpgen validation report", (
        f"docs/validation/report.md starts with {first!r}: it must be the full campaign's "
        f"report (not --quick, not --only); regenerate it with `{REGENERATE}`")
    assert f"Regenerate: `{REGENERATE}`" in report_md


def test_committed_report_lists_every_registered_case(registered, report_md):
    html = (REPORT_DIR / "report.html").read_text()
    listed = set(_sections(report_md))
    missing_md = [n for n in registered if n not in listed]
    missing_html = [n for n in registered if f"id='{n}'" not in html]
    assert not missing_md and not missing_html, (
        f"validation cases missing from the committed report: report.md {missing_md}, "
        f"report.html {missing_html}; regenerate it with `{REGENERATE}` (the full campaign)")


def test_committed_report_lists_no_unregistered_case(registered, report_md):
    stale = [n for n in _sections(report_md) if n not in registered]
    assert not stale, (
        f"docs/validation/report.md lists cases that are not registered any more: {stale}; "
        f"regenerate it with `{REGENERATE}`")


def test_committed_report_figures_exist(report_md):
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report_md)
    absent = [f for f in figures if not (REPORT_DIR / f).is_file()]
    assert figures and not absent, f"report.md names figures that are not committed: {absent}"
