"""The training stages: ``evolve`` (the outer loop) and ``develop`` (the inner loop).

Every generation and every inner model is a :class:`~connectome_lib.step.Step` with its own
folder (:mod:`connectome_lib.layout`), run by :func:`~connectome_lib.step.run_training_step`:
steps that are done are skipped, the one that was interrupted resumes, so running the same
command again always finishes the job; a step computed with other settings is refused with a
one-line :class:`StaleResultError` naming what changed, or recomputed with ``fresh=True``
(``--fresh``). A generation's fingerprint includes the previous generation's, so every later
generation follows; an inner model's includes the SHA-256 of the connectome file it starts
from, so a replaced connectome is noticed by ``develop``, and an evaluation row's includes its
model's fingerprint. Each step holds its own lock (:func:`connectome_lib.locking.step_lock`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import layout
from .config import Profile, TrainConfig
from .connectome import Connectome
from .data import load_corpus_tokens
from .fingerprint import (
    StaleResultError,  # noqa: F401  (raised here; importable from the stages)
    file_sha256,
    generation_settings,
    inner_settings,
)
from .model import ConnectomeGPTForCausalLM
from .pruning import full_masks, magnitude_prune, prunable_parameters, rewind_survivors
from .registry import INIT_LABELS
from .step import Step, TrainingSpec, is_main_process, run_training_step
from .tokenizer import profile_tokenizer
from .training import seed_everything


def build_model(profile: Profile, seed: int) -> ConnectomeGPTForCausalLM:
    """A freshly initialised model of the profile's size (standard init, seeded)."""
    seed_everything(seed)
    return ConnectomeGPTForCausalLM(profile.model.to_hf_config())


def with_seed(train_cfg: TrainConfig, seed: int) -> TrainConfig:
    """The training settings with ``seed`` (an inner model's seed sets its init and data order)."""
    import dataclasses

    return dataclasses.replace(train_cfg, seed=int(seed))


# ------------------------------------------------------------------------------ the outer loop
def generation_steps(profile: Profile) -> list[Step]:
    """The outer loop's steps, generation 0 first. Generation g's settings include generation
    g-1's fingerprint (:func:`~connectome_lib.fingerprint.generation_settings`), so a change
    anywhere upstream reaches every later generation."""
    steps, previous = [], None
    for g in range(profile.evolve.generations):
        gdir = layout.generation_dir(profile.run_root, g)
        step = Step("evolve", gdir.name, gdir, profile.run_root, generation_settings(profile, g, previous),
                    redo="it and every later generation", what=f"generation {g}")
        steps.append(step)
        previous = step.fingerprint
    return steps


def evolve(profile: Profile, progress: bool = True, on_iteration=None, fresh: bool = False) -> Connectome:
    """Run the outer loop: ``generations`` rounds of train -> prune -> reset; return the final
    connectome (also saved as ``<run_root>/evolve/connectome.cmask``).

    Generation 0 trains the dense, standard-initialised model. After each generation, 20 % (by
    default) of the still-unpruned weights of every covered tensor are pruned by magnitude, and
    the next generation starts from the survivors reset to ``sign * reset_value`` (or, with
    ``reset="rewind"``, to their values at ``rewind_iter`` of generation 0), pruned weights 0.

    Each generation is a :class:`~connectome_lib.step.Step`: finished generations computed with
    the current settings are reused; one computed with other settings raises
    :class:`StaleResultError`, or with ``fresh=True`` is recomputed together with every later
    generation. Inner models and evaluations trained from a replaced connectome are noticed by
    ``develop`` and ``evaluate`` (run them with fresh too). One generation alone:
    :func:`run_generation` (``connectome step evolve/gen_<gg>``).
    """
    connectome = None
    for g in range(profile.evolve.generations):
        connectome = run_generation(profile, g, progress=progress, on_iteration=on_iteration, fresh=fresh)
    return connectome


def run_generation(profile: Profile, g: int, progress: bool = True, on_iteration=None,
                   fresh: bool = False) -> Connectome:
    """Run generation ``g`` of the outer loop (generation g-1 must be finished); return its
    connectome. The last generation's connectome is also the run's final connectome."""
    cfg, root = profile.evolve, profile.run_root
    steps = generation_steps(profile)
    step = steps[g]
    if g > 0 and steps[g - 1].status() != "done":
        raise FileNotFoundError(f"generation {g} starts from generation {g - 1}, which is not finished with these "
                                f"settings ({steps[g - 1].folder}): run connectome step {steps[g - 1].id} first")
    rewind_path = root / "evolve" / "rewind.safetensors"

    def build() -> TrainingSpec:
        model = build_model(profile, cfg.train.seed + g)
        snapshots = {}
        if g > 0:
            previous = Connectome.load(steps[g - 1].folder / "connectome.cmask")
            if cfg.reset == "rewind":
                from safetensors.torch import load_file

                rewind_survivors(model, previous.masks, load_file(str(rewind_path)))
            else:
                previous.init_model(model, cfg.reset_value)
        elif cfg.reset == "rewind":
            snapshots[cfg.rewind_iter] = _keep_rewind_state(rewind_path)
        return TrainingSpec(
            model, cfg.train, load_corpus_tokens("outer", profile.data, progress=progress),
            load_corpus_tokens("val", profile.data, progress=progress), profile_tokenizer(profile.data, progress=False),
            desc=f"evolve gen {g}/{cfg.generations - 1}", masks=None if g == 0 else previous.masks,
            record={"generation": g}, data_offset=g * cfg.train.iters,  # every generation reads on: fresh tokens
            snapshot_iters=snapshots)

    def prune(trained, trainer) -> dict:
        covered = prunable_parameters(trained, cfg.prune_include, cfg.prune_exclude)
        prev_masks = (full_masks(covered) if g == 0
                      else Connectome.load(steps[g - 1].folder / "connectome.cmask").masks)
        weights = {n: p.detach().cpu() for n, p in covered.items()}
        new_masks = magnitude_prune(weights, prev_masks, cfg.prune_fraction, g + 1, cfg.prune_scope,
                                    ties=cfg.prune_ties, seed=cfg.train.seed + g)
        connectome = Connectome.from_model(
            trained, new_masks,
            meta={"kind": "connectome", "generation": g, "rounds": g + 1, "prune_fraction": cfg.prune_fraction,
                  "prune_scope": cfg.prune_scope, "profile": profile.name},
        )
        connectome.save(step.folder / "connectome.cmask")
        table = connectome.density_table()
        table.insert(0, "generation", g)
        layout.write_csv_atomic(table, step.folder / "density.csv")
        return {"density": connectome.density(), "iters": cfg.train.iters}

    run_training_step(step, build, fresh=fresh, progress=progress, on_iteration=on_iteration, after=prune)
    connectome = Connectome.load(step.folder / "connectome.cmask")
    if g == cfg.generations - 1 and is_main_process():
        connectome.save(layout.final_connectome_path(root))  # byte-identical to the generation's file
    return connectome


def _keep_rewind_state(path: Path):
    """A snapshot callback that saves generation 0's weights at ``rewind_iter`` (atomically)."""
    def keep(state, path=path):
        from safetensors.torch import save_file

        with layout.atomic_file(path) as tmp:
            save_file({k: v.contiguous() for k, v in state.items()}, tmp)
    return keep


def load_final_connectome(profile: Profile) -> Connectome:
    path = layout.final_connectome_path(profile.run_root)
    if not path.exists():
        raise FileNotFoundError(
            f"no connectome at {path}: run the outer loop first (connectome evolve --profile {profile.name})"
        )
    return Connectome.load(path)


# ------------------------------------------------------------------------------ the inner loop
def final_connectome_sha(profile: Profile) -> str:
    """SHA-256 of the run's final connectome file (``FileNotFoundError`` if evolve has not run)."""
    path = layout.final_connectome_path(profile.run_root)
    if not path.exists():
        raise FileNotFoundError(
            f"no connectome at {path}: run the outer loop first (connectome evolve --profile {profile.name})")
    return file_sha256(path)


def develop_step(profile: Profile, init: str, seed: int) -> Step:
    """The step of inner model (``init``, ``seed``); for the connectome and random inits its
    settings include the SHA-256 of the final connectome (which must exist)."""
    sha = final_connectome_sha(profile) if init in ("connectome", "random") else None
    ddir = layout.develop_dir(profile.run_root, init, seed)
    return Step("develop", ddir.name, ddir, profile.run_root, inner_settings(profile, init, seed, sha))


def develop_one(profile: Profile, init: str, seed: int, progress: bool = True, on_iteration=None,
                fresh: bool = False) -> Path:
    """Train one inner-loop model (``init`` in connectome/random/dense) with ``seed``; return its folder.

    A finished model is reused only if its settings -- and, for the connectome and random inits,
    the SHA-256 of the connectome file -- are the current ones; otherwise
    :class:`StaleResultError`, or with ``fresh=True`` the model is trained again."""
    cfg = profile.develop
    step = develop_step(profile, init, seed)

    def build() -> TrainingSpec:
        model = build_model(profile, seed)
        masks, density = None, None
        if init in ("connectome", "random"):
            connectome = load_final_connectome(profile)
            if init == "random":
                connectome = connectome.random_control(seed)
            connectome.init_model(model, cfg.init_value)
            masks, density = connectome.masks, connectome.density()
        return TrainingSpec(
            model, with_seed(cfg.train, seed), load_corpus_tokens("inner", profile.data, progress=progress),
            load_corpus_tokens("val", profile.data, progress=progress), profile_tokenizer(profile.data, progress=False),
            desc=f"develop {init} s{seed}", masks=masks, record={"init": init, "seed": int(seed)},
            run_record={"label": INIT_LABELS[init], "profile": profile.name, "iters": cfg.train.iters,
                        "density": density, "connectome_sha256": step.settings["connectome_sha256"]})

    run_training_step(step, build, fresh=fresh, progress=progress, on_iteration=on_iteration)
    return step.folder


def develop(profile: Profile, inits: list[str] | None = None, seeds: list[int] | None = None, progress: bool = True,
            fresh: bool = False) -> list[Path]:
    """Train every (init, seed) inner-loop model of the profile (or the given subset); ``fresh``
    retrains the models whose settings or connectome changed instead of stopping."""
    return [develop_one(profile, init, seed, progress=progress, fresh=fresh)
            for seed in (seeds if seeds is not None else profile.develop.seeds)
            for init in (inits if inits is not None else profile.develop.inits)]


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
