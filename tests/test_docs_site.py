"""The documentation site's gallery shows every example and every committed example figure.

(`python -m sphinx -W -b html docs docs/_build/html`, run by .ci/run, checks the rest: every
page in a toctree, every link and image resolving, every docstring well formed.)
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GALLERY = (ROOT / "docs" / "gallery.md").read_text()


def test_gallery_names_every_example_script():
    scripts = sorted(p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
    missing = [s for s in scripts if f"(`{s}`)" not in GALLERY]
    assert scripts and not missing, f"docs/gallery.md has no section for {missing}"


def test_gallery_shows_every_committed_figure():
    figures = sorted(p.name for p in (ROOT / "docs" / "examples").iterdir()
                     if p.suffix in (".png", ".gif"))
    shown = set(re.findall(r"!\[[^\]]*\]\(examples/([^)]+)\)", GALLERY))  # images only
    missing = [f for f in figures if f not in shown]
    absent = sorted(shown - set(figures))
    assert figures and not missing and not absent, (
        f"docs/gallery.md: committed figures not shown {missing}, shown but not committed {absent}")


def test_the_docs_extra_and_ci_build_the_site():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^docs = \[.*"sphinx>=[0-9.]+".*"myst-parser>=[0-9.]+".*\]$', pyproject, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m sphinx -W -b html docs docs/_build/html" in ci
    assert ci.index("python -m pytest") < ci.index("python -m sphinx")
