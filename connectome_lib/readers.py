"""Read a run folder's outputs into tidy tables: learning curves, densities, evaluation rows and
per-item tables, initial weights, corpus token counts.

Every function reads files a stage wrote (under ``<run_root>/evolve``, ``develop``, ``evals``)
or takes the evaluation rows read here, and returns a :class:`pandas.DataFrame` (or arrays).
Nothing here writes anything; :mod:`connectome_lib.export` writes the small result files the
book shows, from these tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file

from . import data, layout
from .registry import CONNECTOME_INITS, INIT_LABELS, INITS
from .stats import seed_mean_se

#: the columns of the evaluation rows (``evals/results.csv``)
EVAL_COLUMNS = ["model", "init", "label", "seed", "iteration", "task", "metric", "value", "n"]


# ------------------------------------------------------------------------------ curves
def generation_curves(run_root: str | Path) -> pd.DataFrame:
    """Outer-loop curves of every finished generation."""
    frames = []
    for lineage, d in _generation_folders(run_root):
        if (d / "curve.csv").exists():
            f = pd.read_csv(d / "curve.csv")
            f.insert(0, "generation", layout.parse_generation_name(d.name))
            f.insert(0, "lineage", lineage)
            frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _generation_folders(run_root: str | Path) -> list[tuple[int, Path]]:
    """``(lineage, folder)`` of every generation folder ``evolve/c<k>/gen_<gg>``, in order."""
    out = []
    for c in (Path(run_root) / "evolve").glob("c*"):
        m = layout.LINEAGE_NAME.match(c.name)
        if m and c.is_dir():
            out += [(int(m.group(1)), d) for d in c.glob("gen_*") if layout.parse_generation_name(d.name) is not None]
    return sorted(out, key=lambda x: (x[0], layout.parse_generation_name(x[1].name)))


def generation_density(run_root: str | Path) -> pd.DataFrame:
    """Density of every pruned tensor after each generation's pruning (``c<k>/gen_*/density.csv``,
    with its ``lineage`` column)."""
    frames = [pd.read_csv(d / "density.csv") for _, d in _generation_folders(run_root) if (d / "density.csv").exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def unit_of(init: str, seed: int, lineage: int | None) -> str:
    """A model's unit of replication: the lineage (``c<k>``) whose connectome it inherits or is
    matched to, for the inits that start from one; the inner seed (``s<seed>``) for NoConnectome."""
    return f"c{int(lineage)}" if init in CONNECTOME_INITS and lineage is not None else f"s{int(seed)}"


def model_units(run_root: str | Path) -> pd.DataFrame:
    """Every inner-loop model of a run with its replication unit: columns ``model, label, init,
    seed, lineage, unit`` (from each ``develop/*/run.json``)."""
    rows = []
    for d in sorted((Path(run_root) / "develop").glob("*_s*")):
        if (d / "run.json").exists():
            info = layout.read_json(d / "run.json")
            lineage = info.get("lineage")
            rows.append({"model": d.name, "label": info["label"], "init": info["init"], "seed": int(info["seed"]),
                         "lineage": lineage, "unit": unit_of(info["init"], info["seed"], lineage)})
    return pd.DataFrame(rows, columns=["model", "label", "init", "seed", "lineage", "unit"])


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
            f.insert(3, "lineage", info.get("lineage"))
            f.insert(4, "unit", unit_of(info["init"], info["seed"], info.get("lineage")))
            frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------------------ evaluation rows
def eval_results(run_root: str | Path) -> pd.DataFrame:
    """Every evaluation row of a run (``evals/results.csv``; empty with :data:`EVAL_COLUMNS`); a
    damaged file or row is an error naming the file and line."""
    from .evals.results import read_results_csv

    path = layout.evals_dir(run_root) / "results.csv"
    return read_results_csv(path) if path.exists() else pd.DataFrame(columns=EVAL_COLUMNS)


def final_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of each model's last evaluated iteration for each task (the final model)."""
    if results.empty:
        return results
    last = results.groupby(["model", "task"])["iteration"].transform("max")
    return results[results["iteration"] == last]


def final_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Final-model metrics per model type: rows ``label, task, metric, mean, se, n_seeds``
    (:func:`connectome_lib.stats.seed_mean_se` of :func:`final_rows`)."""
    return seed_mean_se(final_rows(results), ["label", "task", "metric"])


def baseline_means(results: pd.DataFrame) -> pd.Series:
    """The ``baselines`` task's values, averaged over the seeds that computed them: metric ->
    value (e.g. ``untrained/futrell2018/r``, ``rt/r_n_tokens``, ``brain/r_length``)."""
    base = seed_mean_se(results[results["task"] == "baselines"], ["metric"])
    return base.set_index("metric")["mean"]


def untrained_by_layer(baselines: pd.Series, task: str = "tuckute2024") -> pd.Series:
    """The untrained model's per-layer scores from the baselines (metric -> value, metrics
    ``untrained/<task>/r_layer<k>``), indexed by layer ``k`` in order."""
    s = baselines[baselines.index.str.match(rf"^untrained/{task}/r_layer\d+$")]
    return pd.Series(s.to_numpy(float), index=s.index.str.extract(r"(\d+)$")[0].astype(int).to_numpy(),
                     name="r").sort_index()


def eval_table(run_root: str | Path, model: str, iteration: int, task: str) -> pd.DataFrame:
    """The per-item table an evaluation wrote (``evals/tables/<model>_iter<iteration>_<task>.csv``),
    e.g. Futrell2018's per-word surprisal and reading time."""
    path = layout.eval_table_path(layout.evals_dir(run_root), model, iteration, task)
    if not path.exists():
        raise FileNotFoundError(f"no evaluation table at {path}: evaluate {model} on {task} first")
    return pd.read_csv(path)


def language_unit_tables(run_root: str | Path, final: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
    """Per-unit t-statistics of the language-units evaluation (``layer, unit, t``) of each model
    type's final model, for one seed (default: the smallest evaluated), with its ``label``: what
    :func:`connectome_lib.plots.language_unit_map` draws. Empty when no model has the table."""
    rows = final[final["task"] == "language_units"].drop_duplicates(["model", "iteration"])
    if rows.empty:
        return pd.DataFrame(columns=["layer", "unit", "t", "label", "seed"])
    seed = int(rows["seed"].min()) if seed is None else int(seed)
    parts = []
    for r in rows[rows["seed"] == seed].itertuples():
        t = eval_table(run_root, r.model, r.iteration, "language_units")
        parts.append(t.assign(label=r.label, seed=seed))
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------ weights and corpora
def initial_weights(run_root: str | Path, tensor: str, seed: int, inits=None) -> dict[str, np.ndarray]:
    """One tensor's weights at inner-loop iteration 0 (the initialisation) of each model type,
    keyed by its label (Connectome, RandomConnectome, NoConnectome), read from the checkpoint's
    safetensors files."""
    out = {}
    for init in inits or INITS:
        folder = layout.checkpoint_dir(layout.develop_dir(run_root, init, seed), 0)
        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no safetensors weights in {folder}: train the {init} model (connectome develop)")
        found = None
        for f in files:
            state = load_file(str(f))
            if tensor in state:
                found = state[tensor]
                break
        if found is None:
            raise KeyError(f"{folder} has no tensor named {tensor!r}")
        out[INIT_LABELS.get(init, init)] = np.asarray(found, dtype=np.float32)
    return out


def corpus_token_counts(data_cfg, split: str, vocab_size: int) -> np.ndarray:
    """How often each token id occurs in a corpus split (``np.bincount`` of its token file, of
    length ``vocab_size``): the frequencies :func:`connectome_lib.analysis.row_density_vs_frequency` takes."""
    tokens = np.asarray(data.load_corpus_tokens(split, data_cfg, progress=False), dtype=np.int64)
    if tokens.size and int(tokens.max()) >= vocab_size:
        raise ValueError(f"the {split} corpus holds token id {int(tokens.max())} >= vocab size {vocab_size}")
    return np.bincount(tokens, minlength=vocab_size)
