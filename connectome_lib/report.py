"""Gather a run's outputs into tidy tables, export them as small result files, and compare
them with the paper.

The book's results page is drawn at build time from the files :func:`export_results` writes
(``results/<profile>/``), never from the run folders (which hold model weights and stay out of
the repository).
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import layout

#: the files of an exported result folder and what they hold
RESULT_FILES = {
    "eval_results.csv": "every evaluation row: model, init, label, seed, iteration, task, metric, value, n",
    "training_curves.csv": "inner-loop learning curves: label, init, seed, iteration, tokens, train_loss, val_loss",
    "generation_curves.csv": "outer-loop learning curves: generation, iteration, tokens, train_loss, val_loss",
    "generation_density.csv": "density of every pruned tensor after each generation",
    "summary.csv": "final-model metrics, mean and standard error over seeds per model type",
    "provenance.json": "profile, hardware, software versions, date and commit that produced the numbers",
}


def generation_curves(run_root: str | Path) -> pd.DataFrame:
    """Outer-loop curves of every finished generation."""
    frames = []
    for d in sorted((Path(run_root) / "evolve").glob("gen_*")):
        if (d / "curve.csv").exists():
            f = pd.read_csv(d / "curve.csv")
            f.insert(0, "generation", int(d.name[4:]))
            frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def generation_density(run_root: str | Path) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in sorted((Path(run_root) / "evolve").glob("gen_*/density.csv"))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def training_curves(run_root: str | Path) -> pd.DataFrame:
    """Inner-loop curves of every training folder, labelled with init and seed."""
    frames = []
    for d in sorted((Path(run_root) / "develop").glob("*_s*")):
        if (d / "curve.csv").exists() and (d / "run.json").exists():
            info = layout.read_json(d / "run.json")
            f = pd.read_csv(d / "curve.csv")
            f.insert(0, "label", info["label"])
            f.insert(1, "init", info["init"])
            f.insert(2, "seed", info["seed"])
            frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def eval_results(run_root: str | Path) -> pd.DataFrame:
    path = layout.evals_dir(run_root) / "results.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(
        columns=["model", "init", "label", "seed", "iteration", "task", "metric", "value", "n"]
    )


def final_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of each model's last evaluated iteration for each task (the final model)."""
    if results.empty:
        return results
    last = results.groupby(["model", "task"])["iteration"].transform("max")
    return results[results["iteration"] == last]


def mean_se(df: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Mean, standard error over seeds (sd / sqrt(n); NaN for one seed) and n per group."""
    g = df.groupby(by, sort=False)[value]
    out = g.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n_seeds"])
    return out.drop(columns="sd")


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Final-model metrics per model type: mean and SE over seeds."""
    return mean_se(final_rows(results), ["label", "task", "metric"])


def _git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def export_results(ctx) -> Path:
    """Write the small result files of a run to ``ctx.results_dir`` (see :data:`RESULT_FILES`)."""
    import torch
    import transformers

    from .notebook import device_description

    out = Path(ctx.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = eval_results(ctx.run_root)
    tables = {
        "eval_results.csv": res,
        "training_curves.csv": training_curves(ctx.run_root),
        "generation_curves.csv": generation_curves(ctx.run_root),
        "generation_density.csv": generation_density(ctx.run_root),
        "summary.csv": summary(res),
    }
    for name, df in tables.items():
        df.to_csv(out / name, index=False, float_format="%.6g")
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
    """Read an exported result folder: one DataFrame per CSV, and the provenance dict."""
    d = Path(results_dir)
    if not (d / "provenance.json").exists():
        raise FileNotFoundError(
            f"no exported results in {d}: run the pipeline for this profile (connectome pipeline --profile ...)"
        )
    out: dict[str, pd.DataFrame | dict] = {}
    for name in RESULT_FILES:
        if name.endswith(".csv"):
            try:
                out[name[:-4]] = pd.read_csv(d / name)
            except pd.errors.EmptyDataError:
                out[name[:-4]] = pd.DataFrame()
    out["provenance"] = json.loads((d / "provenance.json").read_text())
    return out


def compare_with_paper(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Join our summary (label, task, metric, mean, se, n_seeds) with the paper's numbers
    (model, task, metric, value, se) on (model type, task, metric), for the final models."""
    p = paper.rename(columns={"model": "label", "value": "paper", "se": "paper_se"})
    if "iteration" in p:
        p = p[p["iteration"].isna()]
    if "layer" in p:
        p = p[p["layer"].isna()]
    o = ours.rename(columns={"mean": "ours", "se": "ours_se"})
    return p[["label", "task", "metric", "paper", "paper_se"]].merge(
        o[["label", "task", "metric", "ours", "ours_se", "n_seeds"]], on=["label", "task", "metric"], how="left"
    )


#: the measures of the paper's claim: (task, metric, higher is better, what it is)
CLAIM_MEASURES = [
    ("perplexity", "loss", False, "validation loss"),
    ("hellaswag", "acc_norm", True, "HellaSwag acc_norm"),
    ("mmlu", "acc", True, "MMLU accuracy"),
    ("blimp", "acc", True, "BLiMP accuracy (not in the paper)"),
    ("futrell2018", "r", True, "reading-time r"),
    ("tuckute2024", "r_best", True, "brain predictivity, best layer"),
    ("language_units", "r_top1pct", True, "brain predictivity, top 1% language units"),
    ("language_units", "r_top10pct", True, "brain predictivity, top 10% language units"),
]


def claim_table(summary_df: pd.DataFrame, measures=None, z: float = 2.0) -> pd.DataFrame:
    """Does the Connectome model beat or match each control on each measure?

    For each measure and control: the difference Connectome - control (signed so that positive
    is better for the Connectome model), its standard error sqrt(se_a^2 + se_b^2) from the seed
    SEs, and a verdict: ``better`` / ``worse`` when the difference exceeds ``z`` standard errors,
    else ``on par``; ``n/a`` when a model is missing; with one seed (no SE) the verdict says so.
    """
    rows = []
    s = summary_df.set_index(["label", "task", "metric"])
    for task, metric, higher, name in measures or CLAIM_MEASURES:
        for control in ("RandomConnectome", "NoConnectome"):
            try:
                a, b = s.loc[("Connectome", task, metric)], s.loc[(control, task, metric)]
            except KeyError:
                continue
            sign = 1.0 if higher else -1.0
            diff = sign * (a["mean"] - b["mean"])
            se = float(np.sqrt(np.nansum([a["se"] ** 2, b["se"] ** 2]))) if not (np.isnan(a["se"]) and np.isnan(b["se"])) else float("nan")
            if np.isnan(se) or se == 0:
                verdict = "better (1 seed)" if diff > 0 else "worse (1 seed)" if diff < 0 else "equal"
            else:
                verdict = "better" if diff > z * se else "worse" if diff < -z * se else "on par"
            rows.append({"measure": name, "vs": control, "Connectome": a["mean"], "control": b["mean"],
                         "advantage": diff, "se": se, "verdict": verdict})
    return pd.DataFrame(rows)


def book_results_dir(profile: str | None = None) -> Path:
    """The exported results the book shows: ``$CONNECTOME_RESULTS_DIR`` (default ``results/``)
    / ``$CONNECTOME_BOOK_PROFILE`` (default ``cpu``)."""
    import os

    from .notebook import project_root

    root = Path(os.environ.get("CONNECTOME_RESULTS_DIR") or project_root() / "results")
    return root / (profile or os.environ.get("CONNECTOME_BOOK_PROFILE") or "cpu")
