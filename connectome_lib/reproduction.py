"""The reproduction report: a re-run's key numbers beside the committed ones.

After ``bash scripts/reproduce.sh`` (or ``connectome pipeline``) has exported a profile's results,
``connectome report --profile P`` reads the numbers that matter (final metrics per model type, the
effects of the claims) from this run's ``results/<profile>/`` and from the same files as the
repository's ``HEAD`` commits them (``git show HEAD:results/<profile>/...``; the export
overwrites the working copy, the commit keeps the reference), and marks each one:

* **identical** -- equal at the precision the files are written with (6 significant digits):
  the expected outcome on the same kind of CPU, since every step is seeded;
* **reproduced** -- different, but by no more than :data:`TOLERANCE_Z` standard errors of a
  difference between two independent runs (``sqrt(2) x`` the committed standard error over
  seeds or units). Another CPU kernel (AVX2, AVX-512, AMX) changes rounding, and over hundreds of
  iterations a rounding change can grow into a different trajectory; at worst it acts like
  drawing new seeds, and then two means of the same design differ by ``sqrt(2) SE`` on average.
  So the tolerance is what the run's own seed-to-seed spread allows, not a number chosen here;
* **differs** -- beyond that: something that shapes results changed (code, data, settings);
* **no spread** -- different, with a single seed or unit, so no tolerance can be measured;
* **new** / **missing** -- a number only one side has.

The report is written to ``<run_root>/reproduction.csv`` (this machine's run, never
committed) and the book's Reproduce page shows it when the book is built after a re-run.
"""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

import pandas as pd

from . import layout
from .registry import MEASURES

#: how many standard errors of a difference between two runs a reproduced number may move
TOLERANCE_Z = 3.0
#: relative precision of the exported files (``float_format="%.6g"``): closer is "identical"
EXPORT_RELATIVE_PRECISION = 5e-6
#: the report's file in a run folder
REPORT_FILE = "reproduction.csv"
STATUSES = ("identical", "reproduced", "differs", "no spread", "new", "missing")
COLUMNS = ["number", "committed", "this run", "difference", "tolerance", "status"]


def _reported_measures() -> list[tuple[str, str, str]]:
    """(task, metric, title) of every measure the report compares: the headline and claim
    measures that are rows of the results table (not the ones derived over training)."""
    return [(m.task, m.metric, m.title) for m in MEASURES
            if (m.headline or m.claim) and m.mean_over_training_of is None]


def key_numbers(summary: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """The numbers a reproduction is judged on, one row each: ``number`` (a name that says what
    it is), ``value`` and ``se`` (its standard error over seeds or units; NaN when unknown).

    From ``summary`` (``summary.csv``): each model type's final value of every headline or claim
    measure. From ``claims`` (``claims.csv``): every claim's effect, with the standard error its
    95 % interval implies."""
    rows = []
    if len(summary):
        wanted = {(t, m): title for t, m, title in _reported_measures()}
        for r in summary.itertuples(index=False):
            title = wanted.get((r.task, r.metric))
            if title is not None:
                rows.append({"number": f"{r.label}: {title}", "value": float(r.mean), "se": float(r.se)})
    if len(claims) and {"measure", "claim", "effect"} <= set(claims.columns):
        for r in claims.itertuples(index=False):
            se = math.nan
            if hasattr(r, "ci_low") and hasattr(r, "ci_high"):
                se = (float(r.ci_high) - float(r.ci_low)) / (2 * 1.959964)
            rows.append({"number": f"effect: {r.measure}, {r.claim}", "value": float(r.effect), "se": se})
    out = pd.DataFrame(rows, columns=["number", "value", "se"])
    return out.drop_duplicates("number").reset_index(drop=True)


def status(committed: float, current: float, se: float) -> tuple[str, float]:
    """The status of one number (see the module docstring) and the tolerance it was judged by."""
    if math.isnan(committed) and math.isnan(current):
        return "identical", 0.0
    if math.isnan(committed) or math.isnan(current):
        return "differs", math.nan
    diff = abs(current - committed)
    if diff <= EXPORT_RELATIVE_PRECISION * max(1.0, abs(committed)):
        return "identical", math.nan if math.isnan(se) else TOLERANCE_Z * math.sqrt(2) * se
    if math.isnan(se) or se <= 0:
        return "no spread", math.nan
    tol = TOLERANCE_Z * math.sqrt(2) * se
    return ("reproduced" if diff <= tol else "differs"), tol


def compare(committed: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """The report: every key number of either side (:func:`key_numbers` tables) with its status,
    judged by the committed standard error (the reference run's spread)."""
    c = committed.set_index("number")
    n = current.set_index("number")
    rows = []
    for name in list(c.index) + [i for i in n.index if i not in c.index]:
        if name not in n.index:
            rows.append([name, c.at[name, "value"], math.nan, math.nan, math.nan, "missing"])
        elif name not in c.index:
            rows.append([name, math.nan, n.at[name, "value"], math.nan, math.nan, "new"])
        else:
            a, b = float(c.at[name, "value"]), float(n.at[name, "value"])
            st, tol = status(a, b, float(c.at[name, "se"]))
            rows.append([name, a, b, b - a, tol, st])
    return pd.DataFrame(rows, columns=COLUMNS)


def committed_file(root: str | Path, relpath: str, ref: str = "HEAD") -> str | None:
    """The text of ``relpath`` as commit ``ref`` of the repository at ``root`` holds it (None
    when git is missing, ``root`` is no repository or the commit lacks the file)."""
    try:
        p = subprocess.run(["git", "show", f"{ref}:{relpath}"], cwd=root, capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout if p.returncode == 0 else None


def _read_csv_text(text: str | None) -> pd.DataFrame:
    if not text or not text.strip():
        return pd.DataFrame()
    return pd.read_csv(io.StringIO(text))


def committed_key_numbers(root: str | Path, results_dir: str | Path, ref: str = "HEAD") -> pd.DataFrame | None:
    """:func:`key_numbers` of the results that commit ``ref`` holds for ``results_dir`` (None when
    it holds none, e.g. a profile that was never committed)."""
    root = Path(root).resolve()
    try:
        rel = Path(results_dir).resolve().relative_to(root).as_posix()
    except ValueError:
        return None
    summary = committed_file(root, f"{rel}/summary.csv", ref)
    if summary is None:
        return None
    return key_numbers(_read_csv_text(summary), _read_csv_text(committed_file(root, f"{rel}/claims.csv", ref)))


def current_key_numbers(results_dir: str | Path) -> pd.DataFrame:
    """:func:`key_numbers` of the exported results in ``results_dir``
    (:func:`connectome_lib.export.load_results`, which refuses an incomplete folder)."""
    from .export import load_results

    res = load_results(results_dir)
    return key_numbers(res["summary"], res["claims"])


def write_report(report: pd.DataFrame, run_root: str | Path) -> Path:
    """Write the report to ``<run_root>/reproduction.csv`` (atomically)."""
    path = Path(run_root) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    layout.write_csv_atomic(report, path, float_format="%.6g")
    return path


def read_report(run_root: str | Path) -> pd.DataFrame | None:
    """The report a re-run on this machine wrote (None when there is none)."""
    path = Path(run_root) / REPORT_FILE
    return pd.read_csv(path) if path.exists() else None


def counts(report: pd.DataFrame) -> dict[str, int]:
    """How many numbers have each status (only the statuses that occur)."""
    vc = report["status"].value_counts()
    return {s: int(vc[s]) for s in STATUSES if s in vc}


def _fmt(x: float) -> str:
    return "" if isinstance(x, float) and math.isnan(x) else f"{x:.4g}"


def report_markdown(report: pd.DataFrame, max_rows: int | None = None) -> str:
    """The report as a Markdown table, with a first line that counts the statuses."""
    c = counts(report)
    head = ", ".join(f"{n} {s}" for s, n in c.items()) or "no numbers"
    lines = [f"{len(report)} numbers: {head}.", "",
             "| number | committed | this run | difference | tolerance | status |", "|---|---|---|---|---|---|"]
    shown = report if max_rows is None else report.head(max_rows)
    for r in shown.itertuples(index=False):
        lines.append(f"| {r.number} | {_fmt(r.committed)} | {_fmt(r[2])} | {_fmt(r.difference)} | "
                     f"{_fmt(r.tolerance)} | {r.status} |")
    return "\n".join(lines)


def make_report(root: str | Path, results_dir: str | Path, run_root: str | Path,
                ref: str = "HEAD") -> pd.DataFrame | None:
    """Compare ``results_dir`` with what commit ``ref`` holds there, write the report into the
    run folder and return it (None, writing nothing, when the commit holds no results there)."""
    reference = committed_key_numbers(root, results_dir, ref)
    if reference is None:
        return None
    report = compare(reference, current_key_numbers(results_dir))
    write_report(report, run_root)
    # and beside the results: committed with them, it records how this run compared with the
    # results it replaces (the Reproduce page of the committed book shows it)
    write_report(report, results_dir)
    return report


def book_markdown(profile: str | None = None) -> str:
    """The Reproduce page's section on this machine's re-run of the book's profile: the report
    :func:`make_report` wrote into its run folder, or how to make one."""
    from .book_support import book_profile
    from .config import load_profile, resolve_folders

    name = book_profile(profile)
    resolved = resolve_folders(load_profile(name))
    committed = read_report(resolved.results_dir)
    record = ("" if committed is None else
              f"When the results shown in this book were made, their run was compared in the same way with the "
              f"results committed before them (`results/{name}/{REPORT_FILE}`):\n\n" + report_markdown(committed)
              + "\n\n")
    report = read_report(resolved.run_root)
    # the page names the file by its place in the run folder, never by this machine's absolute path
    where = f"`<runs>/{name}/{REPORT_FILE}`"
    if report is None:
        return record + (f"This machine holds no re-run of the `{name}` profile ({where} is absent). "
                         "After `bash scripts/reproduce.sh` it does, and this section shows its numbers beside "
                         "the committed ones.")
    return record + (f"The report of this machine's run of the `{name}` profile ({where}), "
                     "against the committed `results/` (the repository's `HEAD`):\n\n" + report_markdown(report))
