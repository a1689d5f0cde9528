"""The training stages: ``evolve`` (the outer loop) and ``develop`` (the inner loop).

Both write one folder per step (see :mod:`connectome_lib.layout`), skip steps that are done and
resume the one that was interrupted, so running the same command again always finishes the job.

A step is reused only if it was computed with the current settings: each records its settings
and their fingerprint (:mod:`connectome_lib.fingerprint`) in ``run.json`` (at its start) and
``done.json`` (at its end). A finished or half-finished step whose fingerprint differs is never
reported or resumed: the stage stops with a one-line :class:`StaleResultError` naming what
changed, or, with ``fresh=True`` (``--fresh``), deletes the step and computes it again. A
generation's fingerprint includes the previous generation's, so every later generation follows;
an inner model's includes the SHA-256 of the connectome file it starts from, so a replaced
connectome is noticed by ``develop``, and an evaluation row's includes its model's fingerprint.

Each stage holds the run folder's lock (:mod:`connectome_lib.locking`) while it writes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from . import layout
from .config import Profile
from .connectome import Connectome
from .data import load_corpus_tokens
from .fingerprint import StaleResultError  # noqa: F401  (raised here; importable from the stages)
from .fingerprint import file_sha256, fingerprint, generation_settings, inner_settings, stale_message
from .locking import run_lock
from .model import ConnectomeGPTForCausalLM
from .pruning import full_masks, magnitude_prune, prunable_parameters, rewind_survivors
from .tokenizer import profile_tokenizer
from .training import Trainer, save_model, seed_everything


def build_model(profile: Profile, seed: int) -> ConnectomeGPTForCausalLM:
    """A freshly initialised model of the profile's size (standard init, seeded)."""
    seed_everything(seed)
    return ConnectomeGPTForCausalLM(profile.model.to_hf_config())


def _read_record(path: Path) -> dict | None:
    try:
        return layout.read_json(path)
    except (OSError, ValueError):
        return None


def _reuse_or_clear(folder: Path, settings: dict, fp: str, step: str, fresh: bool, redo: str) -> bool:
    """True if ``folder`` holds a finished step with fingerprint ``fp`` (reuse it). Otherwise make
    sure nothing computed with other settings is reused or resumed: raise
    :class:`StaleResultError`, or with ``fresh`` delete the folder; then return False (compute)."""
    if layout.is_done(folder):
        recorded = _read_record(folder / "done.json")
        if recorded is not None and recorded.get("fingerprint") == fp:
            return True
    elif not folder.exists() or not any(folder.iterdir()):
        return False
    else:  # started, not finished: resume only what was started with the same settings
        recorded = _read_record(folder / "run.json")
        if recorded is not None and recorded.get("fingerprint") == fp:
            return False
        step = f"the unfinished {step}"
    if not fresh:
        raise StaleResultError(stale_message(
            step, recorded, settings,
            f"re-run with --fresh (fresh=True) to recompute {redo}, or use another runs folder (--runs-dir)"))
    from accelerate import PartialState

    state = PartialState()
    state.wait_for_everyone()  # every process has read the folder before it goes
    if state.is_main_process:
        shutil.rmtree(folder)
    state.wait_for_everyone()
    return False


def evolve(profile: Profile, progress: bool = True, on_iteration=None, fresh: bool = False) -> Connectome:
    """Run the outer loop: ``generations`` rounds of train -> prune -> reset; return the final
    connectome (also saved as ``<run_root>/evolve/connectome.cmask``).

    Generation 0 trains the dense, standard-initialised model. After each generation, 20 % (by
    default) of the still-unpruned weights of every covered tensor are pruned by magnitude, and
    the next generation starts from the survivors reset to ``sign * reset_value`` (or, with
    ``reset="rewind"``, to their values at ``rewind_iter`` of generation 0), pruned weights 0.

    Finished generations computed with the current settings are reused; one computed with other
    settings raises :class:`StaleResultError`, or with ``fresh=True`` is recomputed together with
    every later generation (see the module docstring). Inner models and evaluations trained from
    a replaced connectome are noticed by ``develop`` and ``evaluate`` (run them with fresh too).
    """
    with run_lock(profile.run_root, "evolve", enabled=trainer_is_main()):
        return _evolve(profile, progress, on_iteration, fresh)


def _evolve(profile: Profile, progress: bool, on_iteration, fresh: bool) -> Connectome:
    cfg = profile.evolve
    root = profile.run_root
    outer = load_corpus_tokens("outer", profile.data, progress=progress)
    val = load_corpus_tokens("val", profile.data, progress=progress)
    tokenizer = profile_tokenizer(profile.data, progress=False)
    connectome: Connectome | None = None
    rewind_path = root / "evolve" / "rewind.safetensors"
    previous = None  # fingerprint of the previous generation: the chain
    for g in range(cfg.generations):
        gdir = layout.generation_dir(root, g)
        settings = generation_settings(profile, g, previous)
        fp = fingerprint(settings)
        if _reuse_or_clear(gdir, settings, fp, f"generation {g} ({gdir})", fresh,
                           "it and every later generation"):
            connectome = Connectome.load(gdir / "connectome.cmask")
            previous = fp
            continue
        if trainer_is_main():
            layout.write_json_atomic(gdir / "run.json", {"generation": g, "fingerprint": fp, "settings": settings})
        model = build_model(profile, cfg.train.seed + g)
        covered = prunable_parameters(model, cfg.prune_include, cfg.prune_exclude)
        if connectome is None:
            masks = None
            prev_masks = full_masks(covered)
        else:
            prev_masks = connectome.masks
            masks = connectome.masks
            if cfg.reset == "rewind":
                from safetensors.torch import load_file

                rewind_survivors(model, masks, load_file(str(rewind_path)))
            else:
                connectome.init_model(model, cfg.reset_value)
        snapshots = {}
        if g == 0 and cfg.reset == "rewind":
            from safetensors.torch import save_file

            def keep(state, path=rewind_path):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
                os.replace(tmp, path)

            snapshots[cfg.rewind_iter] = keep
        t0 = time.time()
        trainer = Trainer(
            model, cfg.train, outer, val, gdir, masks=masks, desc=f"evolve gen {g}/{cfg.generations - 1}",
            on_iteration=on_iteration, snapshot_iters=snapshots, progress=progress,
            data_offset=g * cfg.train.iters,  # every generation reads on: fresh tokens
            tokenizer=tokenizer,
        )
        trained = trainer.fit()
        if trainer.accelerator.is_main_process:
            save_model(trained, gdir / "model", tokenizer=tokenizer)
            weights = {n: p.detach().cpu() for n, p in trained.named_parameters() if n in covered}
            new_masks = magnitude_prune(weights, prev_masks, cfg.prune_fraction, g + 1, cfg.prune_scope,
                                        ties=cfg.prune_ties, seed=cfg.train.seed + g)
            connectome = Connectome.from_model(
                trained, new_masks,
                meta={"kind": "connectome", "generation": g, "rounds": g + 1, "prune_fraction": cfg.prune_fraction,
                      "prune_scope": cfg.prune_scope, "profile": profile.name},
            )
            connectome.save(gdir / "connectome.cmask")
            table = connectome.density_table()
            table.insert(0, "generation", g)
            layout.write_csv_atomic(table, gdir / "density.csv")
            trainer.cleanup_state()
            final_val = trainer.curve[-1]["val_loss"] if trainer.curve else None
            layout.write_json_atomic(
                gdir / "done.json",
                {"generation": g, "density": connectome.density(), "val_loss": final_val,
                 "seconds": round(time.time() - t0, 1), "iters": cfg.train.iters,
                 "data": trainer.data_coverage(), "fingerprint": fp, "settings": settings},
            )
        trainer.accelerator.wait_for_everyone()
        connectome = Connectome.load(gdir / "connectome.cmask")
        previous = fp
    final = layout.final_connectome_path(root)
    if connectome is not None and trainer_is_main():
        connectome.save(final)
    return connectome


def trainer_is_main() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def load_final_connectome(profile: Profile) -> Connectome:
    path = layout.final_connectome_path(profile.run_root)
    if not path.exists():
        raise FileNotFoundError(
            f"no connectome at {path}: run the outer loop first (connectome evolve --profile {profile.name})"
        )
    return Connectome.load(path)


def develop_one(profile: Profile, init: str, seed: int, progress: bool = True, on_iteration=None,
                fresh: bool = False) -> Path:
    """Train one inner-loop model (``init`` in connectome/random/dense) with ``seed``; return its folder.

    A finished model is reused only if its settings -- and, for the connectome and random inits,
    the SHA-256 of the connectome file -- are the current ones; otherwise
    :class:`StaleResultError`, or with ``fresh=True`` the model is trained again."""
    with run_lock(profile.run_root, "develop", enabled=trainer_is_main()):
        return _develop_one(profile, init, seed, progress, on_iteration, fresh)


def _develop_one(profile: Profile, init: str, seed: int, progress: bool, on_iteration, fresh: bool) -> Path:
    cfg = profile.develop
    ddir = layout.develop_dir(profile.run_root, init, seed)
    connectome, connectome_sha = None, None
    if init in ("connectome", "random"):
        connectome = load_final_connectome(profile)
        connectome_sha = file_sha256(layout.final_connectome_path(profile.run_root))
    settings = inner_settings(profile, init, seed, connectome_sha)
    fp = fingerprint(settings)
    if _reuse_or_clear(ddir, settings, fp, f"inner model {ddir.name} ({ddir})", fresh, "it"):
        return ddir
    inner = load_corpus_tokens("inner", profile.data, progress=progress)
    val = load_corpus_tokens("val", profile.data, progress=progress)
    tokenizer = profile_tokenizer(profile.data, progress=False)
    model = build_model(profile, seed)
    masks = None
    if connectome is not None:
        if init == "random":
            connectome = connectome.random_control(seed)
        connectome.init_model(model, cfg.init_value)
        masks = connectome.masks
    if trainer_is_main():
        layout.write_json_atomic(
            ddir / "run.json",
            {"init": init, "label": layout.INIT_LABELS[init], "seed": seed, "profile": profile.name,
             "iters": cfg.train.iters, "density": None if masks is None else connectome.density(),
             "connectome_sha256": connectome_sha, "fingerprint": fp, "settings": settings},
        )
    train_cfg = _with_seed(cfg.train, seed)
    t0 = time.time()
    trainer = Trainer(model, train_cfg, inner, val, ddir, masks=masks, desc=f"develop {init} s{seed}",
                      on_iteration=on_iteration, progress=progress, tokenizer=tokenizer)
    trained = trainer.fit()
    if trainer.accelerator.is_main_process:
        save_model(trained, ddir / "model", tokenizer=tokenizer)
        trainer.cleanup_state()
        layout.write_json_atomic(
            ddir / "done.json",
            {"init": init, "seed": seed, "seconds": round(time.time() - t0, 1),
             "val_loss": trainer.curve[-1]["val_loss"] if trainer.curve else None,
             "data": trainer.data_coverage(), "fingerprint": fp, "settings": settings},
        )
    trainer.accelerator.wait_for_everyone()
    return ddir


def _with_seed(train_cfg, seed: int):
    import dataclasses

    return dataclasses.replace(train_cfg, seed=int(seed))


def develop(profile: Profile, inits: list[str] | None = None, seeds: list[int] | None = None, progress: bool = True,
            fresh: bool = False) -> list[Path]:
    """Train every (init, seed) inner-loop model of the profile (or the given subset); ``fresh``
    retrains the models whose settings or connectome changed instead of stopping."""
    out = []
    with run_lock(profile.run_root, "develop", enabled=trainer_is_main()):
        for seed in seeds if seeds is not None else profile.develop.seeds:
            for init in inits if inits is not None else profile.develop.inits:
                out.append(_develop_one(profile, init, seed, progress, None, fresh))
    return out


def evolution_summary(profile: Profile) -> pd.DataFrame:
    """Per generation: final validation loss, density and time (from the done.json files; their
    settings fingerprint, provenance rather than a result, is left out)."""
    rows = []
    for g in range(profile.evolve.generations):
        d = layout.generation_dir(profile.run_root, g)
        if layout.is_done(d):
            done = layout.read_json(d / "done.json")
            row = {k: v for k, v in done.items() if k not in ("settings", "fingerprint", "data")}
            data = done.get("data") or {}  # what this generation read (BatchSampler.coverage)
            row.update({k: data[k] for k in ("target_tokens", "distinct_tokens", "corpus_fraction") if k in data})
            rows.append(row)
    return pd.DataFrame(rows)
