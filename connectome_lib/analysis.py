"""Analyses of a run: learning curves of the inner-loop models and diagnostics of the connectome.

Every function takes data (a run folder, connectomes, token counts, evaluation rows) and returns
tidy :class:`pandas.DataFrame` s, one observation per row, for the book's notebooks to plot and
tabulate. Nothing here trains or writes anything.

The questions they answer (issue 10, "Analyses"):

* :func:`learning_curves`, :func:`tokens_per_iteration` -- does the connectome make the inner
  loop learn from fewer tokens? Per-seed validation loss against inner-loop tokens seen.
* :func:`row_density_vs_frequency` -- is the embedding/head mask organised by token frequency?
  (The ``cpu`` audit found that magnitude pruning kept rare tokens' head rows and pruned frequent
  ones, so that a fifth of the inner corpus's targets fell on fully pruned rows.)
* :func:`density_by_layer_and_kind` -- where does pruning concentrate, layer by layer and per
  matrix type, generation by generation?
* :func:`survivor_overlap` -- does the outer loop converge on a mask that the first training
  already determined, do survivors keep their signs across generations, and is the random
  control at chance overlap with the connectome?
* :func:`sign_flips`, :func:`density_by_kind`, :func:`connectome_overview` -- the small
  connectome tables of the evolution and controls stages.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from scipy import stats

from . import layout
from .connectome import Connectome
from .params import TOKEN_ROW_TENSORS, kind_of
from .registry import INITS, label_of

#: connectome labels used in the tables
CONNECTOME_LABEL, RANDOM_LABEL = label_of("connectome"), label_of("random")


# ------------------------------------------------------------------------------ helpers
def _read_curve(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"no learning curve at {path}: train that inner-loop model first (connectome develop)")
    df = pd.read_csv(path)
    missing = {"iteration", "tokens", "val_loss"} - set(df.columns)
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)}")
    return df


# ------------------------------------------------------------------------ data efficiency
def _found_seeds(run_root: str | os.PathLike, init: str) -> list[int]:
    """The seeds of the ``develop/<init>_s<seed>`` folders that have a curve.csv."""
    pattern = re.compile(rf"^{re.escape(init)}_s(\d+)$")
    root = Path(run_root) / "develop"
    found = [int(m.group(1)) for d in (root.iterdir() if root.is_dir() else [])
             if (m := pattern.match(d.name)) and (d / "curve.csv").exists()]
    return sorted(found)


def learning_curves(run_root: str | os.PathLike, inits: Sequence[str] | None = None,
                    seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Per-seed validation-loss curves of the inner-loop models: rows ``init, label, seed,
    iteration, tokens, val_loss`` from every ``develop/<init>_s<seed>/curve.csv`` (``inits``:
    all three by default; ``seeds``: by default every seed folder found).

    The per-seed rows are what paired tests over seeds need (the data-efficiency figure of the
    development stage draws them against ``tokens``). A missing curve of a requested seed raises
    :class:`FileNotFoundError` naming the file."""
    parts = []
    for init in inits if inits is not None else INITS:
        for seed in seeds if seeds is not None else _found_seeds(run_root, init):
            path = layout.develop_dir(run_root, init, seed) / "curve.csv"
            c = _read_curve(path)[["iteration", "tokens", "val_loss"]].copy()
            c.insert(0, "seed", int(seed))
            c.insert(0, "label", label_of(init))
            c.insert(0, "init", init)
            parts.append(c)
    if not parts:
        raise FileNotFoundError(
            f"no learning curves under {Path(run_root) / 'develop'}: run `connectome develop` first"
        )
    return pd.concat(parts, ignore_index=True)


def tokens_per_iteration(profile) -> int:
    """Inner-loop training tokens per iteration of a profile (one process): batch size x
    gradient accumulation x context length, as the :class:`~connectome_lib.training.Trainer`
    counts them in ``curve.csv``."""
    t = profile.develop.train
    return int(t.batch_size * t.grad_accum * profile.model.block_size)


# -------------------------------------------------------------- row density vs frequency
class RowDensity(NamedTuple):
    """Result of :func:`row_density_vs_frequency`: per-token rows and a per-tensor summary."""

    rows: pd.DataFrame
    summary: pd.DataFrame


def _check_counts(counts: np.ndarray, vocab: int, what: str) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if counts.size != vocab:
        raise ValueError(f"{what} has {counts.size} entries but the connectome's token tensors have {vocab} rows "
                         f"(use np.bincount(tokens, minlength={vocab}) with the same tokenizer)")
    if (counts < 0).any():
        raise ValueError(f"{what} has negative counts")
    return counts


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def row_density_vs_frequency(connectome: Connectome, random_connectome: Connectome,
                             token_counts_outer: np.ndarray, token_counts_inner: np.ndarray) -> RowDensity:
    """Row density of the embedding (``transformer.wte.weight``) and head (``lm_head.weight``)
    masks against token frequency, for the connectome and its random control.

    Row ``t`` of both tensors belongs to token ``t``: a pruned embedding row cuts what the model
    can read of that token, a pruned head row what it can predict. Magnitude pruning keeps the
    rows whose weights grew, which need not be the frequent tokens' rows.

    ``token_counts_*`` are ``np.bincount(tokens, minlength=vocab)`` of the outer and inner
    corpora. Returns :class:`RowDensity`:

    * ``rows``: ``tensor, connectome, token, row_density, count_outer, count_inner, freq_outer,
      freq_inner`` (one row per tensor x connectome x token);
    * ``summary`` per ``tensor, connectome``: ``density`` (overall), ``weighted_density_inner`` /
      ``_outer`` (row density averaged with the corpus's token frequencies as weights: the
      density the average target -- for the head -- or input token -- for the embedding --
      sees), ``spearman_log_freq_inner`` / ``_outer`` (Spearman rho of row density with log
      frequency over the tokens that occur in that corpus; a random mask gives ~0),
      ``empty_rows`` (rows with no connection left), ``inner_share_on_empty_rows`` (share of
      the inner corpus's tokens whose row is fully pruned: for the head, targets the model can
      only predict through the bias-free zero logit), and ``top_tokens_on_empty_rows`` (the ten
      most frequent inner tokens on empty rows, by id).
    """
    names = [n for n in TOKEN_ROW_TENSORS if n in connectome.masks]
    if not names:
        raise ValueError(f"the connectome covers none of {TOKEN_ROW_TENSORS}")
    missing = [n for n in names if n not in random_connectome.masks]
    if missing:
        raise ValueError(f"the random connectome lacks {missing}")
    vocab = connectome.masks[names[0]].shape[0]
    outer = _check_counts(token_counts_outer, vocab, "token_counts_outer")
    inner = _check_counts(token_counts_inner, vocab, "token_counts_inner")
    f_outer = outer / max(outer.sum(), 1)
    f_inner = inner / max(inner.sum(), 1)
    rows, summary = [], []
    for name in names:
        for label, c in ((CONNECTOME_LABEL, connectome), (RANDOM_LABEL, random_connectome)):
            m = c.masks[name]
            if m.shape[0] != vocab:
                raise ValueError(f"{name} has {m.shape[0]} rows in the {label} connectome, expected {vocab}")
            dens = m.to(torch.float64).mean(dim=1).numpy()
            kind = kind_of(name)
            rows.append(pd.DataFrame({
                "tensor": kind, "connectome": label, "token": np.arange(vocab), "row_density": dens,
                "count_outer": outer, "count_inner": inner, "freq_outer": f_outer, "freq_inner": f_inner}))
            empty = dens == 0
            on_empty = np.flatnonzero(empty & (inner > 0))
            top = on_empty[np.argsort(-inner[on_empty], kind="stable")][:10]
            occ_o, occ_i = outer > 0, inner > 0
            summary.append(dict(
                tensor=kind, connectome=label, density=float(m.float().mean()),
                weighted_density_inner=float((f_inner * dens).sum()),
                weighted_density_outer=float((f_outer * dens).sum()),
                spearman_log_freq_inner=_spearman(np.log(inner[occ_i]), dens[occ_i]),
                spearman_log_freq_outer=_spearman(np.log(outer[occ_o]), dens[occ_o]),
                empty_rows=int(empty.sum()),
                inner_share_on_empty_rows=float(f_inner[empty].sum()),
                top_tokens_on_empty_rows=" ".join(map(str, top.tolist())),
            ))
    return RowDensity(pd.concat(rows, ignore_index=True), pd.DataFrame(summary))


# -------------------------------------------------------------- density over generations
_GEN = re.compile(r"^gen_(\d+)$")


def available_generations(run_root: str | os.PathLike, lineage: int = 0) -> list[int]:
    """The generations of a lineage whose connectome file exists, in order."""
    root = layout.lineage_dir(run_root, lineage)
    out = []
    if root.is_dir():
        for d in root.iterdir():
            m = _GEN.match(d.name)
            if m and (d / "connectome.cmask").exists():
                out.append(int(m.group(1)))
    return sorted(out)


def load_generations(run_root: str | os.PathLike, generations: Iterable[int] | None = None,
                     lineage: int = 0) -> dict[int, Connectome]:
    """The connectome of each generation of ``lineage`` (``evolve/c<k>/gen_XX/connectome.cmask``);
    all by default."""
    gens = list(generations) if generations is not None else available_generations(run_root, lineage)
    if not gens:
        raise FileNotFoundError(
            f"no generation connectomes under {layout.lineage_dir(run_root, lineage)}: run `connectome evolve` first"
        )
    return {g: Connectome.load(layout.generation_dir(run_root, g, lineage) / "connectome.cmask") for g in gens}


def density_by_layer_and_kind(run_root: str | os.PathLike, generations: Iterable[int] | None = None) -> pd.DataFrame:
    """Density of every pruned tensor after each generation's pruning: rows ``generation,
    layer, kind, tensor, numel, kept, density, uniform_density, relative_density,
    positive_fraction``.

    ``layer`` is ``embedding``, ``block_<i>`` or ``head``; ``kind`` the matrix type
    (``c_attn``, ``attn.c_proj``, ``c_fc``, ``mlp.c_proj``, ``wte``, ``lm_head``).
    ``uniform_density`` is ``(1 - prune_fraction) ** rounds``, what per-tensor pruning gives every
    tensor; with global pruning ``relative_density`` (density / uniform_density) shows where
    the outer loop prunes more (< 1) or less (> 1) than on average. ``positive_fraction`` is the
    share of survivors with sign +1 (0.5 if signs carried no bias)."""
    parts = []
    for g, c in load_generations(run_root, generations).items():
        t = c.density_table()
        frac, rounds = c.meta.get("prune_fraction"), c.meta.get("rounds", g + 1)
        t.insert(0, "generation", g)
        t["uniform_density"] = (1 - frac) ** rounds if frac is not None else float("nan")
        t["relative_density"] = t["density"] / t["uniform_density"]
        parts.append(t[["generation", "layer", "kind", "tensor", "numel", "kept", "density", "uniform_density",
                        "relative_density", "positive_fraction"]])
    return pd.concat(parts, ignore_index=True)


def _by_kind(df: pd.DataFrame, sums: list[str]) -> pd.DataFrame:
    """Per-tensor counts summed per matrix kind, plus an ``all`` row."""
    k = df.groupby("kind", sort=True)[sums].sum().reset_index()
    total = df[sums].sum().to_frame().T
    total.insert(0, "kind", "all")
    return pd.concat([k, total], ignore_index=True)


# ----------------------------------------------------------------------- survivor overlap
def survivor_share(earlier: Connectome, later: Connectome) -> pd.DataFrame:
    """Share of ``later``'s survivors that also survive in ``earlier``, per matrix kind (and
    ``all``), against chance: rows ``kind, later_kept, shared, share, chance, chance_sd, z``.

    ``chance`` is the density of ``earlier`` (the share expected if ``later``'s survivors were
    placed independently of ``earlier``'s), ``chance_sd`` its binomial SD
    ``sqrt(c (1 - c) / later_kept)`` and ``z`` = (share - chance) / chance_sd. Between
    consecutive generations of one run the masks are nested, so the share is exactly 1 -- a
    check that pruning only removes; independent masks give chance."""
    if set(earlier.masks) != set(later.masks):
        raise ValueError("the two connectomes cover different tensors")
    per = []
    for n in sorted(later.masks):
        a, b = earlier.masks[n], later.masks[n]
        if a.shape != b.shape:
            raise ValueError(f"tensor {n} differs in shape between the two connectomes")
        per.append(dict(kind=kind_of(n), later_kept=int(b.sum()), shared=int((a & b).sum()),
                        earlier_kept=int(a.sum()), numel=a.numel()))
    t = _by_kind(pd.DataFrame(per), ["later_kept", "shared", "earlier_kept", "numel"])
    t["share"] = t["shared"] / t["later_kept"]
    t["chance"] = t["earlier_kept"] / t["numel"]
    t["chance_sd"] = np.sqrt(t["chance"] * (1 - t["chance"]) / t["later_kept"])
    t["z"] = (t["share"] - t["chance"]) / t["chance_sd"]
    return t[["kind", "later_kept", "shared", "share", "chance", "chance_sd", "z"]]


def jaccard_vs_chance(a: Connectome, b: Connectome) -> pd.DataFrame:
    """Jaccard index of the kept positions of two connectomes per matrix kind (and ``all``),
    with the value expected for two independent uniformly random masks of the same densities:
    ``da db / (da + db - da db)`` (``d^2 / (2d - d^2)`` for equal densities). For the
    connectome against its random control this checks that the control is at chance; for two
    evolved connectomes (e.g. from different outer-loop seeds) excess over chance is shared
    structure. Also ``sign_agreement`` of the shared survivors (chance 0.5 for random signs)."""
    t = a.jaccard(b)
    t["kind"] = [kind_of(n) for n in t["tensor"]]
    t["numel"] = [a.masks[n].numel() for n in t["tensor"]]
    t["kept_a"] = [int(a.masks[n].sum()) for n in t["tensor"]]
    t["kept_b"] = [int(b.masks[n].sum()) for n in t["tensor"]]
    t["agree"] = t["sign_agreement"].fillna(0) * t["intersection"]
    k = _by_kind(t, ["intersection", "union", "numel", "kept_a", "kept_b", "agree"])
    k["jaccard"] = k["intersection"] / k["union"]
    pa, pb = k["kept_a"] / k["numel"], k["kept_b"] / k["numel"]
    k["chance"] = pa * pb / (pa + pb - pa * pb)
    k["sign_agreement"] = k["agree"] / k["intersection"].where(k["intersection"] > 0)
    k["sign_chance"] = 0.5
    return k[["kind", "intersection", "union", "jaccard", "chance", "sign_agreement", "sign_chance"]]


def sign_agreement(earlier: Connectome, later: Connectome) -> pd.DataFrame:
    """Share of the survivors common to both connectomes whose signs (-1/0/+1) are equal, per
    matrix kind (and ``all``), against 0.5 (what independent random ±1 signs give):
    rows ``kind, shared, agree, agreement, chance, chance_sd, z``.

    A generation starts from ``sign * reset_value`` of the previous one's survivors; agreement
    near 1 means training keeps the signs it was given (signs are inherited), near 0.5 that they
    are redrawn every generation."""
    t = earlier.jaccard(later)
    t["kind"] = [kind_of(n) for n in t["tensor"]]
    t["agree"] = (t["sign_agreement"].fillna(0) * t["intersection"]).round().astype(int)
    k = _by_kind(t, ["intersection", "agree"]).rename(columns={"intersection": "shared"})
    k["agreement"] = k["agree"] / k["shared"].where(k["shared"] > 0)
    k["chance"] = 0.5
    k["chance_sd"] = np.sqrt(0.25 / k["shared"].where(k["shared"] > 0))
    k["z"] = (k["agreement"] - 0.5) / k["chance_sd"]
    return k[["kind", "shared", "agree", "agreement", "chance", "chance_sd", "z"]]


def _load_weights(model_dir: Path, names: Iterable[str]) -> dict[str, torch.Tensor]:
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no safetensors weights in {model_dir}: the generation's model folder is missing")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    want = list(names)
    missing = [n for n in want if n not in state]
    if missing:
        raise ValueError(f"{model_dir} has no weights named {missing[:3]}")
    return {n: state[n].float() for n in want}


def first_ranking_overlap(first_weights: dict[str, torch.Tensor], first: Connectome, later: Connectome) -> pd.DataFrame:
    """How much of a later connectome the first training already decided: per matrix kind (and
    ``all``), the share of ``later``'s survivors that are among the ``k`` largest ``|w|`` of
    generation 0's trained weights (``first_weights``), ``k`` = ``later``'s kept count per tensor.

    ``chance`` = ``k / k_first`` (``k_first``: survivors of the first pruning, ``first``): what a
    later mask drawn uniformly among the first pruning's survivors gives (the masks are nested,
    so every later mask lies inside ``first``). A share near 1 means the iterated outer loop
    converges on one-shot magnitude pruning of the first model; near chance, that later
    generations rearrange the connectome."""
    per = []
    for n in sorted(later.masks):
        m = later.masks[n]
        k = int(m.sum())
        top = torch.zeros(m.numel(), dtype=torch.bool)
        if k:
            top[torch.topk(first_weights[n].abs().reshape(-1), k).indices] = True
        per.append(dict(kind=kind_of(n), later_kept=k, shared=int((top.view(m.shape) & m).sum()),
                        first_kept=int(first.masks[n].sum())))
    t = _by_kind(pd.DataFrame(per), ["later_kept", "shared", "first_kept"])
    t["share"] = t["shared"] / t["later_kept"]
    t["chance"] = t["later_kept"] / t["first_kept"]
    return t[["kind", "later_kept", "shared", "share", "chance"]]


def survivor_overlap(run_root: str | os.PathLike, generations: Iterable[int] | None = None,
                     random_seed: int = 0) -> pd.DataFrame:
    """Survivor overlap across the generations of a run against chance, one tidy table with
    rows ``comparison, generation, reference, kind, observed, chance, chance_sd, z, n``:

    * ``nested`` (reference g-1): share of generation g's survivors that survived g-1; exactly
      1 when pruning only removes (a check, not a finding); chance = density of g-1.
    * ``first_ranking`` (reference 0): :func:`first_ranking_overlap` -- share of generation g's
      survivors among the top-|w| of generation 0's trained weights; chance k_g / k_0. This is
      the informative overlap: is the final mask already the first training's ranking?
    * ``sign_consecutive`` (reference g-1) and ``sign_vs_final`` (reference: last generation):
      :func:`sign_agreement` of the shared survivors; chance 0.5.
    * ``jaccard_random_control`` (reference: last generation): :func:`jaccard_vs_chance` of the
      final connectome with its random control (``random_control(random_seed)``); chance
      ``d^2 / (2d - d^2)`` -- the control is unstructured by construction, so this checks it.

    ``n`` is the count the share is taken over (survivors, or shared survivors for signs).
    ``first_ranking`` needs generation 0's trained model (``evolve/gen_00/model``); it is left
    out when generation 0 is not among ``generations`` or its model folder is missing."""
    conns = load_generations(run_root, generations)
    gens = sorted(conns)
    last = gens[-1]
    out = []

    def add(df, comparison, g, ref, observed, n, chance_sd=None, z=None):
        d = pd.DataFrame({"comparison": comparison, "generation": g, "reference": ref, "kind": df["kind"],
                          "observed": df[observed], "chance": df["chance"],
                          "chance_sd": df[chance_sd] if chance_sd else np.nan,
                          "z": df[z] if z else np.nan, "n": df[n]})
        out.append(d)

    for g in gens:
        if g - 1 in conns:
            add(survivor_share(conns[g - 1], conns[g]), "nested", g, g - 1, "share", "later_kept", "chance_sd", "z")
            add(sign_agreement(conns[g - 1], conns[g]), "sign_consecutive", g, g - 1, "agreement", "shared",
                "chance_sd", "z")
        if g != last:
            add(sign_agreement(conns[g], conns[last]), "sign_vs_final", g, last, "agreement", "shared",
                "chance_sd", "z")
    model0 = layout.generation_dir(run_root, 0) / "model"
    if 0 in conns and model0.is_dir():
        w0 = _load_weights(model0, conns[0].masks)
        for g in gens:
            add(first_ranking_overlap(w0, conns[0], conns[g]), "first_ranking", g, 0, "share", "later_kept")
    final = conns[last]
    jr = jaccard_vs_chance(final, final.random_control(random_seed))
    add(jr, "jaccard_random_control", last, last, "jaccard", "union")
    return pd.concat(out, ignore_index=True)


def binomial_tolerance(p: float, n: int, n_sd: float = 4.0) -> float:
    """``n_sd`` binomial standard deviations of a share ``p`` estimated from ``n`` draws: the
    tolerance within which an observed share is "at chance"."""
    return n_sd * math.sqrt(p * (1 - p) / n)


# ----------------------------------------------------------------------- stage tables
def sign_flips(connectomes) -> pd.DataFrame:
    """Between consecutive generations: ``generation`` (the later one), ``kept_of_previous``
    (its density over the previous one's: 0.8 for 20 % pruning) and ``sign_flips`` (share of
    the survivors whose sign differs from the previous generation's, pooled over every tensor:
    one minus the ``all`` row of :func:`sign_agreement`, so that the two pages that show it
    agree; a tensor counts with its number of survivors).

    ``connectomes`` is a list of generation connectomes in order (generation = position) or a
    mapping generation -> connectome (e.g. :func:`load_generations`). Near 0 means that training
    keeps the signs it was handed; 0.5 would be random signs."""
    items = sorted(connectomes.items()) if hasattr(connectomes, "items") else list(enumerate(connectomes))
    if len(items) < 2:
        raise ValueError(f"sign_flips needs at least two generations, got {len(items)}")
    rows = []
    for (_, before), (g, after) in zip(items, items[1:]):
        pooled = sign_agreement(before, after).set_index("kind").loc["all", "agreement"]
        rows.append({"generation": int(g), "kept_of_previous": after.density() / before.density(),
                     "sign_flips": 1 - float(pooled)})
    return pd.DataFrame(rows)


def density_by_kind(density: pd.DataFrame) -> pd.DataFrame:
    """Density per matrix type (rows) after each generation's pruning (columns), from the rows
    of :func:`density_by_layer_and_kind` (generation, kind, numel, kept)."""
    missing = {"generation", "kind", "numel", "kept"} - set(density.columns)
    if missing:
        raise ValueError(f"density_by_kind: the table lacks the columns {sorted(missing)}")
    t = density.groupby(["kind", "generation"])[["kept", "numel"]].sum()
    t = (t["kept"] / t["numel"]).rename("density").reset_index()
    out = t.pivot(index="kind", columns="generation", values="density")
    out.columns = [f"after gen {int(g)}" for g in out.columns]
    out.index.name = "matrix type"
    return out


def connectome_overview(connectomes) -> pd.DataFrame:
    """Overall density and mean share of positive signs (over tensors) of named connectomes:
    columns are the names of ``connectomes`` (a mapping name -> Connectome)."""
    return pd.DataFrame({name: [c.density(), float(c.density_table()["positive_fraction"].mean())]
                         for name, c in connectomes.items()},
                        index=["overall density", "mean share of positive signs"])
