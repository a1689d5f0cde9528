"""The on-disk layout of a run: one folder per step, as in open_lth.

::

    <runs_dir>/<profile>/
        evolve/
            gen_00/ ... gen_05/          one folder per generation
                model/                   trained weights (a transformers folder)
                connectome.cmask         the connectome obtained by pruning this generation
                curve.csv                iteration, train_loss, val_loss, lr, tokens
                density.csv              density of every pruned tensor after pruning
                done.json                written last: the generation is complete
            connectome.cmask             the final connectome (= last generation's)
        develop/
            connectome_s0/ random_s0/ dense_s0/ ...    one folder per inner-loop model
                run.json                 init, seed, profile, iterations (written first)
                checkpoints/iter_000000/ transformers folders for learning curves
                model/                   the final model (a transformers folder)
                curve.csv
                state/                   resumable training state (removed when done)
                done.json                written last
        evals/
            results.csv                  tidy rows: model, init, seed, iteration, task, metric, value

Every folder is complete once its ``done.json`` exists; stages skip completed folders and
resume incomplete ones.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: paper's names of the three inner-loop model types, keyed by our ``init`` option
INIT_LABELS = {"connectome": "Connectome", "random": "RandomConnectome", "dense": "NoConnectome"}
INITS = tuple(INIT_LABELS)


def profile_dir(runs_dir: str | os.PathLike, profile: str) -> Path:
    return Path(runs_dir) / profile


def generation_dir(run_root: str | os.PathLike, generation: int) -> Path:
    return Path(run_root) / "evolve" / f"gen_{generation:02d}"


def final_connectome_path(run_root: str | os.PathLike) -> Path:
    return Path(run_root) / "evolve" / "connectome.cmask"


def develop_dir(run_root: str | os.PathLike, init: str, seed: int) -> Path:
    if init not in INIT_LABELS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return Path(run_root) / "develop" / f"{init}_s{seed}"


def checkpoint_dir(train_dir: str | os.PathLike, iteration: int) -> Path:
    return Path(train_dir) / "checkpoints" / f"iter_{iteration:06d}"


def list_checkpoints(train_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(iteration, folder) of every complete checkpoint of a training folder, in order."""
    root = Path(train_dir) / "checkpoints"
    out = []
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith("iter_") and (d / "config.json").exists():
                out.append((int(d.name[5:]), d))
    return sorted(out)


def evals_dir(run_root: str | os.PathLike) -> Path:
    return Path(run_root) / "evals"


def is_done(folder: str | os.PathLike) -> bool:
    return (Path(folder) / "done.json").exists()


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON so that a crash never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)
