"""One trainer for both loops: masked weights, the paper's optimisers and schedule, resumable.

What the trainer guarantees:

* **Fixed connectome.** With ``masks``, the gradients of pruned weights are zeroed before every
  optimiser step and the weights are re-masked after it, so pruned weights are exactly zero at
  every step (Muon's orthogonalised update is dense, so the second step matters).
* **Resumable.** The whole training state (weights, optimiser, iteration, curve, the training
  losses not yet logged, and the number of processes) is saved every ``save_state_every``
  iterations, atomically; batches are a pure function of the iteration
  (:class:`connectome_lib.data.BatchSampler`) and the learning rate is a pure function of the
  iteration, so a run killed at any point and started again ends with the same weights and the
  same curve (CPU). The batches also depend on the number of processes, so a state saved by
  another number of processes is refused (:class:`ResumeMismatchError`), never resumed silently.
* **Settings that do not shape results do not.** ``log_every`` sets only when the progress bar
  and the curve's ``train_loss`` (the mean loss of the iterations since the last log or
  validation point) are updated, ``save_state_every`` only when the state is saved (the
  pending losses are saved with it) and ``compile`` only how fast the model runs (to rounding):
  :mod:`connectome_lib.fingerprint` leaves them out. Nor does the split of a batch into
  ``batch_size`` x ``grad_accum`` (to rounding): iteration i reads the same windows, and the
  validation set is ``val_batches`` batches of ``batch_size * grad_accum`` windows.
* **Fresh data.** ``data_offset`` iterations of the token stream are skipped (the outer loop's
  generation g starts where generation g - 1 stopped); :meth:`Trainer.data_coverage` says how
  many distinct tokens the run read.
* **Fails loudly.** A non-finite loss raises :class:`NonFiniteLossError`; the state saved before
  it (the last good one) is kept.
* ``accelerate`` places the model (one or several GPUs under ``accelerate launch``, several CPU
  processes under ``torchrun``: :func:`connectome_lib.processes.process_state`), bf16 autocast on GPU, gradient
  accumulation and clipping, a tqdm progress bar, validation loss every ``val_every``
  iterations and model checkpoints at chosen iterations for learning curves.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm import tqdm

from .config import TrainConfig
from .data import BatchSampler, validation_batches
from .layout import atomic_file, atomic_folder, checkpoint_dir, write_json_atomic
from .processes import LaunchError, process_state  # noqa: F401 (LaunchError: re-exported)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class ResumeMismatchError(RuntimeError):
    """A saved training state was written by a run with another number of processes."""


def lr_factor(iteration: int, cfg: TrainConfig) -> float:
    """Warm-up (linear from 1/warmup), hold at 1, then linear decay to 0 over ``decay_iters``.

    Iterations are counted 0..iters-1; the last iteration has factor ``1/decay_iters`` ... 0.
    """
    if cfg.warmup_iters > 0 and iteration < cfg.warmup_iters:
        return (iteration + 1) / cfg.warmup_iters
    decay_start = cfg.iters - cfg.decay_iters
    if cfg.decay_iters > 0 and iteration >= decay_start:
        return max(0.0, (cfg.iters - iteration) / cfg.decay_iters)
    return 1.0


def checkpoint_iterations(cfg: TrainConfig) -> set[int]:
    """Iterations (0 = before training, ``iters`` = the end) at which a model folder is saved."""
    its = set(i for i in cfg.checkpoint_iters if 0 <= i <= cfg.iters)
    if cfg.checkpoint_every > 0:
        its |= set(range(0, cfg.iters + 1, cfg.checkpoint_every))
        its.add(cfg.iters)
    return its


def build_optimizers(model: torch.nn.Module, cfg: TrainConfig, fused: bool = False) -> list[torch.optim.Optimizer]:
    """AdamW for everything, or Muon for the 2-D block matrices + AdamW for embeddings/head.

    Each optimiser keeps its own learning rate (``lr`` and ``muon_lr``); the schedule scales both
    by the same factor via each group's ``initial_lr``.
    """
    betas = tuple(cfg.betas)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    extra = {"fused": True} if fused else {}
    if cfg.optimizer == "adamw":
        opts = [torch.optim.AdamW([p for _, p in params], lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay,
                                  **extra)]
    elif cfg.optimizer == "muon_adamw":
        block = [p for n, p in params if p.ndim == 2 and ".h." in n]
        other = [p for n, p in params if not (p.ndim == 2 and ".h." in n)]
        opts = [
            torch.optim.Muon(block, lr=cfg.muon_lr, momentum=cfg.muon_momentum, weight_decay=cfg.weight_decay),
            torch.optim.AdamW(other, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay, **extra),
        ]
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
    for opt in opts:
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    return opts


def bare_model(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """``model`` without torch.compile's and accelerate's (DDP) wrappers, leaving them intact.

    torch.compile's wrapper is removed first: accelerate's ``unwrap_model`` keeps it by default
    and then points it at the bare model, which for ``compile(DDP(model))`` would silently drop
    DDP (and so the gradient all-reduce) from the model being trained."""
    return accelerator.unwrap_model(getattr(model, "_orig_mod", model))


def _mixed_precision(cfg: TrainConfig) -> str:
    if cfg.mixed_precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return cfg.mixed_precision


class Trainer:
    """Train ``model`` on ``train_tokens`` per ``cfg``, writing to ``out_dir``.

    ``masks`` (tensor name -> bool tensor) fixes a connectome; ``on_iteration`` callbacks are
    called as ``f(iteration, model)`` after each completed iteration (tests use them to kill a
    run); ``snapshot_iters`` maps iterations to callbacks receiving a CPU copy of the weights
    (used for lottery-ticket rewinding).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainConfig,
        train_tokens: np.ndarray,
        val_tokens: np.ndarray,
        out_dir: str | os.PathLike,
        masks: dict[str, torch.Tensor] | None = None,
        accelerator: Accelerator | None = None,
        desc: str = "train",
        on_iteration: list[Callable[[int, torch.nn.Module], None]] | None = None,
        snapshot_iters: dict[int, Callable[[dict[str, torch.Tensor]], None]] | None = None,
        progress: bool = True,
        data_offset: int = 0,
        tokenizer=None,
    ):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        if accelerator is None:
            process_state()  # first, so that the processes of any launcher form one group
            accelerator = Accelerator(mixed_precision=_mixed_precision(cfg), cpu=not torch.cuda.is_available())
        self.accelerator = accelerator
        self.train_tokens = train_tokens
        self.tokenizer = tokenizer  # saved into every checkpoint folder, so each is complete
        self.seq_len = model.config.block_size
        self.sampler = BatchSampler(
            train_tokens, self.seq_len, cfg.batch_size, cfg.seed, cfg.sampling, offset=data_offset,
            grad_accum=cfg.grad_accum, world_size=self.accelerator.num_processes,
        )
        # val_batches batches of batch_size * grad_accum windows (evaluated batch_size at a time):
        # the validation set does not depend on how a batch is split into micro-batches
        self.val = validation_batches(val_tokens, self.seq_len, cfg.batch_size, cfg.val_batches * cfg.grad_accum)
        self.desc = desc
        self.on_iteration = on_iteration or []
        self.snapshot_iters = snapshot_iters or {}
        self.progress = progress
        acc = self.accelerator
        raw = model
        optimizers = build_optimizers(raw, cfg, fused=acc.device.type == "cuda")
        prepared = acc.prepare(model, *optimizers)
        # compiled after prepare (as accelerate's own dynamo option does): the saved state holds
        # the model's own tensor names, never torch.compile's ``_orig_mod.``, so a state saved
        # with ``compile`` on resumes with it off and the other way round
        self.model = torch.compile(prepared[0]) if cfg.compile else prepared[0]
        self.optimizers = list(prepared[1:])
        self.raw_model = raw
        named = dict(raw.named_parameters())
        self.masks = {n: m.to(acc.device) for n, m in (masks or {}).items()}
        self._masked_params = [named[n] for n in self.masks]
        self._mask_list = [self.masks[n].to(named[n].dtype) for n in self.masks]
        self.curve: list[dict] = []
        self.iteration = 0
        # the training losses of the iterations since the last log point: (sum, iterations)
        self._pending_restored: tuple[float, int] = (0.0, 0)

    # ------------------------------------------------------------------------------ masks
    @torch.no_grad()
    def _mask_grads(self) -> None:
        grads = [p.grad for p in self._masked_params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, [m for p, m in zip(self._masked_params, self._mask_list) if p.grad is not None])

    @torch.no_grad()
    def _mask_weights(self) -> None:
        if self._masked_params:
            torch._foreach_mul_(self._masked_params, self._mask_list)

    # ------------------------------------------------------------------------------ state
    @property
    def state_dir(self) -> Path:
        return self.out_dir / "state"

    def _save_state(self, pending: tuple[float, int] = (0.0, 0)) -> None:
        """Save the whole training state to ``state/`` (atomically, via ``state.tmp``).

        ``pending`` is the (sum, count) of the training losses not yet logged (the sum averaged
        over processes): with it, the curve of a resumed run equals an uninterrupted run's even
        when states are saved between log points. ``world_size`` records the number of
        processes, on which the batches depend (:meth:`_check_world_size`)."""
        acc = self.accelerator
        tmp = self.out_dir / "state.tmp"
        if acc.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        acc.wait_for_everyone()
        acc.save_state(str(tmp), safe_serialization=True)
        if acc.is_main_process:
            write_json_atomic(tmp / "trainer.json", {"iteration": self.iteration, "curve": self.curve,
                                                     "pending": [float(pending[0]), int(pending[1])],
                                                     "world_size": int(acc.num_processes)})
            old = self.out_dir / "state.old"
            if self.state_dir.exists():
                os.replace(self.state_dir, old)
            os.replace(tmp, self.state_dir)
            if old.exists():
                shutil.rmtree(old)
        acc.wait_for_everyone()

    def _load_state(self) -> bool:
        """Resume from ``state/`` (or ``state.old``, left by a crash mid-swap); False if none.

        A state that cannot be read (cut off by a full disk, damaged) is discarded with a warning
        that names its folder, and the step restarts from iteration 0 with exactly the weights,
        optimiser and random-number states it had before the attempt, so a resumable run never
        gets stuck on a bad state and still ends as an uninterrupted run would.
        """
        import copy
        import random
        import warnings

        found = [d for d in (self.state_dir, self.out_dir / "state.old") if (d / "trainer.json").exists()]
        if not found:
            return False
        acc = self.accelerator
        fresh = {  # what a failed, partial load_state must not leave behind
            "model": {k: v.detach().clone() for k, v in self.raw_model.state_dict().items()},
            "optimizers": [copy.deepcopy(opt.state_dict()) for opt in self.optimizers],
            "rng": (random.getstate(), np.random.get_state(), torch.get_rng_state(),
                    torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None),
            "step": getattr(acc, "step", None),
        }
        for d in found:
            try:
                info = json.loads((d / "trainer.json").read_text())
                iteration, curve = int(info["iteration"]), list(info["curve"])
                pending_sum, pending_n = info.get("pending", (0.0, 0))  # states saved before: at a log point
                pending = (float(pending_sum), int(pending_n))
                self._check_world_size(d, info)
                acc.load_state(str(d))
            except ResumeMismatchError:
                raise
            except Exception as e:  # noqa: BLE001 - any unreadable state is discarded, never trusted
                self.raw_model.load_state_dict(fresh["model"])
                for opt, state in zip(self.optimizers, fresh["optimizers"]):
                    opt.load_state_dict(state)
                py_rng, np_rng, torch_rng, cuda_rng = fresh["rng"]
                random.setstate(py_rng)
                np.random.set_state(np_rng)
                torch.set_rng_state(torch_rng)
                if cuda_rng is not None:
                    torch.cuda.set_rng_state_all(cuda_rng)
                if fresh["step"] is not None:
                    acc.step = fresh["step"]
                detail = " ".join(str(e).split())[:300]
                warnings.warn(
                    f"{self.desc}: discarding the unreadable training state {d} ({type(e).__name__}: {detail}); "
                    "restarting this step from iteration 0",
                    RuntimeWarning, stacklevel=2,
                )
                if acc.is_main_process:
                    shutil.rmtree(d, ignore_errors=True)
                continue
            self.iteration, self.curve, self._pending_restored = iteration, curve, pending
            return True
        return False

    def _check_world_size(self, state: Path, info: dict) -> None:
        """Refuse to resume a state saved by another number of processes: batch ``i`` of rank
        ``r`` depends on it (:class:`~connectome_lib.data.BatchSampler`), so the resumed run
        would read other data than the run that saved it. (A state that records no number was
        saved before it was recorded: it is resumed.)"""
        saved, now = info.get("world_size"), self.accelerator.num_processes
        if saved is not None and int(saved) != now:
            raise ResumeMismatchError(
                f"{self.desc}: the training state {state} was saved by {int(saved)} process(es), this run has {now}; "
                f"the batches depend on it. Resume with {int(saved)} (accelerate launch --num_processes "
                f"{int(saved)}), or delete {state} to restart this step from iteration 0."
            )

    # ------------------------------------------------------------------------------ steps
    @torch.no_grad()
    def evaluate_val(self) -> float:
        """Mean loss over the validation windows (the same fixed windows at every evaluation).

        With batches of equal size that is the mean of the batch means; a short last batch (a
        validation corpus shorter than ``val_batches * batch_size * grad_accum`` windows) is
        weighted by its windows, so the loss does not depend on how the windows are batched."""
        self.model.eval()
        losses, sizes = [], []
        for batch in self.val:
            batch = batch.to(self.accelerator.device)
            with self.accelerator.autocast():
                logits = self.model(batch[:, :-1]).logits
            losses.append(F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1)))
            sizes.append(len(batch))
        self.model.train()
        if len(set(sizes)) == 1:
            loss = torch.stack(losses).mean()
        else:
            loss = (torch.stack(losses) * torch.tensor(sizes, device=losses[0].device)).sum() / sum(sizes)
        return float(self.accelerator.reduce(loss, reduction="mean"))

    def _train_step(self, it: int) -> torch.Tensor:
        cfg, acc = self.cfg, self.accelerator
        factor = lr_factor(it, cfg)
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * factor
        total = torch.zeros((), device=acc.device)
        for micro in range(cfg.grad_accum):
            batch = self.sampler.batch(it, micro, acc.process_index).to(acc.device, non_blocking=True)
            sync = contextlib.nullcontext() if micro == cfg.grad_accum - 1 else acc.no_sync(self.model)
            with sync:
                with acc.autocast():
                    logits = self.model(batch[:, :-1]).logits
                loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
                acc.backward(loss / cfg.grad_accum)
            total += loss.detach() / cfg.grad_accum
        self._mask_grads()
        if cfg.grad_clip > 0:
            acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        for opt in self.optimizers:
            opt.step()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        self._mask_weights()
        return total

    def _check_finite(self, loss: float, it: int) -> None:
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"{self.desc}: training loss is {loss} at iteration {it}; stopping. The last good state "
                f"(iteration {self.iteration_saved}) is kept in {self.state_dir}. Lower the learning rate "
                "or check the data, then run the same command again to resume from it."
            )

    def _save_checkpoint(self, it: int) -> None:
        if self.accelerator.is_main_process:
            d = checkpoint_dir(self.out_dir, it)
            if not (d / "config.json").exists():
                save_model(bare_model(self.accelerator, self.model), d, tokenizer=self.tokenizer)
        self.accelerator.wait_for_everyone()

    def _write_curve(self) -> None:
        if self.accelerator.is_main_process and self.curve:
            with atomic_file(self.out_dir / "curve.csv") as tmp, open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(self.curve[0]))
                w.writeheader()
                w.writerows(self.curve)

    def fit(self) -> torch.nn.Module:
        """Train to ``cfg.iters`` iterations (resuming if a saved state exists); return the model."""
        cfg, acc = self.cfg, self.accelerator
        self.out_dir.mkdir(parents=True, exist_ok=True)
        resumed = self._load_state()
        self._mask_weights()
        self.iteration_saved = self.iteration if resumed else None
        ckpts = checkpoint_iterations(cfg)
        tokens_per_iter = cfg.batch_size * cfg.grad_accum * self.seq_len * acc.num_processes
        if self.iteration == 0:
            if cfg.val_every > 0:  # the starting point of every learning curve
                self.curve.append(dict(iteration=0, tokens=0, train_loss=float("nan"),
                                       val_loss=round(self.evaluate_val(), 6),
                                       lr_factor=round(lr_factor(0, cfg), 6), seconds=0.0))
                self._write_curve()
            if 0 in ckpts:
                self._save_checkpoint(0)
            if 0 in self.snapshot_iters:
                self.snapshot_iters[0]({n: p.detach().cpu().clone() for n, p in self.raw_model.named_parameters()})
        bar = tqdm(total=cfg.iters, initial=self.iteration, desc=self.desc,
                   disable=not (self.progress and acc.is_main_process), unit="it")
        t0, last_loss, elapsed = time.time(), float("nan"), 0.0
        pending = torch.full((), self._pending_restored[0], device=acc.device)
        n_pending = self._pending_restored[1]
        self.model.train()
        while self.iteration < cfg.iters:
            it = self.iteration
            pending += self._train_step(it)
            n_pending += 1
            self.iteration = it + 1
            done = self.iteration
            log_now = done % cfg.log_every == 0 or done == cfg.iters
            val_now = cfg.val_every > 0 and (done % cfg.val_every == 0 or done == cfg.iters)
            save_now = cfg.save_state_every > 0 and done % cfg.save_state_every == 0 and done < cfg.iters
            if log_now or val_now or save_now or done in ckpts:  # never save a state or model after a NaN
                mean_loss = float(acc.reduce(pending, reduction="mean")) / n_pending
                self._check_finite(mean_loss, done)
                if log_now or val_now:  # only these start a new window of the curve's train_loss
                    last_loss = mean_loss
                    pending.zero_()
                    n_pending = 0
                    elapsed = time.time() - t0
                    bar.set_postfix(loss=f"{last_loss:.3f}", lr=f"{lr_factor(it, cfg) * cfg.lr:.2e}")
            if val_now:
                self.curve.append(
                    dict(iteration=done, tokens=done * tokens_per_iter, train_loss=round(last_loss, 6),
                         val_loss=round(self.evaluate_val(), 6), lr_factor=round(lr_factor(it, cfg), 6),
                         seconds=round(elapsed, 2))
                )
                self._write_curve()
            if done in ckpts:
                self._save_checkpoint(done)
            if done in self.snapshot_iters:
                self.snapshot_iters[done]({n: p.detach().cpu().clone() for n, p in self.raw_model.named_parameters()})
            if save_now:
                self._save_state((float(acc.reduce(pending, reduction="mean")), n_pending))
                self.iteration_saved = done
            bar.update(1)
            for cb in self.on_iteration:
                cb(done, self.model)
        bar.close()
        self._write_curve()
        # the model itself, without torch.compile's wrapper: its parameters keep their own names
        # (``transformer.h.0...``, not ``_orig_mod.transformer...``), which pruning and masks use
        return bare_model(acc, self.model)

    def data_coverage(self) -> dict:
        """Tokens this run's ``cfg.iters`` iterations read (see :meth:`BatchSampler.coverage`)."""
        return self.sampler.coverage(self.cfg.iters, vocab_size=getattr(self.raw_model.config, "vocab_size", None))

    def cleanup_state(self) -> None:
        """Remove the resumable state once the run's outputs are written."""
        if self.accelerator.is_main_process:
            for d in (self.state_dir, self.out_dir / "state.old", self.out_dir / "state.tmp"):
                if d.exists():
                    shutil.rmtree(d)


def save_model(model: torch.nn.Module, folder: str | os.PathLike, tokenizer=None) -> Path:
    """Save a transformers model folder atomically (write to a temporary folder, then rename).

    With ``tokenizer``, its files (``tokenizer.json``, ``tokenizer_config.json``) are saved in
    the same folder, so that the folder is complete for other tools: with the model code and
    ``auto_map`` that :mod:`connectome_lib.model` makes ``save_pretrained`` write,
    ``AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)`` and
    ``AutoTokenizer.from_pretrained(folder)`` load it without ``connectome_lib`` (e.g. lm-eval).
    """
    folder = Path(folder)
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    with atomic_folder(folder) as tmp, _quiet_transformers():
        model.save_pretrained(str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
    return folder


@contextlib.contextmanager
def _quiet_transformers():
    """Hide transformers' per-save progress bar (one per checkpoint would flood the log)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def seed_everything(seed: int) -> None:
    set_seed(int(seed))
