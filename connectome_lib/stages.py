"""The training stages: ``evolve`` (the outer loop) and ``develop`` (the inner loop).

Both write one folder per step (see :mod:`connectome_lib.layout`), skip steps that are done and
resume the one that was interrupted, so running the same command again always finishes the job.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from . import layout
from .config import Profile
from .connectome import Connectome
from .data import load_corpus_tokens
from .model import ConnectomeGPTForCausalLM
from .pruning import full_masks, magnitude_prune, prunable_parameters, rewind_survivors
from .training import Trainer, save_model, seed_everything


def build_model(profile: Profile, seed: int) -> ConnectomeGPTForCausalLM:
    """A freshly initialised model of the profile's size (standard init, seeded)."""
    seed_everything(seed)
    return ConnectomeGPTForCausalLM(profile.model.to_hf_config())


def evolve(profile: Profile, progress: bool = True, on_iteration=None) -> Connectome:
    """Run the outer loop: ``generations`` rounds of train -> prune -> reset; return the final
    connectome (also saved as ``<run_root>/evolve/connectome.cmask``).

    Generation 0 trains the dense, standard-initialised model. After each generation, 20 % (by
    default) of the still-unpruned weights of every covered tensor are pruned by magnitude, and
    the next generation starts from the survivors reset to ``sign * reset_value`` (or, with
    ``reset="rewind"``, to their values at ``rewind_iter`` of generation 0), pruned weights 0.
    """
    cfg = profile.evolve
    root = profile.run_root
    outer = load_corpus_tokens("outer", profile.data, progress=progress)
    val = load_corpus_tokens("val", profile.data, progress=progress)
    connectome: Connectome | None = None
    rewind_path = root / "evolve" / "rewind.safetensors"
    for g in range(cfg.generations):
        gdir = layout.generation_dir(root, g)
        if layout.is_done(gdir):
            connectome = Connectome.load(gdir / "connectome.cmask")
            continue
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
                save_file({k: v.contiguous() for k, v in state.items()}, str(path))

            snapshots[cfg.rewind_iter] = keep
        t0 = time.time()
        trainer = Trainer(
            model, cfg.train, outer, val, gdir, masks=masks, desc=f"evolve gen {g}/{cfg.generations - 1}",
            on_iteration=on_iteration, snapshot_iters=snapshots, progress=progress,
        )
        trained = trainer.fit()
        if trainer.accelerator.is_main_process:
            save_model(trained, gdir / "model")
            weights = {n: p.detach().cpu() for n, p in trained.named_parameters() if n in covered}
            new_masks = magnitude_prune(weights, prev_masks, cfg.prune_fraction, g + 1, cfg.prune_scope)
            connectome = Connectome.from_model(
                trained, new_masks,
                meta={"kind": "connectome", "generation": g, "rounds": g + 1, "prune_fraction": cfg.prune_fraction,
                      "prune_scope": cfg.prune_scope, "profile": profile.name},
            )
            connectome.save(gdir / "connectome.cmask")
            table = connectome.density_table()
            table.insert(0, "generation", g)
            table.to_csv(gdir / "density.csv", index=False)
            trainer.cleanup_state()
            final_val = trainer.curve[-1]["val_loss"] if trainer.curve else None
            layout.write_json_atomic(
                gdir / "done.json",
                {"generation": g, "density": connectome.density(), "val_loss": final_val,
                 "seconds": round(time.time() - t0, 1), "iters": cfg.train.iters},
            )
        trainer.accelerator.wait_for_everyone()
        connectome = Connectome.load(gdir / "connectome.cmask")
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


def develop_one(profile: Profile, init: str, seed: int, progress: bool = True, on_iteration=None) -> Path:
    """Train one inner-loop model (``init`` in connectome/random/dense) with ``seed``; return its folder."""
    cfg = profile.develop
    ddir = layout.develop_dir(profile.run_root, init, seed)
    if layout.is_done(ddir):
        return ddir
    inner = load_corpus_tokens("inner", profile.data, progress=progress)
    val = load_corpus_tokens("val", profile.data, progress=progress)
    model = build_model(profile, seed)
    masks = None
    if init in ("connectome", "random"):
        connectome = load_final_connectome(profile)
        if init == "random":
            connectome = connectome.random_control(seed)
        connectome.init_model(model, cfg.init_value)
        masks = connectome.masks
    layout.write_json_atomic(
        ddir / "run.json",
        {"init": init, "label": layout.INIT_LABELS[init], "seed": seed, "profile": profile.name,
         "iters": cfg.train.iters, "density": None if masks is None else connectome.density()},
    )
    train_cfg = _with_seed(cfg.train, seed)
    t0 = time.time()
    trainer = Trainer(model, train_cfg, inner, val, ddir, masks=masks, desc=f"develop {init} s{seed}",
                      on_iteration=on_iteration, progress=progress)
    trained = trainer.fit()
    if trainer.accelerator.is_main_process:
        save_model(trained, ddir / "model")
        trainer.cleanup_state()
        layout.write_json_atomic(
            ddir / "done.json",
            {"init": init, "seed": seed, "seconds": round(time.time() - t0, 1),
             "val_loss": trainer.curve[-1]["val_loss"] if trainer.curve else None},
        )
    trainer.accelerator.wait_for_everyone()
    return ddir


def _with_seed(train_cfg, seed: int):
    import dataclasses

    return dataclasses.replace(train_cfg, seed=int(seed))


def develop(profile: Profile, inits: list[str] | None = None, seeds: list[int] | None = None, progress: bool = True) -> list[Path]:
    """Train every (init, seed) inner-loop model of the profile (or the given subset)."""
    out = []
    for seed in seeds if seeds is not None else profile.develop.seeds:
        for init in inits if inits is not None else profile.develop.inits:
            out.append(develop_one(profile, init, seed, progress=progress))
    return out


def evolution_summary(profile: Profile) -> pd.DataFrame:
    """Per generation: final validation loss, density and time (from the done.json files)."""
    rows = []
    for g in range(profile.evolve.generations):
        d = layout.generation_dir(profile.run_root, g)
        if layout.is_done(d):
            rows.append(layout.read_json(d / "done.json"))
    return pd.DataFrame(rows)
