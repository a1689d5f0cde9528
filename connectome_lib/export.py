"""Export a run's results as the small files the book shows, and read them back.

The book's Findings page is drawn at build time from the files :func:`export_results` writes
(``results/<profile>/``), never from the run folders (which hold model weights and stay out of
the repository).
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd
import torch
import transformers

from . import layout
from .notebook import device_description
from .readers import eval_results, final_summary, generation_curves, generation_density, training_curves
from .verdicts import claim_summary, item_outcomes, verdict_table

#: the files of an exported result folder and what they hold
RESULT_FILES = {
    "eval_results.csv": "every evaluation row: model, init, label, seed, iteration, task, metric, value, n",
    "training_curves.csv": "inner-loop learning curves: label, init, seed, iteration, tokens, train_loss, val_loss",
    "generation_curves.csv": "outer-loop learning curves: generation, iteration, tokens, train_loss, val_loss",
    "generation_density.csv": "density of every pruned tensor after each generation",
    "summary.csv": "final-model metrics, mean and standard error over seeds per model type",
    "items.csv.gz": "per-item outcomes of the final models (measure, label, seed, item, value, target)",
    "verdicts.csv": "every pair of model types on every measure: paired tests on the same items, Holm-adjusted",
    "claims.csv": "the paper's claim (Connectome >= each control) per measure: "
                  "holds / does not hold / cannot be told apart",
    "provenance.json": "profile, hardware, software versions, date and commit that produced the numbers",
}


def _git_commit(root: str | Path) -> str:
    """The short commit hash of the repository at ``root`` ("" when git cannot tell)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def export_results(ctx) -> Path:
    """Write the small result files of a run to ``ctx.results_dir`` (see :data:`RESULT_FILES`)."""
    out = Path(ctx.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = eval_results(ctx.run_root)
    items = item_outcomes(ctx.run_root, res)
    verdicts = verdict_table(items)
    tables = {
        "items.csv.gz": items,
        "verdicts.csv": verdicts,
        "claims.csv": claim_summary(verdicts) if len(verdicts) else pd.DataFrame(),
        "eval_results.csv": res,
        "training_curves.csv": training_curves(ctx.run_root),
        "generation_curves.csv": generation_curves(ctx.run_root),
        "generation_density.csv": generation_density(ctx.run_root),
        "summary.csv": final_summary(res),
    }
    for name, df in tables.items():
        layout.write_csv_atomic(df, out / name, float_format="%.6g")  # temporary file, then rename
    provenance = {
        "profile": ctx.profile.name,
        "description": ctx.profile.description,
        "hardware": device_description(),
        "profile_hardware": ctx.profile.hardware,
        "date": time.strftime("%Y-%m-%d"),
        "commit": _git_commit(ctx.root),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "config": ctx.profile.to_dict(),
    }
    layout.write_json_atomic(out / "provenance.json", provenance)
    return out


def load_results(results_dir: str | Path) -> dict[str, pd.DataFrame | dict]:
    """Read an exported result folder: one DataFrame per CSV (keyed by its name without the
    extension, e.g. ``summary``), and the provenance dict (``provenance``)."""
    d = Path(results_dir)
    if not (d / "provenance.json").exists():
        raise FileNotFoundError(
            f"no exported results in {d}: run the pipeline for this profile (connectome pipeline --profile ...)"
        )
    out: dict[str, pd.DataFrame | dict] = {}
    for name in RESULT_FILES:
        if name.endswith((".csv", ".csv.gz")):
            key = name.split(".", 1)[0]
            try:
                out[key] = pd.read_csv(d / name) if (d / name).exists() else pd.DataFrame()
            except pd.errors.EmptyDataError:
                out[key] = pd.DataFrame()
    out["provenance"] = json.loads((d / "provenance.json").read_text())
    return out
