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
from .registry import CONNECTOME_INITS, INIT_LABELS
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
def lineages(profile: Profile) -> range:
    """The lineages of the outer loop: one independent run (and connectome) per ``evolve.seeds``."""
    return range(profile.evolve.lineages)


def generation_steps(profile: Profile, lineage: int = 0) -> list[Step]:
    """The outer loop's steps of ``lineage``, generation 0 first. Generation g's settings include
    generation g-1's fingerprint (:func:`~connectome_lib.fingerprint.generation_settings`), so a
    change anywhere upstream reaches every later generation."""
    steps, previous = [], None
    for g in range(profile.evolve.generations):
        gdir = layout.generation_dir(profile.run_root, g, lineage)
        step = Step("evolve", f"{gdir.parent.name}/{gdir.name}", gdir, profile.run_root,
                    generation_settings(profile, g, previous, lineage),
                    redo="it and every later generation", what=f"generation {g} of lineage {lineage}")
        steps.append(step)
        previous = step.fingerprint
    return steps


def outer_reread_message(n_tokens: int, block_size: int, train_cfg: TrainConfig, generations: int,
                         world_size: int = 1) -> str | None:
    """Why the outer loop would re-read data, or ``None`` if the outer corpus of ``n_tokens``
    holds every window its ``generations`` read (each reads ``iters x batch_size x grad_accum x
    world_size`` windows of ``block_size + 1`` tokens, on from where the previous one stopped).
    Said only for the ``sequential`` and ``shuffled`` orders (``random`` windows overlap anyway)."""
    if train_cfg.sampling == "random":
        return None
    per_generation = train_cfg.iters * train_cfg.batch_size * train_cfg.grad_accum * world_size
    available = max(0, (int(n_tokens) - 1) // block_size)
    needed = generations * per_generation
    if needed <= available:
        return None
    return (f"the outer corpus ({n_tokens:,} tokens) holds {available:,} training windows but {generations} "
            f"generations read {needed:,} ({needed * block_size + 1:,} tokens): from generation "
            f"{available / per_generation:.1f} on the outer loop re-reads data; use a larger data.outer "
            "(or data.outer_max_tokens), or fewer evolve.train.iters")


def _warn_if_outer_rereads(profile: Profile, n_tokens: int) -> None:
    """Warn (once per message) when the outer corpus is too short for fresh data in every generation."""
    import warnings

    from .processes import process_state

    message = outer_reread_message(n_tokens, profile.model.block_size, profile.evolve.train,
                                   profile.evolve.generations, process_state().num_processes)
    if message:
        warnings.warn(f"evolve (profile {profile.name}): {message}", RuntimeWarning, stacklevel=3)


def evolve(profile: Profile, progress: bool = True, on_iteration=None, fresh: bool = False) -> list[Connectome]:
    """Run the outer loop once per lineage: ``generations`` rounds of train -> prune -> reset;
    return every lineage's final connectome (also saved as ``<run_root>/evolve/c<k>/connectome.cmask``).

    Generation 0 trains the dense, standard-initialised model. After each generation, 20 % (by
    default) of the still-unpruned weights of every covered tensor are pruned by magnitude, and
    the next generation starts from the survivors reset to ``sign * reset_value`` (or, with
    ``reset="rewind"``, to their values at ``rewind_iter`` of generation 0), pruned weights 0.
    Lineage k uses seed ``evolve.seeds[k]`` for its initialisations and data order.

    Each generation is a :class:`~connectome_lib.step.Step`: finished generations computed with
    the current settings are reused; one computed with other settings raises
    :class:`StaleResultError`, or with ``fresh=True`` is recomputed together with every later
    generation. Inner models and evaluations trained from a replaced connectome are noticed by
    ``develop`` and ``evaluate`` (run them with fresh too). One generation alone:
    :func:`run_generation` (``connectome step evolve/c<k>/gen_<gg>``).
    """
    finals = []
    for k in lineages(profile):
        connectome = None
        for g in range(profile.evolve.generations):
            connectome = run_generation(profile, g, lineage=k, progress=progress, on_iteration=on_iteration,
                                        fresh=fresh)
        finals.append(connectome)
    return finals


def run_generation(profile: Profile, g: int, lineage: int = 0, progress: bool = True, on_iteration=None,
                   fresh: bool = False) -> Connectome:
    """Run generation ``g`` of ``lineage`` (its generation g-1 must be finished); return its
    connectome. The last generation's connectome is also the lineage's final connectome."""
    cfg, root = profile.evolve, profile.run_root
    seed = cfg.lineage_seeds[lineage]
    steps = generation_steps(profile, lineage)
    step = steps[g]
    if g > 0 and steps[g - 1].status() != "done":
        raise FileNotFoundError(f"generation {g} starts from generation {g - 1}, which is not finished with these "
                                f"settings ({steps[g - 1].folder}): run connectome step {steps[g - 1].id} first")
    rewind_path = layout.lineage_dir(root, lineage) / "rewind.safetensors"

    def build() -> TrainingSpec:
        model = build_model(profile, seed + g)
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
        outer = load_corpus_tokens("outer", profile.data, progress=progress)
        _warn_if_outer_rereads(profile, len(outer))
        return TrainingSpec(
            model, with_seed(cfg.train, seed), outer,
            load_corpus_tokens("val", profile.data, progress=progress), profile_tokenizer(profile.data, progress=False),
            desc=f"evolve c{lineage} gen {g}/{cfg.generations - 1}", masks=None if g == 0 else previous.masks,
            record={"generation": g, "lineage": lineage, "lineage_seed": seed},
            data_offset=g * cfg.train.iters,  # every generation reads on: fresh tokens
            snapshot_iters=snapshots)

    def prune(trained, trainer) -> dict:
        covered = prunable_parameters(trained, cfg.prune_include, cfg.prune_exclude)
        prev_masks = (full_masks(covered) if g == 0
                      else Connectome.load(steps[g - 1].folder / "connectome.cmask").masks)
        weights = {n: p.detach().cpu() for n, p in covered.items()}
        new_masks = magnitude_prune(weights, prev_masks, cfg.prune_fraction, g + 1, cfg.prune_scope,
                                    ties=cfg.prune_ties, seed=seed + g)
        connectome = Connectome.from_model(
            trained, new_masks,
            meta={"kind": "connectome", "generation": g, "rounds": g + 1, "prune_fraction": cfg.prune_fraction,
                  "prune_scope": cfg.prune_scope, "profile": profile.name, "lineage": lineage,
                  "lineage_seed": seed},
        )
        connectome.save(step.folder / "connectome.cmask")
        table = connectome.density_table()
        table.insert(0, "generation", g)
        table.insert(0, "lineage", lineage)
        layout.write_csv_atomic(table, step.folder / "density.csv")
        return {"density": connectome.density(), "iters": cfg.train.iters}

    run_training_step(step, build, fresh=fresh, progress=progress, on_iteration=on_iteration, after=prune)
    connectome = Connectome.load(step.folder / "connectome.cmask")
    if g == cfg.generations - 1 and is_main_process():
        connectome.save(layout.final_connectome_path(root, lineage))  # byte-identical to the generation's file
    return connectome


def _keep_rewind_state(path: Path):
    """A snapshot callback that saves generation 0's weights at ``rewind_iter`` (atomically)."""
    def keep(state, path=path):
        from safetensors.torch import save_file

        with layout.atomic_file(path) as tmp:
            save_file({k: v.contiguous() for k, v in state.items()}, tmp)
    return keep


def load_final_connectome(profile: Profile, lineage: int = 0) -> Connectome:
    """The final connectome of ``lineage`` (``FileNotFoundError`` if its outer loop has not run)."""
    path = layout.final_connectome_path(profile.run_root, lineage)
    if not path.exists():
        raise FileNotFoundError(
            f"no connectome at {path}: run the outer loop first (connectome evolve --profile {profile.name})"
        )
    return Connectome.load(path)


# ------------------------------------------------------------------------------ the inner loop
def final_connectome_sha(profile: Profile, lineage: int = 0) -> str:
    """SHA-256 of ``lineage``'s final connectome file (``FileNotFoundError`` if evolve has not run)."""
    path = layout.final_connectome_path(profile.run_root, lineage)
    if not path.exists():
        raise FileNotFoundError(
            f"no connectome at {path}: run the outer loop first (connectome evolve --profile {profile.name})")
    return file_sha256(path)


def lineage_of(profile: Profile, seed: int) -> int:
    """The lineage whose connectome the inner model with ``seed`` inherits (or is matched to): the
    i-th seed of ``develop.seeds`` goes with lineage ``i % evolve.lineages``, so every lineage gets
    the same number of inner seeds when there are a multiple of them. A seed outside
    ``develop.seeds`` (an extra model asked for by hand) goes by its value."""
    seeds = [int(s) for s in profile.develop.seeds]
    i = seeds.index(int(seed)) if int(seed) in seeds else int(seed)
    return i % profile.evolve.lineages


def control_connectome(connectome: Connectome, init: str, seed: int) -> Connectome:
    """The connectome an inner model of ``init`` starts from: the evolved one itself, or a random
    control matched to it, drawn with ``seed``."""
    if init == "connectome":
        return connectome
    if init == "random":
        return connectome.random_control(seed)
    if init == "rowmatched":
        return connectome.row_matched_control(seed)
    raise ValueError(f"init {init!r} starts from no connectome")


def develop_step(profile: Profile, init: str, seed: int) -> Step:
    """The step of inner model (``init``, ``seed``); for the inits that start from a connectome its
    settings include the lineage and the SHA-256 of that lineage's final connectome (which must exist)."""
    lineage = lineage_of(profile, seed) if init in CONNECTOME_INITS else None
    sha = final_connectome_sha(profile, lineage) if lineage is not None else None
    ddir = layout.develop_dir(profile.run_root, init, seed)
    return Step("develop", ddir.name, ddir, profile.run_root, inner_settings(profile, init, seed, sha, lineage))


def develop_one(profile: Profile, init: str, seed: int, progress: bool = True, on_iteration=None,
                fresh: bool = False) -> Path:
    """Train one inner-loop model (``init`` in connectome/random/rowmatched/dense) with ``seed``;
    return its folder.

    A finished model is reused only if its settings -- and, for the inits that start from a
    connectome, the SHA-256 of the connectome file -- are the current ones; otherwise
    :class:`StaleResultError`, or with ``fresh=True`` the model is trained again."""
    cfg = profile.develop
    step = develop_step(profile, init, seed)
    lineage = step.settings["lineage"]

    def build() -> TrainingSpec:
        model = build_model(profile, seed)
        masks, density = None, None
        if lineage is not None:
            connectome = control_connectome(load_final_connectome(profile, lineage), init, seed)
            connectome.init_model(model, cfg.init_value)
            masks, density = connectome.masks, connectome.density()
        return TrainingSpec(
            model, with_seed(cfg.train, seed), load_corpus_tokens("inner", profile.data, progress=progress),
            load_corpus_tokens("val", profile.data, progress=progress), profile_tokenizer(profile.data, progress=False),
            desc=f"develop {init} s{seed}", masks=masks, record={"init": init, "seed": int(seed)},
            run_record={"label": INIT_LABELS[init], "profile": profile.name, "iters": cfg.train.iters,
                        "density": density, "lineage": lineage,
                        "connectome_sha256": step.settings["connectome_sha256"]})

    run_training_step(step, build, fresh=fresh, progress=progress, on_iteration=on_iteration)
    return step.folder


def develop(profile: Profile, inits: list[str] | None = None, seeds: list[int] | None = None, progress: bool = True,
            fresh: bool = False) -> list[Path]:
    """Train every (init, seed) inner-loop model of the profile (``develop.models()``), or those
    of the given inits and seeds; ``fresh`` retrains the models whose settings or connectome
    changed instead of stopping."""
    if seeds is not None:
        models = [(init, int(s)) for s in seeds for init in (inits if inits is not None else profile.develop.inits)]
    else:
        models = [(i, s) for i, s in profile.develop.models() if inits is None or i in inits]
    return [develop_one(profile, init, seed, progress=progress, fresh=fresh) for init, seed in models]


def evolution_summary(profile: Profile) -> pd.DataFrame:
    """Per lineage and generation: final validation loss, density and time (from the done.json
    files; their settings fingerprint, provenance rather than a result, is left out)."""
    rows = []
    for k in lineages(profile):
        for g in range(profile.evolve.generations):
            d = layout.generation_dir(profile.run_root, g, k)
            if not layout.is_done(d):
                continue
            done = layout.read_json(d / "done.json")
            row = {"lineage": k, **{k2: v for k2, v in done.items() if k2 not in ("settings", "fingerprint", "data")}}
            data = done.get("data") or {}  # what this generation read (BatchSampler.coverage)
            row.update({c: data[c] for c in ("target_tokens", "distinct_tokens", "corpus_fraction") if c in data})
            rows.append(row)
    return pd.DataFrame(rows)
