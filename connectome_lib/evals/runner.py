"""Evaluate model folders, training folders and whole runs; write tidy, resumable results.

* :func:`evaluate_model` -- an in-memory model on a list of tasks -> ``list[TaskResult]``.
* :func:`evaluate` -- a saved model folder (a transformers folder with ``config.json``), or a
  training folder (``develop/<init>_s<seed>/`` holding ``checkpoints/iter_XXXXXX/`` and
  ``model/``): every checkpoint (``checkpoints="all"``, for learning curves) and the final model
  (unless it is also a checkpoint), on any subset of the tasks.
* :func:`evaluate_run` -- every training folder under ``<run_root>/develop/``.

Results are tidy rows ``model, init, label, seed, iteration, task, metric, value, n`` written to
``results.csv`` and ``results.json`` (by default in ``<run_root>/evals/``) after every task;
(model, iteration, task) triples already present are skipped, so a stopped evaluation resumes.
Per-task metadata go to ``meta/`` and per-item tables (Futrell2018's per-word surprisal) to
``tables/`` beside the results. The ``baselines`` task runs once per training folder, on its
last evaluated model, because it does not depend on training.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM

from .config import ALL_TASKS, EvalConfig
from .results import TaskResult
from .scoring import resolve_device
from .tasks import TaskContext, ValTokens, run_task
from ..layout import INIT_LABELS, evals_dir, list_checkpoints, read_json, write_json_atomic
from ..tokenizer import load_tokenizer

COLUMNS = ["model", "init", "label", "seed", "iteration", "task", "metric", "value", "n"]
_ITER = re.compile(r"^iter_(\d+)$")


@dataclass
class Target:
    """One model folder to evaluate and the labels its rows carry."""

    folder: Path
    model: str
    init: str
    seed: int
    iteration: int


def evaluate_model(model: torch.nn.Module, tokenizer, cfg: EvalConfig, val_tokens: ValTokens = None,
                   tasks: Sequence[str] | None = None, ctx: TaskContext | None = None) -> list[TaskResult]:
    """Evaluate an in-memory model on ``tasks`` (default ``cfg.tasks``)."""
    tasks = list(tasks if tasks is not None else cfg.tasks)
    check_tasks(tasks)
    ctx = ctx or TaskContext(tokenizer, cfg, val_tokens)
    return [run_task(t, model, ctx) for t in tasks]


def check_tasks(tasks: Sequence[str]) -> None:
    unknown = [t for t in tasks if t not in ALL_TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; known tasks: {', '.join(ALL_TASKS)}")


def load_model(folder: str | os.PathLike, device: str = "auto") -> torch.nn.Module:
    """A saved causal LM in float32, on ``device``, in eval mode."""
    import connectome_lib.model  # noqa: F401  (registers the paper's GPT with the Auto classes)

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return model.to(resolve_device(device)).eval()


def run_info(train_dir: Path | None) -> dict[str, Any]:
    if train_dir is not None and (train_dir / "run.json").exists():
        return read_json(train_dir / "run.json")
    return {}


def final_iteration(info: dict[str, Any]) -> int:
    for key in ("iterations", "iters", "max_iters", "n_iterations", "num_iterations"):
        if isinstance(info.get(key), int):
            return int(info[key])
    return -1


def parse_seed(name: str) -> int:
    m = re.search(r"_s(\d+)$", name)
    return int(m.group(1)) if m else -1


def find_targets(path: str | os.PathLike, checkpoints: str = "all", model_name: str | None = None) -> list[Target]:
    """The model folders under ``path`` (see the module docstring), in iteration order."""
    path = Path(path)
    if (path / "config.json").exists():  # a single model folder
        if path.name == "model":
            train_dir = path.parent
        elif path.parent.name == "checkpoints":
            train_dir = path.parent.parent
        else:
            train_dir = None
        info = run_info(train_dir)
        m = _ITER.match(path.name)
        iteration = int(m.group(1)) if m else final_iteration(info)
        name = model_name or (train_dir.name if train_dir is not None else path.name)
        return [Target(path, name, str(info.get("init", "")), int(info.get("seed", parse_seed(name))), iteration)]
    ckpts = list_checkpoints(path)
    final = path / "model"
    if not ckpts and not (final / "config.json").exists():
        raise FileNotFoundError(
            f"{path} is neither a model folder (no config.json) nor a training folder "
            "(no checkpoints/iter_XXXXXX/ and no model/)"
        )
    info = run_info(path)
    name = model_name or path.name
    init, seed = str(info.get("init", "")), int(info.get("seed", parse_seed(name)))
    targets = [Target(d, name, init, seed, it) for it, d in ckpts] if checkpoints == "all" else []
    if (final / "config.json").exists():
        it = final_iteration(info)
        if it < 0 and ckpts:
            it = ckpts[-1][0] + 1 if checkpoints == "all" else ckpts[-1][0]
        if all(t.iteration != it for t in targets):
            targets.append(Target(final, name, init, seed, it))
    elif checkpoints == "final":
        it, d = ckpts[-1]
        targets.append(Target(d, name, init, seed, it))
    return sorted(targets, key=lambda t: t.iteration)


def default_results_path(path: Path) -> Path:
    """``<run_root>/evals/results.csv`` inside a run layout, else ``<path>/evals/results.csv``."""
    for p in [path, *path.parents]:
        if p.name == "develop":
            return evals_dir(p.parent) / "results.csv"
    return path / "evals" / "results.csv"


def read_results(results_path: str | os.PathLike) -> pd.DataFrame:
    p = Path(results_path)
    if p.exists():
        return pd.read_csv(p, keep_default_na=True)
    return pd.DataFrame(columns=COLUMNS)


def write_results(df: pd.DataFrame, results_path: str | os.PathLike) -> None:
    """Write ``results.csv`` and ``results.json`` atomically."""
    p = Path(results_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    df.to_csv(tmp, index=False)
    os.replace(tmp, p)
    write_json_atomic(p.with_suffix(".json"), json.loads(df.to_json(orient="records")))


def _rows(target: Target, res: TaskResult) -> pd.DataFrame:
    df = res.to_frame()
    df.insert(0, "model", target.model)
    df.insert(1, "init", target.init)
    df.insert(2, "label", INIT_LABELS.get(target.init, target.init))
    df.insert(3, "seed", target.seed)
    df.insert(4, "iteration", target.iteration)
    return df[COLUMNS]


def evaluate(
    path: str | os.PathLike,
    cfg: EvalConfig | None = None,
    *,
    tasks: Sequence[str] | None = None,
    val_tokens: ValTokens = None,
    results_path: str | os.PathLike | None = None,
    model_name: str | None = None,
    tokenizer=None,
    ctx: TaskContext | None = None,
) -> pd.DataFrame:
    """Evaluate a model folder or every checkpoint of a training folder; return all rows of the
    results file (old and new). See the module docstring for layout, outputs and resuming.

    ``val_tokens`` (for ``perplexity``) is a 1-D token array or a zero-argument callable that
    returns one (called once, on first use); ``None`` tokenises ``corpus_val`` as a fallback.
    """
    cfg = cfg or EvalConfig()
    tasks = list(tasks if tasks is not None else cfg.tasks)
    check_tasks(tasks)
    path = Path(path)
    results_path = Path(results_path) if results_path else default_results_path(path)
    targets = find_targets(path, cfg.checkpoints, model_name)
    tokenizer = tokenizer or load_tokenizer(cfg.tokenizer, cfg.data_dir)
    ctx = ctx or TaskContext(tokenizer, cfg, val_tokens)
    df = read_results(results_path)
    done = set(zip(df["model"].astype(str), df["iteration"].astype(int), df["task"].astype(str)))
    for k, target in enumerate(tqdm(targets, desc=f"evaluate {path.name}", disable=not cfg.progress)):
        todo = [t for t in tasks if (target.model, target.iteration, t) not in done
                and (t != "baselines" or k == len(targets) - 1)]
        if not todo:
            continue
        model = load_model(target.folder, cfg.device)
        for task in todo:
            res = run_task(task, model, ctx)
            df = pd.concat([df, _rows(target, res)], ignore_index=True) if len(df) else _rows(target, res)
            write_results(df, results_path)
            stem = f"{target.model}_iter{target.iteration:06d}_{task}"
            write_json_atomic(results_path.parent / "meta" / f"{stem}.json", res.metadata)
            if res.table is not None:
                (results_path.parent / "tables").mkdir(parents=True, exist_ok=True)
                res.table.to_csv(results_path.parent / "tables" / f"{stem}.csv", index=False)
            done.add((target.model, target.iteration, task))
        del model
    return df


def evaluate_run(run_root: str | os.PathLike, cfg: EvalConfig | None = None, *, tasks: Sequence[str] | None = None,
                 val_tokens: ValTokens = None, results_path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Evaluate every training folder ``<run_root>/develop/*`` into one results file
    (default ``<run_root>/evals/results.csv``)."""
    cfg = cfg or EvalConfig()
    root = Path(run_root) / "develop"
    folders = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    if not folders:
        raise FileNotFoundError(f"no training folders under {root}")
    results_path = Path(results_path) if results_path else evals_dir(run_root) / "results.csv"
    tokenizer = load_tokenizer(cfg.tokenizer, cfg.data_dir)
    ctx = TaskContext(tokenizer, cfg, val_tokens)
    df = read_results(results_path)
    for folder in folders:
        try:
            find_targets(folder, cfg.checkpoints)
        except FileNotFoundError:
            continue  # a folder whose training has not written anything yet
        df = evaluate(folder, cfg, tasks=tasks, results_path=results_path, tokenizer=tokenizer, ctx=ctx)
    return df


def summarize(df: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and standard error over seeds per (label, iteration, task, metric)."""
    d = df if metrics is None else df[df["metric"].isin(metrics)]
    g = d.groupby(["label", "iteration", "task", "metric"])["value"]
    out = g.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n_seeds"])
    return out
