"""One folder per step: the protocol every training step of a run follows (as in open_lth).

A run is a set of *steps* -- the generations of the outer loop, the inner-loop models, the
ablation models -- and each owns one folder (:mod:`connectome_lib.layout`). A :class:`Step` is
that folder plus the settings that shape what is computed there; it owns the protocol that
every step follows, so that evolve, develop and the ablations cannot drift apart:

1. **lock** -- :meth:`Step.lock` holds the step's own lock (``<run_root>/.locks/<kind>__<name>.lock``,
   :mod:`connectome_lib.locking`): two workers never compute the same step, while different
   steps may run in parallel (one job of a cluster array per step);
2. **reuse, resume or refuse** -- :meth:`Step.reuse_or_clear`: a finished folder whose
   ``done.json`` carries the current settings fingerprint is reused; an unfinished one whose
   ``run.json`` carries it is resumed from its last training state; a folder computed with
   other settings raises :class:`~connectome_lib.fingerprint.StaleResultError` naming what
   changed, or, with ``fresh``, is deleted and computed again;
3. **record** -- ``run.json`` first (:meth:`Step.start`), ``done.json`` last (:meth:`Step.finish`),
   both with the settings and their fingerprint;
4. **train and save** -- :func:`run_training_step` trains a :class:`TrainingSpec` with the
   :class:`~connectome_lib.training.Trainer` and saves a *complete* model folder (weights,
   config, ``model.py``/``auto_map`` and the tokenizer files, so that ``AutoModelForCausalLM``
   and ``AutoTokenizer`` load it from the folder alone).

:meth:`Step.status` tells, without side effects, whether a step is ``done``, ``partial`` (to
resume), ``stale`` or ``absent``; :mod:`connectome_lib.plan` lists every step of a profile.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from . import layout
from .fingerprint import StaleResultError, fingerprint, is_current, stale_message
from .locking import RunLockedError, step_lock
from .model_card import step_card
from .processes import process_state
from .training import Trainer, save_model

#: what :meth:`Step.status` says of a step
STATUSES = ("done", "partial", "stale", "absent")


def is_main_process() -> bool:
    """Whether this is the main process: rank 0 under ``torchrun`` or ``accelerate launch``
    (always, with one process; see :func:`connectome_lib.processes.process_state`)."""
    return process_state().is_main_process


def wait_for_everyone() -> None:
    process_state().wait_for_everyone()


def _read_record(path: Path) -> dict | None:
    try:
        record = layout.read_json(path)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@dataclass(frozen=True)
class Step:
    """One step of a run: ``kind`` (``evolve``, ``develop`` or ``ablation``), ``name`` (the
    folder name, e.g. ``gen_02``, ``connectome_s0``, ``random_wte_s1``), its folder, the
    settings that shape it and, for messages, what ``--fresh`` recomputes (``redo``)."""

    kind: str
    name: str
    folder: Path
    run_root: Path
    settings: dict = field(hash=False, compare=False)
    redo: str = "it"
    what: str = ""  # in messages, e.g. "generation 2" (default: "<kind> <name>")

    @property
    def id(self) -> str:
        """``<kind>/<name>``, e.g. ``develop/connectome_s0``: how ``connectome step`` names it."""
        return f"{self.kind}/{self.name}"

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.settings)

    @property
    def title(self) -> str:
        what = self.what or {"develop": "inner model"}.get(self.kind, self.kind) + f" {self.name}"
        return f"{what} ({self.folder})"

    # ---------------------------------------------------------------- state on disk
    def status(self) -> str:
        """``done`` (finished with these settings), ``partial`` (started with these settings:
        resumable), ``stale`` (computed or started with other settings) or ``absent``."""
        if layout.is_done(self.folder):
            return "done" if is_current(_read_record(self.folder / "done.json"), self.fingerprint) else "stale"
        if not self.folder.exists() or not any(self.folder.iterdir()):
            return "absent"
        return "partial" if is_current(_read_record(self.folder / "run.json"), self.fingerprint) else "stale"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this step's lock (see :func:`connectome_lib.locking.step_lock`). With several
        processes only the main one takes it, and every process learns whether it got it: if
        another worker holds it, all of them raise :class:`RunLockedError` (none trains alone,
        none waits forever on the others)."""
        state = process_state()
        if state.num_processes == 1:
            with step_lock(self.run_root, self.id):
                yield
            return
        from accelerate.utils import broadcast_object_list

        with contextlib.ExitStack() as held:
            refused = [None]
            if state.is_main_process:
                try:
                    held.enter_context(step_lock(self.run_root, self.id))
                except RunLockedError as e:
                    refused = [str(e)]
            broadcast_object_list(refused, from_process=0)
            if refused[0] is not None:
                raise RunLockedError(refused[0])
            yield

    def reuse_or_clear(self, fresh: bool) -> bool:
        """True if the folder holds this step finished with the current settings (reuse it).
        Otherwise make sure nothing computed with other settings is reused or resumed: raise
        :class:`StaleResultError`, or with ``fresh`` delete the folder; return False (compute,
        resuming a partial folder started with the same settings)."""
        status = self.status()
        if status == "done":
            return True
        if status in ("absent", "partial"):
            return False
        if not fresh:
            done = layout.is_done(self.folder)
            recorded = _read_record(self.folder / ("done.json" if done else "run.json"))
            what = self.title if done else f"the unfinished {self.title}"
            raise StaleResultError(stale_message(
                what, recorded, self.settings,
                f"re-run with --fresh (fresh=True) to recompute {self.redo}, or use another runs folder (--runs-dir)"))
        wait_for_everyone()  # every process has read the folder before it goes
        if is_main_process():
            shutil.rmtree(self.folder)
        wait_for_everyone()
        return False

    def start(self, record: dict[str, Any]) -> None:
        """Write ``run.json``: ``record`` plus the settings and their fingerprint (main process)."""
        if is_main_process():
            layout.write_json_atomic(self.folder / "run.json",
                                     {**record, "fingerprint": self.fingerprint, "settings": self.settings})

    def finish(self, record: dict[str, Any]) -> None:
        """Write ``done.json`` (last: the step is complete) with the settings and fingerprint."""
        layout.write_json_atomic(self.folder / "done.json",
                                 {**record, "fingerprint": self.fingerprint, "settings": self.settings})


# ------------------------------------------------------------------------------ training steps
@dataclass
class TrainingSpec:
    """What one training step trains: the initialised model, its fixed masks (``None`` =
    dense), the training settings, the tokens and what ``run.json``/``done.json`` record."""

    model: torch.nn.Module
    train_cfg: Any  # connectome_lib.config.TrainConfig
    train_tokens: np.ndarray
    val_tokens: np.ndarray
    tokenizer: Any
    desc: str
    masks: dict[str, torch.Tensor] | None = None
    record: dict[str, Any] = field(default_factory=dict)  # in run.json and done.json
    run_record: dict[str, Any] = field(default_factory=dict)  # in run.json only
    data_offset: int = 0
    snapshot_iters: dict[int, Callable] = field(default_factory=dict)
    #: False: save no intermediate checkpoints (``checkpoints/iter_*``), only the final model --
    #: for models whose evaluations read the final model alone (the ablation models): the
    #: training itself, and so the model, is the same either way
    keep_checkpoints: bool = True

    def trainer_config(self) -> Any:
        """The training settings the trainer runs with: ``train_cfg``, without checkpoints
        unless ``keep_checkpoints``."""
        return self.train_cfg if self.keep_checkpoints else self.train_cfg.without_checkpoints()


#: called on the main process after the model is saved, before the state is removed and
#: ``done.json`` is written; returns extra ``done.json`` fields
AfterTraining = Callable[[torch.nn.Module, Trainer], "dict[str, Any] | None"]


def run_training_step(step: Step, build: Callable[[], TrainingSpec], *, fresh: bool = False, progress: bool = True,
                      on_iteration=None, after: AfterTraining | None = None) -> bool:
    """Run one training ``step`` under its lock: reuse it if done (return True), else build the
    :class:`TrainingSpec` (only then: a reused step loads no data), write ``run.json``, train
    (resuming a partial folder), save the complete model folder to ``<folder>/model``, call
    ``after``, remove the training state and write ``done.json``; return False."""
    with step.lock():
        if step.reuse_or_clear(fresh):
            return True
        spec = build()
        step.start({**spec.record, **spec.run_record})
        t0 = time.time()
        trainer = Trainer(spec.model, spec.trainer_config(), spec.train_tokens, spec.val_tokens, step.folder,
                          masks=spec.masks, desc=spec.desc, on_iteration=on_iteration,
                          snapshot_iters=spec.snapshot_iters, progress=progress, data_offset=spec.data_offset,
                          tokenizer=spec.tokenizer)
        trained = trainer.fit()  # the bare model (no torch.compile wrapper): its own tensor names
        if trainer.accelerator.is_main_process:
            save_model(trained, step.folder / "model", tokenizer=spec.tokenizer)
            step_card(step.folder / "model", step.kind, {**spec.record, **spec.run_record}, spec.train_cfg,
                      block_size=trained.config.block_size, profile=step.run_root.name)
            extra = (after(trained, trainer) if after else None) or {}
            trainer.cleanup_state()
            step.finish({**spec.record, "seconds": round(time.time() - t0, 1),
                         "val_loss": trainer.curve[-1]["val_loss"] if trainer.curve else None,
                         "data": trainer.data_coverage(), **extra})
        trainer.accelerator.wait_for_everyone()
        return False


def final_val_loss(folder: Path) -> float:
    """Final validation loss of a finished training folder (its ``done.json``, else its curve)."""
    import pandas as pd

    if not layout.is_done(folder):
        raise FileNotFoundError(f"{folder} is not finished (no done.json): train it first")
    done = layout.read_json(folder / "done.json")
    if done.get("val_loss") is not None:
        return float(done["val_loss"])
    curve = pd.read_csv(folder / "curve.csv")
    return float(curve["val_loss"].dropna().iloc[-1])
