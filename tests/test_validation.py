"""The validation campaign's quick run passes and writes its report."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_validation_passes_and_writes_the_report(tmp_path):
    out = subprocess.run([sys.executable, "-m", "validation", "--quick", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.endswith(" 0 failed"), last
    md = (tmp_path / "report.md").read_text()
    assert "| case | quantity | expected | measured | tolerance | pass | note |" in md
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html


def test_runner_rejects_an_unknown_pattern(tmp_path):
    out = subprocess.run([sys.executable, "-m", "validation", "--only", "no-such-case*", "--out",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "no validation case matches" in out.stderr


def test_runner_leaves_the_output_folder_alone_when_nothing_matches(tmp_path, capsys):
    """A mistyped --only pattern deleted every figure of the --out folder (e.g. the committed
    docs/validation) before finding that no case matched; now the folder is untouched and the
    message lists the case names.  --out naming a file is refused without a traceback."""
    sys.path.insert(0, str(ROOT))
    try:
        from validation import runner
    finally:
        sys.path.remove(str(ROOT))
    (tmp_path / "figures").mkdir()
    kept = tmp_path / "figures" / "committed.png"
    kept.write_bytes(b"png")
    assert runner.main(["--only", "grid_exit_times", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert kept.exists()
    assert "no validation case matches 'grid_exit_times'" in err and "grid-exit-times" in err
    assert runner.main(["--list", "--only", "grid-*"]) == 0
    listed = capsys.readouterr().out.split()
    assert "grid-exit-times" in listed and all(n.startswith("grid-") for n in listed)
    a_file = tmp_path / "report.txt"
    a_file.write_text("x")
    assert runner.main(["--only", "testing-toolkit*", "--out", str(a_file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_runner_exits_nonzero_and_reports_a_failing_case(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(ROOT))
    try:
        from validation import runner
        from validation.case import Case, Check
    finally:
        sys.path.remove(str(ROOT))

    def bad(ctx):
        return [Check.close("one plus one", 2.0, 3.0, atol=0.1, why="arithmetic")]

    def crash(ctx):
        raise RuntimeError("case crashed")

    monkeypatch.setattr(runner, "discover", lambda: [Case("bad-case", "none", "none", bad),
                                                     Case("crash-case", "none", "none", crash)])
    rc = runner.main(["--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert out.strip().splitlines()[-1] == "0 passed, 2 failed"
    assert "failed: one plus one" in out
    md = (tmp_path / "report.md").read_text()
    assert "**no**" in md and "crash-case" in md


def test_runner_prints_each_case_as_it_starts_and_its_time_as_it_ends(tmp_path, monkeypatch,
                                                                       capsys):
    sys.path.insert(0, str(ROOT))
    try:
        from validation import runner
        from validation.case import Case, Check
    finally:
        sys.path.remove(str(ROOT))
    seen = []

    def first(ctx):
        seen.append(capsys.readouterr().out)  # what was printed before the case ran
        return [Check.close("two", 2.0, 2.0, atol=0.0)]

    def second(ctx):
        seen.append(capsys.readouterr().out)
        return [Check.close("three", 3.0, 3.0, atol=0.0)]

    monkeypatch.setattr(runner, "discover", lambda: [Case("first-case", "none", "none", first),
                                                     Case("second-case", "none", "none", second)])
    assert runner.main(["--out", str(tmp_path)]) == 0
    rest = capsys.readouterr().out
    assert seen[0].strip() == "[1/2] first-case ..."
    assert re.fullmatch(r"\[PASS\] first-case: done in \d+\.\d s\n\[2/2\] second-case \.\.\.\n",
                        seen[1]), seen[1]
    assert re.match(r"\[PASS\] second-case: done in \d+\.\d s\n", rest), rest
    assert rest.strip().splitlines()[-1] == "2 passed, 0 failed"
