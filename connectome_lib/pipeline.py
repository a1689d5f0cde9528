"""Run the stage notebooks in order through papermill, for a profile, resumably.

Each stage notebook in ``notebooks/`` is executed with the parameters ``profile`` and
``overrides`` and written to the output folder (by default ``book/stages/``, where the book
renders it). A stage is skipped (:func:`stage_is_current`) only if its executed notebook exists
for the same parameters, resolved profile and notebook source (:func:`stage_fingerprint`) *and*
this machine's run folders hold every step whose results it shows, done
(:mod:`connectome_lib.plan`): a stopped pipeline resumes, and a committed page never stands in
for a run made here. The library stages inside the notebooks are resumable too, so re-running
an interrupted stage only redoes what is missing. Executed notebooks are written under a temporary
name and renamed on success: a failed stage leaves no output that would be mistaken for a
finished one. Its partial notebook is kept as ``*.failed.ipynb``, the page of an earlier run is
marked out of date (a warning at its top, no stage fingerprint: :func:`mark_out_of_date`), and the
error (:class:`StageFailedError`) names the stage, the failing cell and the partial notebook.

Parameters are checked before anything runs: an unknown notebook parameter, a misspelt
override or an unknown profile is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, load_profile, resolve_folders
from .fingerprint import data_settings, fingerprint, is_current, train_settings
from .notebook import project_root
from .timings import record_stage


@dataclass(frozen=True)
class Stage:
    """A stage notebook, and the groups of steps (:func:`connectome_lib.plan.step_group`) whose
    results it shows: it is skipped only while this machine's run folders hold them all, done."""

    key: str
    notebook: str
    title: str
    shows: tuple[str, ...] = ()


#: what the pipeline prints for a stage it skips
SKIPPED = "skipped (executed with these settings and this notebook; its steps are done in this machine's run folders)"
_EVERY = ("evolve", "develop", "ablation", "evaluate", "evaluate-ablations")
STAGES: tuple[Stage, ...] = (
    Stage("data", "01_data.ipynb", "Data"),
    Stage("evolution", "02_evolution.ipynb", "Outer loop: evolving the connectome", ("evolve",)),
    Stage("development", "03_development.ipynb", "Inner loop: three kinds of models", ("evolve", "develop")),
    Stage("controls", "04_controls.ipynb", "The connectome and its controls", ("evolve",)),
    Stage("nlp", "05_nlp.ipynb", "NLP evaluations", ("develop", "evaluate")),
    Stage("behaviour", "06_behaviour.ipynb", "Behaviour: reading times", ("develop", "evaluate")),
    Stage("brain", "07_brain.ipynb", "Brain: fMRI predictivity", ("develop", "evaluate")),
    Stage("ablations", "08_ablations.ipynb", "Which part of the connectome carries the effect",
          ("ablation", "evaluate-ablations")),
    Stage("results", "09_results.ipynb", "Results", _EVERY),
)
STAGE_KEYS = tuple(s.key for s in STAGES)


def stage_by_key(key: str) -> Stage:
    for s in STAGES:
        if s.key == key or s.notebook.removesuffix(".ipynb") == key:
            return s
    raise ConfigError(f"unknown stage {key!r}; stages: {', '.join(STAGE_KEYS)}")


def check_parameters(notebook: Path, parameters: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` if a parameter is not declared in the notebook's parameters cell."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ConfigError(f"{notebook.name}: unknown parameter(s) {unknown}; declared: {sorted(declared)}")


def _executed_metadata(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The papermill parameters and the stage fingerprint an executed notebook recorded."""
    try:
        meta = json.loads(path.read_text())["metadata"]
        return meta.get("papermill", {}).get("parameters"), (meta.get("connectome") or {}).get("stage_fingerprint")
    except (OSError, ValueError, KeyError):
        return None, None


def _is_out_of_date(path: Path) -> bool:
    """Whether an executed notebook was marked out of date by a failed run (:func:`mark_out_of_date`)."""
    try:
        return OUT_OF_DATE in (json.loads(path.read_text())["metadata"].get("connectome") or {})
    except (OSError, ValueError, KeyError, AttributeError):
        return False


def stage_fingerprint(profile, notebook: Path) -> str:
    """What an executed stage notebook depends on: the resolved profile (its settings, not where
    files are; the training settings as the steps fingerprint them, so logging, saving cadence,
    compilation and the split of the batch do not count) and the notebook's source. The same
    profile *name* with other settings, or an edited notebook, is another stage run, never one
    to skip."""
    settings = profile.to_dict()
    settings.pop("runs_dir", None)
    settings["data"] = data_settings(profile.data)
    # the same normalisation as the steps' fingerprints: a stage page shows what its steps hold
    settings["evolve"]["train"] = train_settings(profile.evolve.train)
    settings["develop"]["train"] = train_settings(profile.develop.train)
    settings["ablations"].pop("keep_checkpoints", None)
    cells = json.loads(notebook.read_text())["cells"]
    source = [c.get("source") for c in cells]
    return fingerprint({"profile": settings, "notebook": source})


def tag_for_book(path: str | os.PathLike, stage_fp: str | None = None) -> None:
    """Mark an executed stage notebook for reading as a chapter: the ``parameters`` cell and
    papermill's injected copy are removed from the rendered page (the run's parameters are in
    the notebook's metadata and printed by the set-up cell), and every other code cell shows
    its output with the input collapsed (``hide-input``). nbval ignores these tags.
    ``stage_fp`` (:func:`stage_fingerprint`) is recorded in the notebook's metadata."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    if stage_fp:
        nb.metadata.setdefault("connectome", {})["stage_fingerprint"] = stage_fp
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        extra = "remove-cell" if {"parameters", "injected-parameters"} & set(tags) else "hide-input"
        if extra not in tags:
            cell.metadata["tags"] = tags + [extra]
    nbformat.write(nb, str(path))


def stage_is_current(stage: Stage, profile: str, overrides: dict[str, Any], out: Path,
                     src: Path) -> tuple[bool, str]:
    """Whether the executed notebook ``out`` can stand for this stage -- and if not, why: it was
    executed with the same parameters, resolved profile and notebook source
    (:func:`stage_fingerprint`), *and* this machine's run folders hold every step whose results
    it shows, finished with these settings (so a committed page is never mistaken for a run
    made here)."""
    from .config import resolve_folders
    from .plan import plan, step_group

    loaded = load_profile(profile, overrides)  # fails fast when bad
    if not out.exists():
        return False, "not executed yet"
    recorded_parameters, recorded_fp = _executed_metadata(out)
    if _is_out_of_date(out):
        return False, "the last run of this stage failed (the page is from an earlier run)"
    if recorded_parameters != {"profile": profile, "overrides": overrides}:
        return False, "executed with other parameters"
    if not is_current({"fingerprint": recorded_fp}, stage_fingerprint(loaded, src)):
        return False, "executed with other settings or another notebook source"
    if stage.shows:
        resolved = resolve_folders(loaded, overrides=overrides).profile
        missing = [s.id for s in plan(resolved) if step_group(s.id) in stage.shows and s.status != "done"]
        if missing:
            return False, (f"the run folders under {resolved.run_root} lack {len(missing)} finished step(s) it shows "
                           f"({missing[0]}{' ...' if len(missing) > 1 else ''})")
    return True, "executed with these settings and this notebook, its steps done in this machine's run folders"


def run_stage(
    stage: str | Stage,
    profile: str = "cpu",
    overrides: dict[str, Any] | None = None,
    out_dir: str | os.PathLike | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    force: bool = False,
    log_output: bool = False,
    progress: bool = True,
) -> tuple[Path, bool]:
    """Execute one stage notebook; return (executed notebook path, whether it ran)."""
    import papermill

    stage = stage if isinstance(stage, Stage) else stage_by_key(stage)
    root = project_root()
    src = Path(notebooks_dir or root / "notebooks") / stage.notebook
    out = Path(out_dir or root / "book" / "stages") / stage.notebook
    parameters = {"profile": profile, "overrides": dict(overrides or {})}
    check_parameters(src, parameters)
    if not force and stage_is_current(stage, profile, parameters["overrides"], out, src)[0]:
        return out, False
    stage_fp = stage_fingerprint(load_profile(profile, parameters["overrides"]), src)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".running.ipynb")
    failed = failed_path(out)
    try:
        papermill.execute_notebook(
            str(src), str(tmp), parameters=parameters, kernel_name="python3", cwd=str(root),
            log_output=log_output, progress_bar=progress,
        )
    except BaseException as e:
        kept = tmp.exists()
        if kept:
            os.replace(tmp, failed)
        marked = out.exists() and mark_out_of_date(out, stage, failed if kept else None)
        if isinstance(e, Exception):
            raise stage_failure(stage, e, failed if kept else None, out if marked else None) from e
        raise
    tag_for_book(tmp, stage_fp)
    os.replace(tmp, out)
    if failed.exists():
        failed.unlink()
    return out, True


class StageFailedError(RuntimeError):
    """A stage notebook failed: the message names the stage, the failing cell and error, where
    the partial executed notebook is, and what became of the page of an earlier run."""


def failed_path(out: Path) -> Path:
    """Where the partial executed notebook of a failed stage is kept: ``<stem>.failed.ipynb``."""
    return out.with_name(out.stem + ".failed.ipynb")


def stage_failure(stage: Stage, error: Exception, failed: Path | None, marked: Path | None) -> StageFailedError:
    """The one-line error of a failed stage (papermill's names the cell only); ``failed``: its
    partial notebook, ``marked``: the earlier page marked out of date (if any)."""
    if hasattr(error, "ename") and hasattr(error, "evalue"):  # papermill.PapermillExecutionError
        what = f"cell [{getattr(error, 'exec_count', '?')}] raised {error.ename}: {' '.join(str(error.evalue).split())}"
    else:
        what = f"{type(error).__name__}: {' '.join(str(error).split())}"
    partial = f"its partial output is {failed}" if failed is not None else "it left no partial output"
    previous = f"; the earlier page {marked} is marked out of date" if marked is not None else ""
    return StageFailedError(f"stage {stage.key} ({stage.notebook}) failed: {what}; {partial}{previous}; fix the "
                            f"cause and run `connectome pipeline --stages {stage.key}` again")


#: the metadata key of a page a later run of its stage failed to replace
OUT_OF_DATE = "out_of_date"


def mark_out_of_date(out: Path, stage: Stage, failed: Path | None) -> bool:
    """Mark the page of an earlier run of a stage whose new run failed, so that it never passes
    for current: a warning cell at its top, and no stage fingerprint (so the stage runs again).
    Written to a temporary file and renamed; a page that is no notebook is left as it is (it
    passes for nothing anyway). Return whether the page was marked."""
    import nbformat

    try:
        nb = nbformat.read(str(out), as_version=4)
    except Exception:  # noqa: BLE001 - not a notebook: nothing to mark, the stage runs again anyway
        return False
    nb.metadata.setdefault("connectome", {}).pop("stage_fingerprint", None)
    nb.metadata["connectome"][OUT_OF_DATE] = {"failed": str(failed) if failed else None,
                                              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    where = f" Its partial output is in `{failed.name}`." if failed is not None else ""
    warning = nbformat.v4.new_markdown_cell(
        f"```{{warning}}\nOut of date: the last run of the stage **{stage.key}** failed, so this page is from an "
        f"earlier run and does not show the current settings or code.{where}\n```",
        metadata={"tags": [OUT_OF_DATE]})
    nb.cells = [warning] + [c for c in nb.cells if OUT_OF_DATE not in c.get("metadata", {}).get("tags", [])]
    tmp = out.with_name(out.stem + ".marking.ipynb")
    try:
        nbformat.write(nb, str(tmp))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return True


def run_pipeline(
    profile: str = "cpu",
    overrides: dict[str, Any] | None = None,
    stages: list[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    force: bool = False,
    log_output: bool = False,
) -> list[Path]:
    """Run the stages (all, in order, by default); skip those already executed with the same
    parameters unless ``force``."""
    chosen = [stage_by_key(s) for s in stages] if stages else list(STAGES)
    for s in chosen:  # validate everything before the first (long) stage starts
        check_parameters(project_root() / "notebooks" / s.notebook, {"profile": profile, "overrides": overrides or {}})
    # the run folder the notebooks use (the same resolution of flags, overrides and environment)
    run_root = resolve_folders(load_profile(profile, dict(overrides or {})), overrides=dict(overrides or {})).run_root
    paths = []
    for s in chosen:
        t0 = time.time()
        path, ran = run_stage(s, profile, overrides, out_dir, force=force, log_output=log_output)
        if ran:
            record_stage(run_root, s.key, time.time() - t0)
        what = f"ran in {time.time() - t0:.0f} s" if ran else SKIPPED
        print(f"[{s.key:11s}] {what} -> {path}", flush=True)
        paths.append(path)
    return paths


def build_book(root: str | os.PathLike | None = None, strict: bool = True) -> int:
    """Build the Jupyter Book (HTML) with warnings treated as errors; return the exit code."""
    root = Path(root or project_root())
    cmd = [sys.executable, "-m", "jupyter_book", "build", str(root), "--keep-going"]
    if strict:
        cmd.insert(5, "--warningiserror")
    return subprocess.call(cmd)


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    from .config import parse_override

    return dict(parse_override(i) for i in items)


def _cmd_pipeline(args: argparse.Namespace) -> int:
    overrides = _parse_overrides(args.overrides)
    run_pipeline(args.profile, overrides, args.stages, args.out_dir, force=args.force, log_output=args.log_output)
    if args.build_book:
        os.environ["CONNECTOME_BOOK_PROFILE"] = args.profile  # the results page shows this profile's run
        return build_book()
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``connectome pipeline`` on the top-level CLI."""
    p = subparsers.add_parser(
        "pipeline",
        help="run the stage notebooks (papermill) for a profile and optionally build the book",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--profile", default="cpu", help="profile name or YAML path (default: cpu)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile field by dotted name (repeatable), passed to every notebook")
    p.add_argument("--stages", nargs="+", choices=STAGE_KEYS, metavar="STAGE",
                   help=f"run only these stages, in pipeline order ({', '.join(STAGE_KEYS)})")
    p.add_argument("--out-dir", help="where executed notebooks go (default: book/stages)")
    p.add_argument("--force", action="store_true", help="re-execute stages even if already executed")
    p.add_argument("--log-output", action="store_true", help="stream the notebooks' output to the terminal")
    p.add_argument("--build-book", action="store_true", help="build the Jupyter Book afterwards (warnings are errors)")
    p.set_defaults(func=_cmd_pipeline)
    return p
