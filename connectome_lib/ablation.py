"""Per-component ablation: which part of the connectome carries its effect on the inner loop?

A *hybrid* connectome takes the masks and signs of some components -- the token embedding
(``wte``), the transformer blocks (``blocks``: every ``transformer.h.<i>.*`` tensor) and the
head (``lm_head``) -- from the random control and the rest from the evolved connectome. The
random control is matched tensor by tensor (same number of survivors at random positions,
random signs), so a hybrid has exactly the connectome's density in every tensor and differs
from it only in *where* the survivors of the replaced components sit and which sign they have.

:data:`ABLATIONS` lists the six variants: one component replaced (``random_wte``,
``random_blocks``, ``random_lm_head``) and all but one replaced (``only_wte``, ``only_blocks``,
``only_lm_head``). With none replaced the hybrid is the Connectome model, with all replaced
the RandomConnectome model of the same seed (the random control is ``random_control(seed)``,
exactly as ``develop`` draws it), so the six variants interpolate between the two. The stage
uses the connectome of one lineage (``ablations.lineage``) and, by default, the inner seeds of
that lineage: its tests compare single model pairs on the same windows (a description of these
models, not a claim about the procedure, whose replicates are lineages).

:func:`train_ablation` trains one variant like :func:`connectome_lib.stages.develop_one` trains
the Connectome model (same training config with the seed, same init value, same data), in
``<run_root>/ablations/<variant>_s<seed>/`` with ``run.json`` first and ``done.json`` last;
:func:`ablation_table` puts the final validation losses beside the three main model types.

Whether a replacement *changes* the loss is a paired test, not a rule of thumb on seed SEs:
:func:`evaluate_ablations` scores every final model (ablations and the three main types) on the
same validation windows (the ``perplexity`` task, written to ``<run_root>/ablations/evals/``),
:func:`ablation_items` gathers the per-window losses, and :func:`ablation_tests` compares every
model with the Connectome model of the same seed on the same windows
(:func:`connectome_lib.stats.compare_models`: sign-flip permutation test pooled over seeds,
bootstrap CI over windows, one Holm correction over the family).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import layout, stages
from .config import Profile
from .connectome import Connectome, ConnectomeError
from .data import load_corpus_tokens
from .fingerprint import inner_settings
from .params import COMPONENTS, component_of
from .registry import ABLATIONS, ABLATIONS_BY_NAME, AblationVariant
from .stats import seed_mean_se
from .step import Step, TrainingSpec, final_val_loss, run_training_step
from .tokenizer import profile_tokenizer


def hybrid_connectome(connectome: Connectome, random_connectome: Connectome, take_random: Iterable[str]) -> Connectome:
    """A connectome whose masks and signs come from ``random_connectome`` for the tensors of the
    components in ``take_random`` (a subset of :data:`COMPONENTS`) and from ``connectome`` for
    the others. Both must cover the same tensors with the same shapes."""
    take = frozenset(take_random)
    bad = take - set(COMPONENTS)
    if bad:
        raise ValueError(f"unknown components {sorted(bad)}; choose from {list(COMPONENTS)}")
    if set(connectome.masks) != set(random_connectome.masks):
        raise ConnectomeError("the connectome and the random control cover different tensors")
    masks, signs = {}, {}
    for n in connectome.masks:
        src = random_connectome if component_of(n) in take else connectome
        if src.masks[n].shape != connectome.masks[n].shape:
            raise ConnectomeError(f"tensor {n} differs in shape between the connectome and the random control")
        masks[n] = src.masks[n].clone()
        signs[n] = src.signs[n].clone()
    meta = {"kind": "ablation", "take_random": sorted(take),
            "connectome": dict(connectome.meta), "random_control": dict(random_connectome.meta)}
    return Connectome(masks, signs, dict(connectome.model_config), meta)


def get_variant(variant: str | AblationVariant) -> AblationVariant:
    if isinstance(variant, AblationVariant):
        return variant
    if variant not in ABLATIONS_BY_NAME:
        raise ValueError(f"unknown ablation {variant!r}; choose from {list(ABLATIONS_BY_NAME)}")
    return ABLATIONS_BY_NAME[variant]


def ablation_dir(run_root: str | os.PathLike, variant: str | AblationVariant, seed: int) -> Path:
    """``<run_root>/ablations/<variant>_s<seed>``."""
    return Path(run_root) / "ablations" / f"{get_variant(variant).name}_s{int(seed)}"


def ablation_seeds(profile: Profile) -> list[int]:
    """The seeds of the ablation stage: ``ablations.seeds``, or the inner seeds whose models
    inherit the connectome of ``ablations.lineage`` (:func:`~connectome_lib.stages.lineage_of`)."""
    if profile.ablations.seeds is not None:
        return [int(s) for s in profile.ablations.seeds]
    return [int(s) for s in profile.develop.seeds if stages.lineage_of(profile, s) == profile.ablations.lineage]


def ablation_variants(profile: Profile) -> list[str]:
    """The variants of the ablation stage: ``ablations.variants``, or all of :data:`ABLATIONS`."""
    v = profile.ablations.variants
    return list(v) if v is not None else [a.name for a in ABLATIONS]


def ablation_settings(profile: Profile, variant: AblationVariant, seed: int, connectome_sha256: str) -> dict:
    """The settings that shape an ablation model: those of a Connectome inner model of the same
    seed from lineage ``ablations.lineage`` (:func:`~connectome_lib.fingerprint.inner_settings`)
    plus the variant."""
    settings = inner_settings(profile, "connectome", seed, connectome_sha256, profile.ablations.lineage)
    settings.update(step="ablation", variant=variant.name, take_random=sorted(variant.take_random))
    return settings


def ablation_step(profile: Profile, variant: str | AblationVariant, seed: int) -> Step:
    """The step of one ablation model (the final connectome must exist: its SHA-256 is a setting)."""
    v = get_variant(variant)
    folder = ablation_dir(profile.run_root, v, seed)
    settings = ablation_settings(profile, v, seed, stages.final_connectome_sha(profile, profile.ablations.lineage))
    return Step("ablation", folder.name, folder, profile.run_root, settings)


def build_hybrid(profile: Profile, variant: str | AblationVariant, seed: int) -> Connectome:
    """The hybrid connectome of ``variant`` for ``seed`` from the final connectome of lineage
    ``ablations.lineage`` and its random control ``random_control(seed)`` (the RandomConnectome
    model's of that seed, when the seed belongs to that lineage)."""
    v = get_variant(variant)
    connectome = stages.load_final_connectome(profile, profile.ablations.lineage)
    return hybrid_connectome(connectome, connectome.random_control(seed), v.take_random)


def train_ablation(profile: Profile, variant: str | AblationVariant, seed: int, progress: bool = True,
                   fresh: bool = False) -> Path:
    """Train the inner-loop model of one ablation ``variant`` with ``seed``; return its folder.

    The model is trained exactly as ``develop_one`` trains the Connectome model -- the same
    freshly seeded model (:func:`~connectome_lib.stages.build_model`), initialised with
    ``sign * init_value`` on the hybrid's mask, trained with the masks held fixed on the inner
    corpus by the :class:`~connectome_lib.training.Trainer` with the develop config and the seed
    -- so the variants differ from the Connectome and RandomConnectome models of the same seed
    only in the hybrid. It is a :class:`~connectome_lib.step.Step` like every training step: a
    finished folder with the current settings (fingerprinted with the final connectome's
    SHA-256) is reused; one with other settings raises
    :class:`~connectome_lib.fingerprint.StaleResultError`, or with ``fresh=True`` is retrained."""
    v = get_variant(variant)
    cfg = profile.develop
    step = ablation_step(profile, v, seed)

    def build() -> TrainingSpec:
        hybrid = build_hybrid(profile, v, seed)
        model = stages.build_model(profile, seed)
        hybrid.init_model(model, cfg.init_value)
        return TrainingSpec(
            model, stages.with_seed(cfg.train, seed), load_corpus_tokens("inner", profile.data, progress=progress),
            load_corpus_tokens("val", profile.data, progress=progress), profile_tokenizer(profile.data, progress=False),
            desc=f"ablation {v.name} s{seed}", masks=hybrid.masks, record={"variant": v.name, "seed": int(seed)},
            run_record={"take_random": sorted(v.take_random), "profile": profile.name, "iters": cfg.train.iters,
                        "density": hybrid.density(), "connectome_sha256": step.settings["connectome_sha256"]},
            keep_checkpoints=profile.ablations.keep_checkpoints)

    run_training_step(step, build, fresh=fresh, progress=progress)
    return step.folder


def train_ablations(profile: Profile, seeds: Sequence[int] | None = None, variants: Sequence[str] | None = None,
                    progress: bool = True, fresh: bool = False) -> list[Path]:
    """Every variant x seed (by default :func:`ablation_variants` and :func:`ablation_seeds`)."""
    return [train_ablation(profile, v, seed, progress=progress, fresh=fresh)
            for seed in (seeds if seeds is not None else ablation_seeds(profile))
            for v in (variants if variants is not None else ablation_variants(profile))]


def ablation_folders(profile: Profile, seeds, variants) -> list[tuple[str, int, Path]]:
    """``(model, seed, folder)`` of the main model types (``model`` = their init) and of every
    ablation variant (``model`` = its name), for ``seeds`` (default: :func:`ablation_seeds`)."""
    seeds = list(seeds if seeds is not None else ablation_seeds(profile))
    out = [(init, int(s), layout.develop_dir(profile.run_root, init, s))
           for init in profile.develop.inits for s in seeds]
    for name in variants if variants is not None else ablation_variants(profile):
        v = get_variant(name)
        out += [(v.name, int(s), ablation_dir(profile.run_root, v, s)) for s in seeds]
    return out


def ablation_runs(profile: Profile, seeds: Sequence[int] | None = None,
                  variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Final validation loss per model and seed: rows ``model, label, group, take_random, seed,
    val_loss`` for the three main model types (``group`` = ``main``, from ``develop/``) and every
    ablation variant (``group`` = ``ablation``). The per-seed rows are what paired tests need
    (every variant shares its seed's model init and data order with the main models)."""
    main = {"connectome": "", "random": " ".join(COMPONENTS), "rowmatched": "(row-matched) " + " ".join(COMPONENTS),
            "dense": "(dense)"}
    rows = []
    for model, seed, folder in ablation_folders(profile, seeds, variants):
        if model in main:
            meta = dict(label=layout.INIT_LABELS[model], group="main", take_random=main[model])
        else:
            v = get_variant(model)
            meta = dict(label=v.label, group="ablation", take_random=" ".join(sorted(v.take_random)))
        rows.append(dict(model=model, **meta, seed=seed, val_loss=final_val_loss(folder)))
    return pd.DataFrame(rows)


def ablation_table(profile: Profile, seeds: Sequence[int] | None = None,
                   variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Final validation loss per variant with the three main model types alongside: rows
    ``model, label, group, take_random, mean, se, n_seeds, delta_vs_connectome`` (mean and
    standard error over seeds; ``delta_vs_connectome`` = mean loss minus the Connectome's, so a
    component whose replacement closes the gap to RandomConnectome/NoConnectome is the one that
    carries the effect)."""
    runs = ablation_runs(profile, seeds, variants)
    order = list(dict.fromkeys(runs["model"]))
    out = seed_mean_se(runs, ["model", "label", "group", "take_random"], "val_loss")
    ref = out.loc[out["model"] == "connectome", "mean"]
    out["delta_vs_connectome"] = out["mean"] - (float(ref.iloc[0]) if len(ref) else np.nan)
    out["model"] = pd.Categorical(out["model"], order, ordered=True)
    return out.sort_values("model").assign(model=lambda d: d["model"].astype(str)).reset_index(drop=True)


# ------------------------------------------------------------------------------ paired tests
def ablation_results_path(profile: Profile) -> Path:
    """``<run_root>/ablations/evals/results.csv``: the per-window losses of the ablation stage."""
    return Path(profile.run_root) / "ablations" / "evals" / "results.csv"


def evaluate_ablations(profile: Profile, cfg, val_tokens, seeds: Sequence[int] | None = None,
                       variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Validation loss per window of the final model of every ablation variant and of the three
    main model types (``perplexity`` task with the evaluation options ``cfg``, final models
    only), all in :func:`ablation_results_path` so that every model is scored on the same
    windows; resumes like every evaluation. Returns the results rows."""
    from dataclasses import replace

    from .evals.runner import evaluate

    cfg = replace(cfg, checkpoints="final")
    path = ablation_results_path(profile)
    rows = pd.DataFrame()
    for _, _, folder in ablation_folders(profile, seeds, variants):  # an unfinished folder is an error there
        rows = evaluate(folder, cfg, tasks=["perplexity"], val_tokens=val_tokens, results_path=path)
    return rows


def ablation_items(profile: Profile, seeds: Sequence[int] | None = None,
                   variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-window validation losses written by :func:`evaluate_ablations`: rows ``model``
    (``connectome``, ``random``, ``dense`` or a variant name), ``seed``, ``item`` (window),
    ``loss`` and ``cluster`` (the window's validation book: windows of one book are not
    independent, so the tests resample books)."""
    from .evals.runner import read_results

    path = ablation_results_path(profile)
    res = read_results(path)
    parts = []
    for model, seed, folder in ablation_folders(profile, seeds, variants):
        r = res[(res["model"] == folder.name) & (res["task"] == "perplexity")]
        if r.empty:
            raise FileNotFoundError(f"{path} has no validation loss of {folder.name}: run evaluate_ablations first")
        it = int(r["iteration"].max())
        table = pd.read_csv(layout.eval_table_path(path.parent, folder.name, it, "perplexity"))
        parts.append(table[["item", "loss"]].assign(model=model, seed=seed))
    from .effects import profile_window_books

    items = pd.concat(parts, ignore_index=True)[["model", "seed", "item", "loss"]]
    books = profile_window_books(profile, int(items["item"].max()) + 1)
    return items.assign(cluster=books[items["item"].to_numpy(int)])


def ablation_tests(items: pd.DataFrame, config=None) -> pd.DataFrame:
    """Every model against the Connectome model on the same validation windows and seeds:
    one row per model ``a`` (``b`` = ``connectome``) with :func:`connectome_lib.stats.compare_models`'s
    columns (``effect`` = mean loss of ``a`` minus the Connectome's, so positive = the
    replacement costs; bootstrap CI over windows, over whole books when ``items`` has the
    ``cluster`` column :func:`ablation_items` writes, as does the sign-flip test; ``p_items_holm``
    Holm-adjusted over every row of this table; ``verdict`` ``worse``/``better``/
    ``indistinguishable`` for ``a``). These describe the models of one connectome and its seeds,
    never the training procedure: that is tested across connectomes (:mod:`connectome_lib.verdicts`)."""
    from dataclasses import replace

    from .stats import StatsConfig, apply_holm, compare_models

    config = config or StatsConfig()
    if "connectome" not in set(items["model"]):
        raise ValueError("ablation_tests needs the Connectome model's per-window losses")
    others = [m for m in dict.fromkeys(items["model"]) if m != "connectome"]
    clusters = (items.drop_duplicates("item").set_index("item")["cluster"] if "cluster" in items else None)
    rows = [compare_models(items, "loss", models=[m, "connectome"], higher_is_better=False,
                           config=replace(config, seed=config.seed + 1000 * k), label_col="model", clusters=clusters)
            for k, m in enumerate(others)]  # an independent, reproducible resampling stream per model
    if not rows:
        return pd.DataFrame()
    return apply_holm(pd.concat(rows, ignore_index=True), config.alpha, higher_is_better=False)
