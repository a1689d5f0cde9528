"""How long a run took, measured by the run itself (never typed in by hand).

Two sources, both in the run folder (``<runs_dir>/<profile>/``):

* ``stage_seconds.json``, written by ``connectome pipeline`` after every stage it *executes*
  (:func:`record_stage`; a skipped stage keeps the time of the run that executed it);
* every finished training step's ``done.json`` (its ``seconds`` field, written by
  :func:`~connectome_lib.step.run_training_step`): the outer-loop generations, the inner-loop
  models and the ablation models.

``connectome timings --profile P --total-seconds S`` (called by ``scripts/reproduce.sh`` with the
script's own wall time) gathers both with :func:`collect` into ``results/<profile>/timings.json``,
beside the exported results; the book's Findings and Reproduce pages read it from there
(:func:`connectome_lib.findings.timings_markdown`).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from . import layout

#: the run folder's record of stage wall times
STAGE_FILE = "stage_seconds.json"
#: the results file :func:`write` makes
TIMINGS_FILE = "timings.json"
#: step kinds: (name in the table, folder glob under the run root)
STEP_KINDS = (("outer-loop generations", "evolve/*/gen_*"), ("inner-loop models", "develop/*"),
              ("ablation models", "ablations/*"))


def record_stage(run_root: str | os.PathLike, stage: str, seconds: float) -> None:
    """Record that ``stage`` was executed in ``seconds`` (replacing an earlier record of it)."""
    path = Path(run_root) / STAGE_FILE
    recorded = layout.read_json(path) if path.exists() else {}
    recorded[stage] = round(float(seconds), 1)
    Path(run_root).mkdir(parents=True, exist_ok=True)
    layout.write_json_atomic(path, recorded)


def step_seconds(run_root: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Per kind of training step with at least one finished step: count, sum, median, min and
    max of the ``seconds`` its ``done.json`` files record."""
    out = {}
    for name, pattern in STEP_KINDS:
        seconds = []
        for folder in sorted(Path(run_root).glob(pattern)):
            if layout.is_done(folder):
                s = layout.read_json(folder / "done.json").get("seconds")
                if s is not None:
                    seconds.append(float(s))
        if seconds:
            out[name] = {"count": len(seconds), "seconds_sum": round(sum(seconds), 1),
                         "seconds_median": round(statistics.median(seconds), 1),
                         "seconds_min": min(seconds), "seconds_max": max(seconds)}
    return out


def collect(run_root: str | os.PathLike, command: str, commit: str, total_seconds: float | None = None,
            note: str | None = None) -> dict[str, Any]:
    """The timings of the run in ``run_root``: the stages' wall times (in pipeline order, as
    recorded), the training steps' (:func:`step_seconds`) and, when given, the whole command's
    ``total_seconds`` (set-up included, book build excluded) and a ``note``. (The JSON files
    keep stages sorted by name; :func:`connectome_lib.findings.timings_markdown` shows them in
    the pipeline's order.)"""
    path = Path(run_root) / STAGE_FILE
    stages = layout.read_json(path) if path.exists() else {}
    out: dict[str, Any] = {"command": command, "commit": commit}
    if total_seconds is not None:
        out["total_seconds"] = round(float(total_seconds))
    out["stage_seconds"] = stages
    out["step_seconds"] = step_seconds(run_root)
    if note:
        out["note"] = note
    return out


def with_second_pass(first: dict[str, Any], second: dict[str, Any], what: str) -> dict[str, Any]:
    """The timings ``first`` of a run whose stage pages were executed again (``second``, from
    :func:`collect` after that pass; its steps were reused, so only its stage times are new),
    with the second pass recorded under ``second_pass`` and what it was for (``what``)."""
    return {**first, "second_pass": {"commit": second["commit"], "total_seconds": second.get("total_seconds"),
                                     "stage_seconds": second["stage_seconds"], "what": what}}


def write(results_dir: str | os.PathLike, timings: dict[str, Any]) -> Path:
    """Write ``timings`` to ``<results_dir>/timings.json`` (atomically)."""
    path = Path(results_dir) / TIMINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    layout.write_json_atomic(path, timings)
    return path
