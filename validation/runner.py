"""Run the validation cases and write the report (``python -m validation``).

The committed full-run report is regenerated from the repository root with
``python -m validation --out docs/validation``.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import inspect
import pkgutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import cases as _cases_pkg
from .case import Case, Check, Context
from .report import write_report


@dataclass
class CaseResult:
    case: Case
    checks: list[Check]
    seconds: float
    figures: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.checks) and all(c.passed for c in self.checks)


def discover() -> list[Case]:
    found = []
    for info in sorted(pkgutil.iter_modules(_cases_pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{_cases_pkg.__name__}.{info.name}")
        case = getattr(module, "CASE", None)
        if not isinstance(case, Case):
            raise TypeError(f"validation/cases/{info.name}.py must define CASE = Case(...)")
        if not case.description and module.__doc__:
            case.description = inspect.cleandoc(module.__doc__)
        found.append(case)
    return found


def run_case(case: Case, ctx: Context) -> CaseResult:
    ctx.figures = []
    start = time.perf_counter()
    try:
        checks = case.run(ctx)
        error = "" if checks else "the case returned no checks"
    except Exception:  # a crashing case is a failed case, reported with its traceback
        checks, error = [], traceback.format_exc()
    return CaseResult(case, checks, time.perf_counter() - start, list(ctx.figures), error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="the quick subset at reduced sizes (a few minutes on 2 cores)")
    parser.add_argument("--only", metavar="PATTERN", default=None,
                        help="run only cases whose name matches this glob pattern")
    parser.add_argument("--out", metavar="DIR", default="validation-report",
                        help="folder for report.md, report.html and figures (default: %(default)s)")
    parser.add_argument("--list", action="store_true",
                        help="print the case names (with --quick: the quick subset's; with "
                             "--only: those matching) and exit without running anything")
    args = parser.parse_args(argv)

    cases = discover()
    selected = [c for c in cases
                if (c.quick or not args.quick)
                and (args.only is None or fnmatch.fnmatch(c.name, args.only))]
    if args.list:
        for c in selected:
            print(c.name + ("" if c.quick else "  (full run only)"))
        return 0
    if not selected:
        # before the output folder is touched: a mistyped pattern must not empty it
        names = ", ".join(c.name for c in cases if c.quick or not args.quick)
        print(f"no validation case matches {args.only!r}"
              f"{' in the --quick subset' if args.quick else ''}; the cases are: {names} "
              "(--list prints them; a pattern is a glob, e.g. 'grid-*')", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"--out {args.out!r} is a file, not a folder: the report needs a folder for "
              "report.md, report.html and figures/; give a folder name", file=sys.stderr)
        return 2

    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    for old in (out / "figures").glob("*.png"):  # the report is rewritten whole: no stale figures
        old.unlink()
    ctx = Context(quick=args.quick, out=out)
    results = []
    width = len(str(len(selected)))
    for k, case in enumerate(selected, 1):
        print(f"[{k:>{width}}/{len(selected)}] {case.name} ...", flush=True)
        res = run_case(case, ctx)
        results.append(res)
        status = "PASS" if res.passed else "FAIL"
        print(f"[{status}] {case.name}: done in {res.seconds:.1f} s", flush=True)
        if res.error:
            print(res.error, file=sys.stderr)
        for c in res.checks:
            if not c.passed:
                print(f"    failed: {c.quantity}: expected {c.expected}, measured {c.measured}, "
                      f"tolerance {c.tolerance}", flush=True)
    command = "python -m validation" + (" --quick" if args.quick else "") + (
        f" --only '{args.only}'" if args.only else "") + f" --out {args.out}"
    md, html = write_report(results, out, quick=args.quick, command=command)
    n_fail = sum(not r.passed for r in results)
    total = sum(r.seconds for r in results)
    print(f"report: {md} and {html}")
    print(f"all cases: {total:.1f} s")
    print(f"{len(results) - n_fail} passed, {n_fail} failed")
    return 1 if n_fail else 0
