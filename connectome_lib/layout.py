"""The on-disk layout of a run: one folder per step, as in open_lth.

::

    <runs_dir>/<profile>/
        .locks/<kind>__<name>.lock       one lock per step, held while it is computed (connectome_lib.locking)
        evolve/
          c0/ c1/ ...                    one folder per lineage: an independent outer-loop run
                                         (seed evolve.seeds[k]) and the connectome it evolves
            gen_00/ ... gen_05/          one folder per generation
                run.json                 settings and their fingerprint (written first)
                model/                   trained weights (a transformers folder)
                connectome.cmask         the connectome obtained by pruning this generation
                curve.csv                iteration, train_loss, val_loss, lr, tokens
                density.csv              density of every pruned tensor after pruning
                done.json                written last: the generation is complete (+ fingerprint)
            connectome.cmask             the lineage's final connectome (= last generation's)
        develop/
            connectome_s0/ random_s0/ rowmatched_s0/ dense_s0/ ...    one folder per inner-loop model
                run.json                 init, seed, lineage, profile, iterations, connectome SHA-256,
                                         settings and fingerprint (written first)
                checkpoints/iter_000000/ transformers folders for learning curves
                model/                   the final model (a transformers folder)
                curve.csv
                state/                   resumable training state (removed when done)
                done.json                written last
        ablations/
            random_wte_s0/ only_blocks_s0/ ...   one folder per ablation model, as develop/
            evals/                       validation loss per window of every ablation and main model
        evals/
            .lock                        held while an evaluation writes the results file
            results.csv                  tidy rows: model, init, seed, iteration, task, metric, value
            meta/ tables/                per (model, iteration, task): metadata (+ fingerprint), items

Every step folder is complete once its ``done.json`` exists; steps computed with the current
settings are skipped and incomplete ones resumed (:mod:`connectome_lib.step`,
:mod:`connectome_lib.fingerprint`); :mod:`connectome_lib.plan` lists them all.
Every file is written to a temporary name and renamed (:func:`write_json_atomic`,
:func:`write_csv_atomic`; model folders and training states likewise), so a crash never leaves
a cut-off file under its final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: paper's names of the three inner-loop model types, keyed by our ``init`` option
from .registry import INIT_LABELS, INITS  # noqa: F401  (re-exported: the run-folder names use them)


def profile_dir(runs_dir: str | os.PathLike, profile: str) -> Path:
    return Path(runs_dir) / profile


def lineage_dir(run_root: str | os.PathLike, lineage: int = 0) -> Path:
    """The folder of outer-loop run ``lineage`` (one independent connectome: ``evolve/c<k>``)."""
    return Path(run_root) / "evolve" / f"c{int(lineage)}"


def generation_dir(run_root: str | os.PathLike, generation: int, lineage: int = 0) -> Path:
    return lineage_dir(run_root, lineage) / f"gen_{generation:02d}"


def final_connectome_path(run_root: str | os.PathLike, lineage: int = 0) -> Path:
    """The final connectome of lineage ``lineage`` (a copy of its last generation's)."""
    return lineage_dir(run_root, lineage) / "connectome.cmask"


def develop_dir(run_root: str | os.PathLike, init: str, seed: int) -> Path:
    if init not in INIT_LABELS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return Path(run_root) / "develop" / f"{init}_s{seed}"


#: run-folder names: ``gen_<gg>``, ``<model>_s<seed>`` (inner and ablation models), ``iter_<n>``
GENERATION_NAME = re.compile(r"^gen_(\d+)$")
LINEAGE_NAME = re.compile(r"^c(\d+)$")
SEEDED_NAME = re.compile(r"^(?P<model>.+)_s(?P<seed>\d+)$")
ITERATION_NAME = re.compile(r"^iter_(\d+)$")


def parse_seeded_name(name: str) -> tuple[str, int] | None:
    """``"connectome_s2"`` -> ``("connectome", 2)``, ``"random_wte_s0"`` -> ``("random_wte", 0)``;
    ``None`` for a name without a ``_s<seed>`` suffix."""
    m = SEEDED_NAME.match(name)
    return (m.group("model"), int(m.group("seed"))) if m else None


def parse_generation_name(name: str) -> int | None:
    """``"gen_03"`` -> 3; ``None`` for any other name."""
    m = GENERATION_NAME.match(name)
    return int(m.group(1)) if m else None


def parse_iteration_name(name: str) -> int | None:
    """``"iter_000100"`` -> 100; ``None`` for any other name."""
    m = ITERATION_NAME.match(name)
    return int(m.group(1)) if m else None


def checkpoint_dir(train_dir: str | os.PathLike, iteration: int) -> Path:
    return Path(train_dir) / "checkpoints" / f"iter_{iteration:06d}"


#: a complete checkpoint folder's name; ``iter_000100.tmp`` (a save in progress) never matches
CHECKPOINT_NAME = re.compile(r"^iter_(\d{6})$")


def list_checkpoints(train_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(iteration, folder) of every complete checkpoint of a training folder, in order.

    Only folders named exactly ``iter_XXXXXX`` (six digits) with a ``config.json`` count: a
    leftover ``iter_XXXXXX.tmp`` of an interrupted save, or any other name, is ignored."""
    root = Path(train_dir) / "checkpoints"
    out = []
    if root.is_dir():
        for d in root.iterdir():
            m = CHECKPOINT_NAME.match(d.name)
            if m and d.is_dir() and (d / "config.json").exists():
                out.append((int(m.group(1)), d))
    return sorted(out)


def evals_dir(run_root: str | os.PathLike) -> Path:
    return Path(run_root) / "evals"


def eval_stem(model: str, iteration: int, task: str) -> str:
    """The file stem of one evaluation's metadata (``meta/``) and per-item table (``tables/``)."""
    return f"{model}_iter{int(iteration):06d}_{task}"


def eval_table_path(results_dir: str | os.PathLike, model: str, iteration: int, task: str) -> Path:
    """The per-item table an evaluation writes beside its results file in ``results_dir``
    (``<results_dir>/tables/<model>_iter<iteration>_<task>.csv``)."""
    return Path(results_dir) / "tables" / f"{eval_stem(model, iteration, task)}.csv"


def is_done(folder: str | os.PathLike) -> bool:
    return (Path(folder) / "done.json").exists()


#: permissions of the files we write (mkstemp's 0600 would hide results from other users)
_FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike):
    """Yield a temporary file's name beside ``path``; on success it is made readable (0644),
    flushed to disk and renamed onto ``path``, on any error removed — so a crash never leaves a
    half-written file behind. Every file of a run is written through it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike):
    """Yield a temporary folder ``<folder>.tmp`` (emptied first); on success it replaces
    ``folder``, so a crash never leaves a half-written model or tokenizer folder under its name."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON so that a crash never leaves a half-written file behind."""
    with atomic_file(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)


def write_csv_atomic(df, path: str | os.PathLike, **to_csv_kwargs: Any) -> Path:
    """Write a DataFrame as CSV to a temporary file beside ``path``, then rename it into place,
    so that a crash or a full disk never leaves a cut-off table that a later run would trust.
    ``to_csv_kwargs`` go to :meth:`pandas.DataFrame.to_csv` (default ``index=False``); a
    ``.gz`` path is gzip-compressed with a zero timestamp (the same bytes every time)."""
    if Path(path).name.endswith(".gz"):  # the temporary name hides the suffix from pandas
        to_csv_kwargs.setdefault("compression", {"method": "gzip", "mtime": 0})
    with atomic_file(path) as tmp:
        df.to_csv(tmp, **{"index": False, **to_csv_kwargs})
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)
