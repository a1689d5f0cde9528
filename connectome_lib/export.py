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

from . import effects, layout
from .notebook import device_description
from .paper_numbers import paper_results
from .readers import (
    baseline_means,
    eval_results,
    final_summary,
    generation_curves,
    generation_density,
    model_units,
    training_curves,
)
from .verdicts import claim_table, item_outcomes, model_values, placebo_summary

#: the files of an exported result folder and what they hold
RESULT_FILES = {
    "eval_results.csv": "every evaluation row: model, init, label, seed, iteration, task, metric, value, n",
    "training_curves.csv": "inner-loop learning curves: label, init, seed, iteration, tokens, train_loss, val_loss",
    "generation_curves.csv": "outer-loop learning curves: generation, iteration, tokens, train_loss, val_loss",
    "generation_density.csv": "density of every pruned tensor after each generation",
    "summary.csv": "final-model metrics, mean and standard error over seeds per model type",
    "items.csv.gz": "per-item outcomes of the final models (measure, label, seed, model, item, value, target)",
    "units.csv": "every inner-loop model with its unit of replication: model, label, init, seed, lineage, unit",
    "model_values.csv": "one value per model and tested measure (final, or mean over training), with its unit",
    "claims.csv": "the paper's claim (Connectome >= each control) per measure, tested across units: effect, "
                  "95 % CI, exact p, placebo, holds / does not hold / cannot be told apart / not testable",
    "placebo.csv": "the same test between halves of one model type's units, per measure and type",
    "book_losses.csv": "each model's mean validation loss per validation book",
    "book_gaps.csv": "per validation book: Connectome minus each control, over unit means, 95 % CI",
    "gap_over_training.csv": "validation-loss gap (Connectome minus each control) per inner-loop iteration, "
                             "ours over unit means and the paper's",
    "tokens_to_target.csv": "tokens each Connectome lineage needs to reach NoConnectome's final loss",
    "lineage_overlap.csv": "survivors shared by the final connectomes of two lineages, against chance",
    "provenance.json": "profile, hardware, software versions, date and commit that produced the numbers",
}


#: columns read back with a fixed type: a cluster is a label (a book index, a subject, a paradigm),
#: never a number, so one column holding both reads the same whatever its first rows hold
READ_DTYPES: dict[str, dict[str, type]] = {"items.csv.gz": {"cluster": str}}


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
    units = model_units(ctx.run_root)
    res = res.merge(units[["model", "lineage", "unit"]], on="model", how="left") if len(res) else res
    items = item_outcomes(ctx.run_root, res)
    books = _window_books(ctx.profile, items)
    items = _with_books(items, books)
    values = model_values(res, units)
    summary = final_summary(res)
    degenerate = summary[summary["metric"] == "degenerate"] if len(summary) else None
    curves = training_curves(ctx.run_root)
    losses = _book_losses(ctx.profile, items, units, books)
    tables = {
        "items.csv.gz": items,
        "units.csv": units,
        "model_values.csv": values,
        "claims.csv": claim_table(values, degenerate, baseline_means(res) if len(res) else None),
        "placebo.csv": placebo_summary(values),
        "book_losses.csv": losses,
        "book_gaps.csv": effects.book_gaps(losses),
        "gap_over_training.csv": effects.gap_over_training(curves, paper_results()),
        "tokens_to_target.csv": effects.tokens_to_target(curves),
        "lineage_overlap.csv": _lineage_overlap(ctx.profile),
        "eval_results.csv": res,
        "training_curves.csv": curves,
        "generation_curves.csv": generation_curves(ctx.run_root),
        "generation_density.csv": generation_density(ctx.run_root),
        "summary.csv": summary,
    }
    provenance = {
        "profile": ctx.profile.name,
        "lineages": {f"c{k}": seed for k, seed in enumerate(ctx.profile.evolve.lineage_seeds)},
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
    provenance["learning_gate"] = learning_gate_record(summary, ctx.val_tokens())
    # the learning gate travels with the provenance (its ``learning_gate`` key), so the pages
    # that state it read it from the results instead of re-tokenising the validation corpus
    _write_results(out, tables, provenance)
    return out


def _write_results(out: Path, tables: dict[str, pd.DataFrame], provenance: dict) -> None:
    """Write the tables, then the provenance. Everything is computed before the first file is
    written, and ``provenance.json`` -- what marks a folder as complete (:func:`load_results`) --
    is removed first and written last, so an export that fails half-way leaves no folder that
    passes for a complete one (mixing new tables with an earlier run's provenance)."""
    (out / "provenance.json").unlink(missing_ok=True)
    for name, df in tables.items():
        layout.write_csv_atomic(df, out / name, float_format="%.6g")  # temporary file, then rename
    layout.write_json_atomic(out / "provenance.json", provenance)


def learning_gate_record(summary: pd.DataFrame, val_tokens) -> dict:
    """The learning gate of a run (:func:`connectome_lib.takeaways.learning_gate`): the unigram
    entropy of the validation tokens, NoConnectome's final validation loss (the ``perplexity``
    task's mean loss over the validation windows, the measure the claims test, mean over seeds),
    the gap between them and whether it reaches the gate."""
    from .data import unigram_entropy
    from .registry import label_of
    from .takeaways import learning_gate

    entropy = unigram_entropy(val_tokens)
    rows = summary[(summary["task"] == "perplexity") & (summary["metric"] == "loss")] if len(summary) else summary
    final = pd.DataFrame({"label": rows["label"], "val_loss": rows["mean"]}) if len(rows) else \
        pd.DataFrame(columns=["label", "val_loss"])
    gate = learning_gate(final, entropy)
    dense = final.loc[final["label"] == label_of("dense"), "val_loss"]
    return {"unigram_entropy": entropy, "final_loss": float(dense.mean()) if len(dense) else None,
            "final_loss_definition": "perplexity task: mean loss over the validation windows, mean over seeds",
            "gap": gate["gap"] if gate["met"] is not None else None, "gate": gate["gate"], "met": gate["met"]}


def _window_books(profile, items: pd.DataFrame):
    """The validation book of every validation-loss window in ``items`` (None without any)."""
    v = items["measure"] == "validation loss"
    return effects.profile_window_books(profile, int(items.loc[v, "item"].astype(int).max()) + 1) if v.any() else None


def _with_books(items: pd.DataFrame, books) -> pd.DataFrame:
    """``items`` with the validation book of every validation-loss window as its ``cluster``."""
    if books is None:
        return items
    v = items["measure"] == "validation loss"
    items = items.assign(cluster=items["cluster"].astype(object))
    items.loc[v, "cluster"] = books[items.loc[v, "item"].astype(int).to_numpy()].astype(str)
    return items


def _book_losses(profile, items: pd.DataFrame, units: pd.DataFrame, books) -> pd.DataFrame:
    """:func:`connectome_lib.effects.book_losses` for the run's validation corpus (``books``:
    :func:`_window_books`)."""
    from .data import book_table

    v = items[items["measure"] == "validation loss"]
    if v.empty:
        return pd.DataFrame()
    titles = book_table("val", profile.data).set_index("index")["title"].to_dict()
    return effects.book_losses(v, units, books, titles)


def _lineage_overlap(profile) -> pd.DataFrame:
    """Survivor overlap of every pair of lineages' final connectomes, against chance
    (:func:`connectome_lib.connectome.survivor_overlap`, its ``all`` row per pair)."""
    import itertools

    from .connectome import Connectome, survivor_overlap
    from .stages import lineages

    paths = {k: layout.final_connectome_path(profile.run_root, k) for k in lineages(profile)}
    found = {k: Connectome.load(p) for k, p in paths.items() if p.exists()}
    rows = []
    for a, b in itertools.combinations(sorted(found), 2):
        t = survivor_overlap(found[a], found[b])
        rows.append(t.assign(lineage_a=a, lineage_b=b))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


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
                out[key] = pd.read_csv(d / name, dtype=READ_DTYPES.get(name)) if (d / name).exists() else pd.DataFrame()
            except pd.errors.EmptyDataError:
                out[key] = pd.DataFrame()
    out["provenance"] = json.loads((d / "provenance.json").read_text())
    return out
