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

Integrity (issue 8):

* **Fingerprints.** Each (model, iteration, task) records in its ``meta/`` file the fingerprint
  of the options that shape that task, of the tokenizer and of the model folder it scored
  (:func:`connectome_lib.fingerprint.eval_task_settings`; a model of a run is identified by its
  ``done.json`` fingerprint, any other folder by the SHA-256 of its files). Rows whose
  fingerprint differs from the current one are never mixed with new ones: the call stops with
  :class:`~connectome_lib.fingerprint.StaleResultError`, or with ``fresh=True`` drops them and
  computes them again.
* **Complete runs.** :func:`evaluate_run` with ``expected`` (the profile's inits x seeds) warns
  about -- or with ``strict=True`` refuses -- a missing model, and never takes an unfinished
  model (no ``done.json``) as final: such a folder is skipped with a warning naming it.
* **Atomic files.** Per-item tables, metadata and results are written to a temporary file and
  renamed; a task's results rows are written only after its table and metadata.
* **Lock.** The run folder (or the results folder outside a run) is locked while it is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM

from ..fingerprint import (
    StaleResultError,
    eval_task_settings,
    file_sha256,
    fingerprint,
    folder_sha256,
    is_current,
    stale_message,
    tokenizer_fingerprint,
)
from ..layout import (
    INIT_LABELS,
    develop_dir,
    eval_stem,
    eval_table_path,
    evals_dir,
    final_connectome_path,
    is_done,
    list_checkpoints,
    parse_iteration_name,
    parse_seeded_name,
    read_json,
    write_csv_atomic,
    write_json_atomic,
)
from ..locking import run_lock
from ..tokenizer import load_tokenizer
from .config import ALL_TASKS, TABLE_TASKS, EvalConfig
from .results import TaskResult, read_results_csv
from .scoring import resolve_device
from .tasks import TaskContext, ValTokens, run_task

COLUMNS = ["model", "init", "label", "seed", "iteration", "task", "metric", "value", "n"]


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
    check_vocabulary(model, ctx, tasks)
    return [run_task(t, model, ctx) for t in tasks]


def check_tasks(tasks: Sequence[str]) -> None:
    unknown = [t for t in tasks if t not in ALL_TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; known tasks: {', '.join(ALL_TASKS)}")


class ModelFormatError(ValueError):
    """A model folder is intact but in a format this loader does not read: not corrupt, so the
    message says how to convert it, never to delete it."""


#: the weights files ``from_pretrained`` reads for PyTorch
TORCH_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
#: suffixes of weights in formats it does not read (TensorFlow, Flax, training checkpoints, GGUF, ONNX)
OTHER_WEIGHT_SUFFIXES = (".h5", ".msgpack", ".pt", ".pth", ".ckpt", ".gguf", ".onnx")
READABLE = ("this project's model folders, Hugging Face causal LMs saved with save_pretrained (PyTorch weights), and "
            "the paper's released checkpoints")


def load_model(folder: str | os.PathLike, device: str = "auto") -> torch.nn.Module:
    """A saved causal LM in float32, on ``device``, in eval mode.

    A folder in a format it cannot read raises :class:`ModelFormatError` (see
    :func:`format_problem`, and weights that do not fit the configuration); a damaged one an
    ``OSError`` naming the step to recompute (:func:`corrupt_model_error`)."""
    import connectome_lib.model  # noqa: F401  (registers the paper's GPT with the Auto classes)

    from ..released import is_released_folder, load_released

    if is_released_folder(folder):  # the paper's own checkpoints: config.json read as data, their code never run
        return load_released(folder, device=resolve_device(device))[0]
    folder = Path(folder)
    problem = format_problem(folder)
    if problem is not None:
        raise ModelFormatError(f"model folder {folder} is not corrupt but in another format: {problem}; this loader "
                               f"reads {READABLE}: convert it into one of those (the paper's: connectome convert)")
    try:
        with _transformers_quiet():  # its multi-line loading report: what does not fit is reported below
            model, info = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32,
                                                               output_loading_info=True)
    except Exception as e:  # a cut-off or damaged folder: say which, and how to recompute it
        if "ignore_mismatched_sizes" in str(e):  # intact weights of other shapes than config.json's
            raise unfit_weights_error(folder, "of other shapes than config.json implies") from e
        raise corrupt_model_error(folder, e) from e
    unfit = sorted(info.get("missing_keys") or []) + sorted(str(k[0]) if isinstance(k, tuple) else str(k)
                                                            for k in info.get("mismatched_keys") or [])
    if unfit:
        raise unfit_weights_error(folder, f"{len(unfit)} tensor(s) missing or of another shape, first {unfit[0]}")
    return model.to(resolve_device(device)).eval()


@contextlib.contextmanager
def _transformers_quiet():
    """transformers' logging at errors only, for one call."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def unfit_weights_error(folder: Path, what: str) -> ModelFormatError:
    """The error for intact weights that do not fit the architecture the folder's config.json describes."""
    return ModelFormatError(
        f"model folder {folder}: its weights do not fit the architecture config.json describes ({what}); it holds "
        "another model's weights: save the model again with save_pretrained, or convert it (the paper's "
        "checkpoints: connectome convert)")


def format_problem(folder: Path) -> str | None:
    """Why an intact model folder is in a format :func:`load_model` cannot read: its
    ``config.json`` names a model transformers does not know, or one without a causal-LM head, or
    it has weights only in a format other than PyTorch's. ``None`` when it looks loadable -- or
    damaged (an unreadable ``config.json``, no weights): loading then says so."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    model_type, archs = config.get("model_type"), config.get("architectures")
    what = f"model_type {model_type!r}, architectures {archs}"
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        return f"its config.json describes a model transformers does not know ({what})"
    if type(AutoConfig.for_model(model_type)) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        return f"its config.json describes a model without a causal-LM head ({what})"
    if not any((folder / w).is_file() for w in TORCH_WEIGHTS):
        others = sorted(f.name for f in folder.iterdir() if f.suffix in OTHER_WEIGHT_SUFFIXES and f.is_file())
        if others:
            return f"its weights are not in a format transformers reads for PyTorch ({', '.join(others)})"
    return None


def corrupt_model_error(folder: Path, e: Exception) -> OSError:
    """The error for a model folder ``from_pretrained`` cannot read: corrupt or incomplete, and
    the step that recomputes it (or, outside a run, to save it again)."""
    if folder.parent.name == "checkpoints":
        step, stage = folder.parent.parent, "develop"
    elif folder.name == "model" and folder.parent.name.startswith("gen_"):
        step, stage = folder.parent, "evolve"
    elif folder.name == "model":
        step, stage = folder.parent, "develop"
    else:
        step, stage = folder, None
    how = (f"delete {step} and run `connectome {stage}` again to recompute it" if stage
           else "delete it and save the model again")
    detail = " ".join(str(e).split())[:300]
    return OSError(f"model folder {folder} is corrupt or incomplete ({type(e).__name__}: {detail}); {how}")


def check_vocabulary(model: torch.nn.Module, ctx: TaskContext, tasks: Sequence[str],
                     folder: str | os.PathLike | None = None) -> None:
    """Refuse inputs with token ids beyond the model's embedding rows, which would end deep
    inside torch (``IndexError: index out of range in self``): a tokenizer with more tokens
    than the model has rows (for every task that tokenises text), or validation tokens holding
    such an id (for ``perplexity``)."""
    rows = embedding_rows(model)
    if not rows:
        return
    where = f"model folder {folder}" if folder is not None else "the model"
    if any(t != "perplexity" for t in tasks) and len(ctx.tokenizer) > rows:
        name = getattr(ctx.tokenizer, "name_or_path", "") or type(ctx.tokenizer).__name__
        raise ModelFormatError(
            f"{where} has a vocabulary of {rows:,} tokens, but the tokenizer {name} has {len(ctx.tokenizer):,}: "
            "they do not belong together; evaluate it with the tokenizer it was trained with (--profile of its "
            "run, or --set tokenizer=FOLDER)")
    if "perplexity" in tasks:
        tokens = ctx.get_val_tokens()
        top = int(np.max(tokens)) if np.size(tokens) else -1
        if top >= rows:
            raise ModelFormatError(
                f"{where} has a vocabulary of {rows:,} tokens, but the validation tokens hold id {top:,}: they come "
                "from another tokenizer; give the validation tokens of its own (--profile of its run, or "
                "--val-tokens FILE)")


def embedding_rows(model: torch.nn.Module) -> int:
    """How many token ids the model embeds (0 when it does not say, e.g. a test's stand-in)."""
    try:
        return int(getattr(model.get_input_embeddings(), "num_embeddings", 0) or 0)
    except (AttributeError, NotImplementedError):
        return 0


def model_tokenizer(folders: Sequence[str | os.PathLike], cfg: EvalConfig):
    """The tokenizer saved with the model: that of the first folder holding one
    (``tokenizer.json``, or GPT-2's ``vocab.json`` + ``merges.txt``), so that any Hugging Face
    causal-LM folder is evaluated with its own tokenizer; else the configured one
    (``cfg.tokenizer``, ``cfg.data_dir``)."""
    for folder in map(Path, folders):
        if (folder / "tokenizer.json").exists() or (
            (folder / "vocab.json").exists() and (folder / "merges.txt").exists()
        ):
            return load_tokenizer(folder)
    return load_tokenizer(cfg.tokenizer, cfg.data_dir)


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
    """The seed in a run-folder name (``connectome_s2`` -> 2), -1 if it names none."""
    parsed = parse_seeded_name(name)
    return parsed[1] if parsed else -1


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
        it = parse_iteration_name(path.name)
        iteration = it if it is not None else final_iteration(info)
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
    """The rows of a results file (none if there is none); a damaged file or row is an error
    naming the file and line (:func:`~connectome_lib.evals.results.read_results_csv`)."""
    p = Path(results_path)
    if p.exists():
        return read_results_csv(p)
    return pd.DataFrame(columns=COLUMNS)


def write_results(df: pd.DataFrame, results_path: str | os.PathLike) -> None:
    """Write ``results.csv`` and ``results.json`` atomically."""
    p = Path(results_path)
    write_csv_atomic(df, p)
    write_json_atomic(p.with_suffix(".json"), json.loads(df.to_json(orient="records")))


def _train_dir(folder: Path) -> Path | None:
    """The training folder a model folder belongs to (``<train>/model``, ``<train>/checkpoints/iter_*``)."""
    if folder.name == "model":
        return folder.parent
    if folder.parent.name == "checkpoints":
        return folder.parent.parent
    return None


def model_fingerprint(target: Target) -> str:
    """The fingerprint of the model a target scores: its training run's ``done.json`` fingerprint
    and the iteration, or -- for a folder outside a finished run -- the SHA-256 of its files."""
    train = _train_dir(target.folder)
    if train is not None and is_done(train):
        try:
            recorded = read_json(train / "done.json").get("fingerprint")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if recorded:
            return fingerprint({"train": recorded, "iteration": target.iteration})
    return folder_sha256(target.folder)


def _task_inputs(task: str, ctx: TaskContext) -> dict[str, Any]:
    """Inputs other than options and model that shape a task's rows: the tokenizer and, for the
    validation loss, the validation tokens (SHA-256 of each, computed once per session)."""
    if "tokenizer_sha256" not in ctx.cache:
        ctx.cache["tokenizer_sha256"] = tokenizer_fingerprint(ctx.tokenizer)
    inputs = {"tokenizer_sha256": ctx.cache["tokenizer_sha256"]}
    if task == "perplexity":
        if "val_tokens_sha256" not in ctx.cache:
            tokens = np.ascontiguousarray(ctx.get_val_tokens())
            ctx.cache["val_tokens_sha256"] = hashlib.sha256(tokens.dtype.str.encode() + tokens.tobytes()).hexdigest()
        inputs["val_tokens_sha256"] = ctx.cache["val_tokens_sha256"]
    return inputs


def _stem(target: Target, task: str) -> str:
    return eval_stem(target.model, target.iteration, task)


def _lock_root(results_path: Path) -> Path:
    """The folder locked while ``results_path`` is written: the run root for ``<run>/evals/...``."""
    return results_path.parent.parent if results_path.parent.name == "evals" else results_path.parent


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
    fresh: bool = False,
) -> pd.DataFrame:
    """Evaluate a model folder or every checkpoint of a training folder; return all rows of the
    results file (old and new). See the module docstring for layout, outputs and resuming.

    ``val_tokens`` (for ``perplexity``) is a 1-D token array or a zero-argument callable that
    returns one (called once, on first use); ``None`` tokenises ``corpus_val`` as a fallback.
    The tokenizer is ``tokenizer`` (or ``ctx``'s), else the one saved in the model folder, else
    the configured one (:func:`model_tokenizer`).
    Rows computed with other options or from another model raise :class:`StaleResultError`, or
    with ``fresh=True`` are dropped and computed again.
    """
    path = Path(path)
    results_path = Path(results_path) if results_path else default_results_path(path)
    with run_lock(_lock_root(results_path), "evaluate"):
        return _evaluate(path, cfg, tasks=tasks, val_tokens=val_tokens, results_path=results_path,
                         model_name=model_name, tokenizer=tokenizer, ctx=ctx, fresh=fresh)


def _evaluate(path: Path, cfg: EvalConfig | None, *, tasks, val_tokens, results_path: Path, model_name, tokenizer,
              ctx, fresh: bool) -> pd.DataFrame:
    cfg = cfg or EvalConfig()
    tasks = list(tasks if tasks is not None else cfg.tasks)
    check_tasks(tasks)
    if not (path / "config.json").exists() and (path / "run.json").exists() and not is_done(path):
        raise FileNotFoundError(
            f"{path} is not finished (no done.json), so it has no final model to evaluate: finish its training "
            "(connectome develop), or evaluate one checkpoint folder under checkpoints/ explicitly"
        )
    targets = find_targets(path, cfg.checkpoints, model_name)
    tokenizer = tokenizer or (ctx.tokenizer if ctx else None) or model_tokenizer([t.folder for t in targets], cfg)
    ctx = ctx or TaskContext(tokenizer, cfg, val_tokens)
    df = read_results(results_path)
    meta_dir = results_path.parent / "meta"
    done = set(zip(df["model"].astype(str), df["iteration"].astype(int), df["task"].astype(str)))
    # the settings of every (target, task); rows already there must carry the same fingerprint
    settings, stale, incomplete = {}, [], []
    for target in targets:
        mfp = model_fingerprint(target)
        for task in tasks:
            key = (target.model, target.iteration, task)
            settings[key] = eval_task_settings(cfg, task, mfp, _task_inputs(task, ctx))
            if key in done:
                try:
                    recorded = read_json(meta_dir / f"{_stem(target, task)}.json")
                except (OSError, ValueError):
                    recorded = None
                if not is_current(recorded, fingerprint(settings[key])):
                    stale.append((key, target, recorded if isinstance(recorded, dict) else None))
                elif task in TABLE_TASKS and not eval_table_path(results_path.parent, target.model, target.iteration,
                                                                  task).exists():
                    incomplete.append(key)
    if stale:
        df, done = _drop_stale(df, done, stale, settings, results_path, fresh)
    if incomplete:
        # same settings, but the per-item table is missing (deleted, or written by a version that
        # kept none): the row is computed again with its table, never shown without it
        df, done = _without(df, set(incomplete)), done - set(incomplete)
    for k, target in enumerate(tqdm(targets, desc=f"evaluate {path.name}", disable=not cfg.progress)):
        todo = [t for t in tasks if (target.model, target.iteration, t) not in done
                and (t != "baselines" or k == len(targets) - 1)]
        if not todo:
            continue
        model = load_model(target.folder, cfg.device)
        check_vocabulary(model, ctx, todo, target.folder)
        for task in todo:
            res = run_task(task, model, ctx)
            stem, key = _stem(target, task), (target.model, target.iteration, task)
            # the per-item table and the metadata first: a results row never claims a missing file
            if res.table is not None:
                write_csv_atomic(res.table, eval_table_path(results_path.parent, target.model, target.iteration, task))
            write_json_atomic(meta_dir / f"{stem}.json",
                              {**res.metadata, "fingerprint": fingerprint(settings[key]), "settings": settings[key]})
            df = pd.concat([df, _rows(target, res)], ignore_index=True) if len(df) else _rows(target, res)
            write_results(df, results_path)
            done.add(key)
        del model
    _cards_with_results(targets, df)
    return df


def _cards_with_results(targets: Sequence[Target], df: pd.DataFrame) -> None:
    """Put the headline results of a run's final models into their model cards (``README.md``,
    written when the step saved the model), so a folder pushed to the hub carries them."""
    from ..model_card import add_eval_results
    from ..registry import HEADLINE_METRICS

    finals = {}  # the final model folder of each training run evaluated here, by model name
    for t in targets:
        train = _train_dir(t.folder)
        if train is not None and (train / "model" / "README.md").exists():
            finals[t.model] = train / "model"
    for name, folder in finals.items():
        own = df[df["model"].astype(str) == name]
        last = own["iteration"].astype(int).max()  # the final model's (a last checkpoint is the same model)
        rows = own[(own["iteration"].astype(int) == last) & own["metric"].isin(HEADLINE_METRICS)]
        if len(rows):
            add_eval_results(folder, rows[["task", "metric", "value", "n"]])


def _without(df: pd.DataFrame, keys: set) -> pd.DataFrame:
    """The results rows whose (model, iteration, task) is not in ``keys``."""
    own = zip(df["model"].astype(str), df["iteration"].astype(int), df["task"].astype(str))
    return df[[k not in keys for k in own]].reset_index(drop=True)


def _drop_stale(df: pd.DataFrame, done: set, stale: list, settings: dict, results_path: Path, fresh: bool):
    """Raise :class:`StaleResultError` for rows computed with other settings, or (``fresh``) drop
    them with their metadata and tables so they are computed again; return ``(df, done)``."""
    (model, iteration, task), target, recorded = stale[0]
    if not fresh:
        step = (f"{len(stale)} result group(s) in {results_path} (first: {model} iteration {iteration} {task}, "
                f"meta/{_stem(target, task)}.json)")
        raise StaleResultError(stale_message(
            step, recorded, settings[(model, iteration, task)],
            "re-run with --fresh (fresh=True) to drop and recompute them, "
            "or write to another results file (--results)"))
    drop = {key for key, _, _ in stale}
    df = _without(df, drop)
    write_results(df, results_path)
    for key, target, _ in stale:
        for f in (results_path.parent / "meta" / f"{_stem(target, key[2])}.json",
                  eval_table_path(results_path.parent, target.model, target.iteration, key[2])):
            if f.exists():
                f.unlink()
    return df, done - drop


def expected_models(profile) -> list[tuple[str, int]]:
    """The (init, seed) pairs a profile's inner loop trains: what :func:`evaluate_run` expects."""
    return profile.develop.models()


def _check_run(run_root: Path, folders: list[Path], expected, strict: bool) -> list[Path]:
    """The finished folders to evaluate; warn about (or, ``strict``, refuse) missing, unexpected
    and unfinished models, naming each."""
    root = run_root / "develop"
    problems = []
    if expected is not None:
        wanted = [develop_dir(run_root, init, int(seed)) for init, seed in expected]
        missing = [d.name for d in wanted if not d.is_dir()]
        extra = [d.name for d in folders if d not in wanted]
        if missing:
            problems.append(f"{root}: expected model(s) {', '.join(missing)} missing (not trained: run `connectome "
                            "develop`); the evaluation covers the others only")
        if extra:
            warnings.warn(f"{root}: not evaluating {', '.join(extra)}: not among the expected inits x seeds",
                          stacklevel=3)
        folders = [d for d in wanted if d.is_dir()]
    unfinished = [d for d in folders if not is_done(d)]
    if unfinished:
        problems.append(f"{root}: skipping unfinished model(s) {', '.join(d.name for d in unfinished)} (no "
                        "done.json): a last checkpoint is not a final model; finish them with `connectome develop`")
    for message in problems:
        if strict:
            raise FileNotFoundError(message)
        warnings.warn(message, stacklevel=3)
    finished = [d for d in folders if d not in unfinished]
    # models trained from a connectome that has since been replaced are stale
    other, shas = [], {}
    for d in finished:
        run = read_json(d / "run.json") if (d / "run.json").exists() else {}
        lineage, sha = run.get("lineage", 0), run.get("connectome_sha256")
        if sha is None or lineage is None:
            continue
        final = final_connectome_path(run_root, int(lineage))
        if final not in shas:
            shas[final] = file_sha256(final) if final.exists() else None
        if shas[final] not in (None, sha):
            other.append(f"{d.name} ({final})")
    if other:
        raise StaleResultError(
            f"{root}: model(s) {', '.join(other)} were trained from another connectome than the one there now (its "
            "SHA-256 differs); retrain them with `connectome develop --fresh` first, or use another runs folder")
    return finished


def evaluate_run(run_root: str | os.PathLike, cfg: EvalConfig | None = None, *, tasks: Sequence[str] | None = None,
                 val_tokens: ValTokens = None, results_path: str | os.PathLike | None = None,
                 expected: Sequence[tuple[str, int]] | None = None, strict: bool = False,
                 fresh: bool = False) -> pd.DataFrame:
    """Evaluate every finished training folder ``<run_root>/develop/*`` into one results file
    (default ``<run_root>/evals/results.csv``).

    ``expected`` (e.g. :func:`expected_models` of the profile) lists the (init, seed) models the
    run should hold: only those are evaluated, and a missing one is a warning naming it (an error
    with ``strict=True``). A folder without ``done.json`` is unfinished and skipped with a warning
    (an error with ``strict=True``), so its last checkpoint is never averaged in as a final
    model. A model trained from another connectome than the run's current one raises
    :class:`StaleResultError` (retrain it first). ``fresh`` as in :func:`evaluate`.
    """
    cfg = cfg or EvalConfig()
    run_root = Path(run_root)
    root = run_root / "develop"
    folders = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    if not folders:
        raise FileNotFoundError(f"no training folders under {root}")
    results_path = Path(results_path) if results_path else evals_dir(run_root) / "results.csv"
    with run_lock(run_root, "evaluate"), run_lock(_lock_root(results_path), "evaluate"):
        folders = _check_run(run_root, folders, expected, strict)
        tokenizer = load_tokenizer(cfg.tokenizer, cfg.data_dir)
        ctx = TaskContext(tokenizer, cfg, val_tokens)
        df = read_results(results_path)
        for folder in folders:
            try:
                find_targets(folder, cfg.checkpoints)
            except FileNotFoundError:
                continue  # a folder whose training has not written anything yet
            df = _evaluate(folder, cfg, tasks=tasks, val_tokens=val_tokens, results_path=results_path,
                           model_name=None, tokenizer=tokenizer, ctx=ctx, fresh=fresh)
    return df
