"""The self-contained code blocks of the conditioning and guidance pages run as written (a
block that starts its own imports is a promise to the reader that it runs; API sketches with
placeholder names do not import fpgen and are left out)."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCKS = [(page, i, code)
          for page in ("conditioning.md", "guidance.md")
          for i, code in enumerate(re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(),
                                              re.S))
          if "import fpgen" in code or "import numpy as np, fpgen" in code]


def test_the_pages_have_runnable_blocks():
    assert {page for page, _, _ in BLOCKS} == {"conditioning.md", "guidance.md"}


@pytest.mark.parametrize("page, i, code", BLOCKS, ids=[f"{p}-{i}" for p, i, _ in BLOCKS])
def test_docs_block_runs(page, i, code, capsys):
    exec(compile(code, f"docs/{page} block {i}", "exec"), {"__name__": "__main__"})
