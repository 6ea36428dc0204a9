"""The README stays true: its commands match .ci/run and its code snippets run."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    return [line.strip() for line in block.strip().splitlines()]


def test_readme_starts_with_the_two_commands():
    cmds = _commands()
    assert len(cmds) == 2
    assert README.lstrip().startswith("# fpgen\n\n```bash")
    assert cmds[0].endswith("python -m validation --quick")
    # the campaign includes a learned reversal: torch (version pinned) before the learn extra
    assert "torch==2.13.0" in cmds[0] and ".[learn]" in cmds[0]
    assert cmds[0].index("torch==2.13.0") < cmds[0].index(".[learn]")
    assert "pytest" in cmds[1] and "torch==2.13.0" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _commands()[1] in ci


SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize("i", range(len(SNIPPETS)))
def test_readme_snippet_runs(i, capsys):
    exec(compile(SNIPPETS[i], f"README snippet {i}", "exec"), {"__name__": "__main__"})
