"""Gather a run's outputs into tidy tables, export them as small result files, and compare
them with the paper.

The book's results page is drawn at build time from the files :func:`export_results` writes
(``results/<profile>/``), never from the run folders (which hold model weights and stay out of
the repository).
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import layout

#: the files of an exported result folder and what they hold
RESULT_FILES = {
    "eval_results.csv": "every evaluation row: model, init, label, seed, iteration, task, metric, value, n",
    "training_curves.csv": "inner-loop learning curves: label, init, seed, iteration, tokens, train_loss, val_loss",
    "generation_curves.csv": "outer-loop learning curves: generation, iteration, tokens, train_loss, val_loss",
    "generation_density.csv": "density of every pruned tensor after each generation",
    "summary.csv": "final-model metrics, mean and standard error over seeds per model type",
    "items.csv.gz": "per-item outcomes of the final models (measure, label, seed, item, value, target)",
    "verdicts.csv": "every pair of model types on every measure: paired tests on the same items, Holm-adjusted",
    "claims.csv": "the paper's claim (Connectome >= each control) per measure: holds / does not hold / cannot be told apart",
    "provenance.json": "profile, hardware, software versions, date and commit that produced the numbers",
}


def generation_curves(run_root: str | Path) -> pd.DataFrame:
    """Outer-loop curves of every finished generation."""
    frames = []
    for d in sorted((Path(run_root) / "evolve").glob("gen_*")):
        if (d / "curve.csv").exists():
            f = pd.read_csv(d / "curve.csv")
            f.insert(0, "generation", int(d.name[4:]))
            frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def generation_density(run_root: str | Path) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in sorted((Path(run_root) / "evolve").glob("gen_*/density.csv"))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def training_curves(run_root: str | Path) -> pd.DataFrame:
    """Inner-loop curves of every training folder, labelled with init and seed."""
    frames = []
    for d in sorted((Path(run_root) / "develop").glob("*_s*")):
        if (d / "curve.csv").exists() and (d / "run.json").exists():
            info = layout.read_json(d / "run.json")
            f = pd.read_csv(d / "curve.csv")
            f.insert(0, "label", info["label"])
            f.insert(1, "init", info["init"])
            f.insert(2, "seed", info["seed"])
            frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def eval_results(run_root: str | Path) -> pd.DataFrame:
    path = layout.evals_dir(run_root) / "results.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(
        columns=["model", "init", "label", "seed", "iteration", "task", "metric", "value", "n"]
    )


def final_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of each model's last evaluated iteration for each task (the final model)."""
    if results.empty:
        return results
    last = results.groupby(["model", "task"])["iteration"].transform("max")
    return results[results["iteration"] == last]


def mean_se(df: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Mean, standard error over seeds (sd / sqrt(n); NaN for one seed) and n per group."""
    g = df.groupby(by, sort=False)[value]
    out = g.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n_seeds"])
    return out.drop(columns="sd")


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Final-model metrics per model type: mean and SE over seeds."""
    return mean_se(final_rows(results), ["label", "task", "metric"])


def _git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def export_results(ctx) -> Path:
    """Write the small result files of a run to ``ctx.results_dir`` (see :data:`RESULT_FILES`)."""
    import torch
    import transformers

    from .notebook import device_description

    out = Path(ctx.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = eval_results(ctx.run_root)
    from .verdicts import claim_summary, item_outcomes, verdict_table

    items = item_outcomes(ctx.run_root, res)
    verdicts = verdict_table(items)
    tables = {
        "items.csv.gz": items,
        "verdicts.csv": verdicts,
        "claims.csv": claim_summary(verdicts) if len(verdicts) else pd.DataFrame(),
        "eval_results.csv": res,
        "training_curves.csv": training_curves(ctx.run_root),
        "generation_curves.csv": generation_curves(ctx.run_root),
        "generation_density.csv": generation_density(ctx.run_root),
        "summary.csv": summary(res),
    }
    for name, df in tables.items():
        layout.write_csv_atomic(df, out / name, float_format="%.6g")  # temporary file, then rename
    provenance = {
        "profile": ctx.profile.name,
        "description": ctx.profile.description,
        "hardware": device_description(),
        "profile_hardware": ctx.profile.hardware,
        "date": time.strftime("%Y-%m-%d"),
        "commit": _git_commit(ctx.root),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "config": ctx.profile.to_dict(),
    }
    layout.write_json_atomic(out / "provenance.json", provenance)
    return out


def load_results(results_dir: str | Path) -> dict[str, pd.DataFrame | dict]:
    """Read an exported result folder: one DataFrame per CSV, and the provenance dict."""
    d = Path(results_dir)
    if not (d / "provenance.json").exists():
        raise FileNotFoundError(
            f"no exported results in {d}: run the pipeline for this profile (connectome pipeline --profile ...)"
        )
    out: dict[str, pd.DataFrame | dict] = {}
    for name in RESULT_FILES:
        if name.endswith((".csv", ".csv.gz")):
            key = name.split(".", 1)[0]
            try:
                out[key] = pd.read_csv(d / name) if (d / name).exists() else pd.DataFrame()
            except pd.errors.EmptyDataError:
                out[key] = pd.DataFrame()
    out["provenance"] = json.loads((d / "provenance.json").read_text())
    return out


def compare_with_paper(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Join our summary (label, task, metric, mean, se, n_seeds) with the paper's numbers
    (model, task, metric, value, se) on (model type, task, metric), for the final models."""
    p = paper.rename(columns={"model": "label", "value": "paper", "se": "paper_se"})
    if "iteration" in p:
        p = p[p["iteration"].isna()]
    if "layer" in p:
        p = p[p["layer"].isna()]
    o = ours.rename(columns={"mean": "ours", "se": "ours_se"})
    return p[["label", "task", "metric", "paper", "paper_se"]].merge(
        o[["label", "task", "metric", "ours", "ours_se", "n_seeds"]], on=["label", "task", "metric"], how="left"
    )


#: the measures of the paper's claim: (task, metric, higher is better, what it is)
CLAIM_MEASURES = [
    ("perplexity", "loss", False, "validation loss"),
    ("hellaswag", "acc_norm", True, "HellaSwag acc_norm"),
    ("mmlu", "acc", True, "MMLU accuracy"),
    ("blimp", "acc", True, "BLiMP accuracy (not in the paper)"),
    ("futrell2018", "r", True, "reading-time r"),
    ("tuckute2024", "r_best", True, "brain predictivity, best layer"),
    ("language_units", "r_top1pct", True, "brain predictivity, top 1% language units"),
    ("language_units", "r_top10pct", True, "brain predictivity, top 10% language units"),
]


def claim_table(summary_df: pd.DataFrame, measures=None, z: float = 2.0) -> pd.DataFrame:
    """Does the Connectome model beat or match each control on each measure?

    For each measure and control: the difference Connectome - control (signed so that positive
    is better for the Connectome model), its standard error sqrt(se_a^2 + se_b^2) from the seed
    SEs, and a verdict: ``better`` / ``worse`` when the difference exceeds ``z`` standard errors,
    else ``on par``; ``n/a`` when a model is missing; with one seed (no SE) the verdict says so.
    """
    rows = []
    s = summary_df.set_index(["label", "task", "metric"])
    for task, metric, higher, name in measures or CLAIM_MEASURES:
        for control in ("RandomConnectome", "NoConnectome"):
            try:
                a, b = s.loc[("Connectome", task, metric)], s.loc[(control, task, metric)]
            except KeyError:
                continue
            sign = 1.0 if higher else -1.0
            diff = sign * (a["mean"] - b["mean"])
            se = float(np.sqrt(np.nansum([a["se"] ** 2, b["se"] ** 2]))) if not (np.isnan(a["se"]) and np.isnan(b["se"])) else float("nan")
            if np.isnan(se) or se == 0:
                verdict = "better (1 seed)" if diff > 0 else "worse (1 seed)" if diff < 0 else "equal"
            else:
                verdict = "better" if diff > z * se else "worse" if diff < -z * se else "on par"
            rows.append({"measure": name, "vs": control, "Connectome": a["mean"], "control": b["mean"],
                         "advantage": diff, "se": se, "verdict": verdict})
    return pd.DataFrame(rows)


def book_results_dir(profile: str | None = None) -> Path:
    """The exported results the book shows: ``$CONNECTOME_RESULTS_DIR`` (default ``results/``)
    / ``$CONNECTOME_BOOK_PROFILE`` (default ``cpu``)."""
    import os

    from .notebook import project_root

    root = Path(os.environ.get("CONNECTOME_RESULTS_DIR") or project_root() / "results")
    return root / (profile or os.environ.get("CONNECTOME_BOOK_PROFILE") or "cpu")


class ProfileMismatchError(RuntimeError):
    """The book's results come from another profile than its stage pages."""


def check_results_profile(book_stages_dir: str | Path, results_profile: str | None = None) -> str:
    """Fail when the results the book shows were not made by the profile its stage pages ran with.

    The stage pages (``book/stages/*.ipynb``) are executed by papermill, which records the
    ``profile`` parameter in each notebook's ``metadata.papermill.parameters``. The results page
    reads ``results/<CONNECTOME_BOOK_PROFILE>`` (default ``cpu``). Building the book with the
    gpu stage pages beside the cpu results would silently mix two runs, so this raises
    :class:`ProfileMismatchError` naming the notebooks that disagree (or that papermill did not
    execute). Returns the profile on success.
    """
    import os

    profile = results_profile or os.environ.get("CONNECTOME_BOOK_PROFILE") or "cpu"
    notebooks = sorted(Path(book_stages_dir).glob("*.ipynb"))
    if not notebooks:
        raise ProfileMismatchError(f"{book_stages_dir}: no executed stage notebooks to check the profile against")
    found: dict[str, str] = {}
    for nb in notebooks:
        try:
            meta = json.loads(nb.read_text(encoding="utf-8")).get("metadata", {})
        except (OSError, json.JSONDecodeError) as err:
            raise ProfileMismatchError(f"{nb}: cannot read the notebook ({err})") from err
        if (meta.get("connectome") or {}).get("placeholder"):
            continue  # a stage not yet run for these results, saying so on its page
        params = (meta.get("papermill") or {}).get("parameters") or {}
        found[nb.name] = str(params.get("profile", "<not executed by papermill>"))
    wrong = {name: p for name, p in found.items() if p != profile}
    if wrong:
        listed = ", ".join(f"{name} ({p})" for name, p in wrong.items())
        raise ProfileMismatchError(
            f"the results shown are from the '{profile}' profile but these stage pages in {book_stages_dir} "
            f"were executed with another: {listed}; set CONNECTOME_BOOK_PROFILE or re-run the pipeline"
        )
    return profile


# ------------------------------------------------------------------ stage-page helpers
# Small tables and the "What this shows" paragraphs of the stage notebooks, so that the
# notebooks only call and show (issue 11). Every takeaway returns Markdown generated from the
# numbers it is given, and says so plainly when the paper's claim does not hold at this scale.

#: the paper's ordering of the three model types, best first
PAPER_ORDER = ("Connectome", "NoConnectome", "RandomConnectome")


def sign_flips(connectomes) -> pd.DataFrame:
    """Between consecutive generations: ``generation`` (the later one), ``kept_of_previous``
    (its density over the previous one's: 0.8 for 20 % pruning) and ``sign_flips`` (share of
    the survivors whose sign differs from the previous generation's, pooled over every tensor:
    one minus the ``all`` row of :func:`connectome_lib.analysis.sign_agreement`, so that the
    two pages that show it agree; a tensor counts with its number of survivors).

    ``connectomes`` is a list of generation connectomes in order (generation = position) or a
    mapping generation -> connectome (e.g. :func:`connectome_lib.analysis.load_generations`).
    Near 0 means that training keeps the signs it was handed; 0.5 would be random signs."""
    from .analysis import sign_agreement

    items = sorted(connectomes.items()) if hasattr(connectomes, "items") else list(enumerate(connectomes))
    if len(items) < 2:
        raise ValueError(f"sign_flips needs at least two generations, got {len(items)}")
    rows = []
    for (_, before), (g, after) in zip(items, items[1:]):
        pooled = sign_agreement(before, after).set_index("kind").loc["all", "agreement"]
        rows.append({"generation": int(g), "kept_of_previous": after.density() / before.density(),
                     "sign_flips": 1 - float(pooled)})
    return pd.DataFrame(rows)


def paper_values(task: str, metric: str | None = None) -> pd.DataFrame:
    """The paper's numbers for one task (and metric), from :func:`connectome_lib.paper_numbers.paper_results`,
    in the shape the plotting functions' ``paper=`` arguments take (model, task, metric,
    iteration, layer, value, se)."""
    from .paper_numbers import paper_results

    p = paper_results()
    p = p[p["task"] == task]
    if metric is not None:
        p = p[p["metric"] == metric]
    if p.empty:
        raise ValueError(f"the paper reports no number for task {task!r}" + (f", metric {metric!r}" if metric else ""))
    return p.reset_index(drop=True)


def corpus_token_counts(data_cfg, split: str, vocab_size: int) -> np.ndarray:
    """How often each token id occurs in a corpus split (``np.bincount`` of its token file, of
    length ``vocab_size``): the frequencies :func:`connectome_lib.analysis.row_density_vs_frequency` takes."""
    from .data import load_corpus_tokens

    tokens = np.asarray(load_corpus_tokens(split, data_cfg, progress=False), dtype=np.int64)
    if tokens.size and int(tokens.max()) >= vocab_size:
        raise ValueError(f"the {split} corpus holds token id {int(tokens.max())} >= vocab size {vocab_size}")
    return np.bincount(tokens, minlength=vocab_size)


def density_by_kind(density: pd.DataFrame) -> pd.DataFrame:
    """Density per matrix type (rows) after each generation's pruning (columns), from the rows
    of :func:`connectome_lib.analysis.density_by_layer_and_kind` (generation, kind, numel, kept)."""
    missing = {"generation", "kind", "numel", "kept"} - set(density.columns)
    if missing:
        raise ValueError(f"density_by_kind: the table lacks the columns {sorted(missing)}")
    t = density.groupby(["kind", "generation"])[["kept", "numel"]].sum()
    t = (t["kept"] / t["numel"]).rename("density").reset_index()
    out = t.pivot(index="kind", columns="generation", values="density")
    out.columns = [f"after gen {int(g)}" for g in out.columns]
    out.index.name = "matrix type"
    return out


def _fmt(mean: float, se: float | None = None, digits: int = 3) -> str:
    s = f"{mean:.{digits}f}"
    if se is not None and np.isfinite(se) and se > 0:
        s += f" ± {se:.{digits}f}"
    return s


def _ordering(stats: dict[str, tuple[float, float]], higher: bool, what: str) -> str:
    """One sentence on whether the *means* follow the paper's ordering (Connectome best, then
    NoConnectome, then RandomConnectome) for ``what``, from each model type's (mean, SE over
    seeds). It tests nothing: whether a difference is real is decided by the paired tests on
    the same items (:mod:`connectome_lib.verdicts`, the Findings page), not by seed SEs."""
    present = [m for m in PAPER_ORDER if m in stats and np.isfinite(stats[m][0])]
    if len(present) < 2:
        return f"Fewer than two model types have a value for {what}, so their ordering cannot be checked."
    better = (lambda a, b: a > b) if higher else (lambda a, b: a < b)
    ranked = sorted(present, key=lambda m: -stats[m][0] if higher else stats[m][0])
    listing = f"{ranked[0]} ({_fmt(*stats[ranked[0]])})"
    for a, b in zip(ranked, ranked[1:]):
        op = "=" if stats[a][0] == stats[b][0] else (">" if higher else "<")
        listing += f" {op} {b} ({_fmt(*stats[b])})"
    holds = all(not better(stats[b][0], stats[a][0]) for a, b in zip(present, present[1:]))
    one_seed = not any(np.isfinite(s) and s > 0 for _, s in (stats[m] for m in present))
    text = f"For {what} ({'higher' if higher else 'lower'} is better): {listing}. "
    text += ("The paper's ordering (Connectome, then NoConnectome, then RandomConnectome) "
             + ("**holds** in the means" if holds else "**does not hold** in the means"))
    if one_seed:
        text += "; with one seed there is no standard error."
    else:
        text += " (± standard error over seeds)."
    return text + " Whether each difference is real is decided by the paired tests on the same items (Findings page)."


def _summary_stats(summary_df: pd.DataFrame, task: str, metric: str) -> dict[str, tuple[float, float]]:
    d = summary_df[(summary_df["task"] == task) & (summary_df["metric"] == metric)]
    return {r.label: (float(r.mean), float(r.se)) for r in d.itertuples()}


def _profile_note(profile: str) -> str:
    return f"The numbers come from the **{profile}** profile (named in the set-up output above)."


def takeaway_data(corpora: pd.DataFrame, vocab_size: int, unigram_entropy: float, profile: str) -> str:
    """Stage 1: the corpus sizes, their ratio (the paper: billions of outer tokens, 100M inner)
    and the unigram entropy every later loss is compared with."""
    t = corpora.set_index("split")["tokens"].astype(int)
    lines = [_profile_note(profile)]
    if {"outer", "inner"} <= set(t.index) and t["inner"] > 0:
        lines.append(f"The outer (evolution) corpus holds {t['outer']:,} tokens and the inner (development) corpus "
                     f"{t['inner']:,}: the outer loop sees {t['outer'] / t['inner']:.1f}× more text than the inner loop "
                     "(the paper: about 3.7 billion tokens per generation against 100 million).")
    if "val" in t.index:
        lines.append(f"The validation corpus ({t['val']:,} tokens) is held out from both.")
    lines.append(f"With a vocabulary of {vocab_size:,} tokens, the unigram entropy of the validation corpus is "
                 f"**{unigram_entropy:.3f} nats/token**: the loss of a model that knows only token frequencies. "
                 "A validation loss above this line means a model has learned less than the frequencies.")
    return "\n\n".join(lines)


def takeaway_evolution(summary_df: pd.DataFrame, final_density: float, profile: str, tolerance: float = 0.05) -> str:
    """Stage 2: does the validation loss of the pruned generations stay close to the dense
    generation 0 (the paper's observation), within ``tolerance`` (relative)?"""
    if summary_df.empty or "val_loss" not in summary_df:
        return _profile_note(profile) + "\n\nNo finished generation to summarise."
    s = summary_df.sort_values("generation")
    first, last = s.iloc[0], s.iloc[-1]
    rel = (last["val_loss"] - first["val_loss"]) / first["val_loss"]
    lines = [_profile_note(profile),
             f"After {len(s)} generations the connectome keeps **{final_density:.1%}** of the weights. "
             f"The final validation loss went from {first['val_loss']:.3f} (generation {int(first['generation'])}, dense) "
             f"to {last['val_loss']:.3f} (generation {int(last['generation'])}), a change of {rel:+.1%}."]
    if abs(rel) <= tolerance or rel < 0:
        lines.append(f"The paper's observation — later generations reach a loss close to the dense generation 0 "
                     f"despite fewer weights — **holds** here (within {tolerance:.0%}).")
    else:
        lines.append(f"The paper's observation that later generations stay close to the dense generation 0 "
                     f"**does not hold** at this scale: the loss rose by more than {tolerance:.0%}.")
    if "distinct_tokens" in s:
        d = s["distinct_tokens"].astype(int)
        span = f"{d.min():,}" if d.min() == d.max() else f"{d.min():,}–{d.max():,}"
        lines.append(f"Each generation trained on {span} distinct outer-corpus tokens.")
    return "\n\n".join(lines)


#: the learning gate: a run's models count as trained only when NoConnectome (dense standard
#: init) ends at least this many nats/token below the unigram entropy of the validation corpus
LEARNING_GATE_NATS = 1.5


def learning_gate(final: pd.DataFrame, unigram_entropy: float, gate: float = LEARNING_GATE_NATS) -> dict:
    """Is NoConnectome trained? ``final`` has rows ``label, val_loss`` (one per seed); returns
    ``gap`` (unigram entropy minus NoConnectome's mean final loss), ``gate`` and ``met``
    (``None`` when the run has no NoConnectome model)."""
    dense = final.loc[final["label"] == layout.INIT_LABELS["dense"], "val_loss"]
    if dense.empty:
        return {"gap": float("nan"), "gate": gate, "met": None}
    gap = float(unigram_entropy - dense.mean())
    return {"gap": gap, "gate": gate, "met": bool(gap >= gate)}


def takeaway_development(final: pd.DataFrame, unigram_entropy: float, profile: str) -> str:
    """Stage 3: the final validation loss of each model type (rows label, val_loss, one per
    seed) against the paper's ordering, the unigram entropy and the learning gate."""
    ms = mean_se(final, ["label"], value="val_loss")
    stats = {r.label: (float(r.mean), float(r.se)) for r in ms.itertuples()}
    lines = [_profile_note(profile), _ordering(stats, higher=False, what="the final validation loss (nats/token)")]
    g = learning_gate(final, unigram_entropy)
    if g["met"] is not None:
        lines.append(f"**Learning gate {'met' if g['met'] else 'not met'}:** NoConnectome ends {g['gap']:.2f} nats "
                     f"below the unigram entropy; a run's models count as trained when it is at least {g['gate']:g}"
                     + ("." if g["met"] else " nats below. At this scale the comparison is between models that have "
                        "learned little beyond token frequencies."))
    above = [m for m, (v, _) in stats.items() if v >= unigram_entropy]
    if above:
        lines.append(f"{', '.join(above)} {'is' if len(above) == 1 else 'are'} still at or above the unigram entropy "
                     f"({unigram_entropy:.3f}): at this scale {'that model has' if len(above) == 1 else 'they have'} "
                     "not learned more than token frequencies.")
    else:
        lines.append(f"Every model type is below the unigram entropy ({unigram_entropy:.3f}), so all learned more than "
                     "token frequencies.")
    return "\n\n".join(lines)


def takeaway_controls(density: float, jaccard: float, flips: pd.DataFrame, profile: str, rel_tol: float = 0.1) -> str:
    """Stage 4: the random control's overlap with the connectome against chance d/(2-d), and
    how often survivors flip sign between generations."""
    chance = density / (2 - density)
    lines = [_profile_note(profile)]
    at_chance = abs(jaccard - chance) <= rel_tol * chance
    lines.append(f"Connectome and random control share {jaccard:.4f} of their connections (Jaccard); two independent "
                 f"masks of density {density:.3f} would share {chance:.4f}. The control is "
                 + ("**at chance**, as it should be by construction." if at_chance else
                    f"**not at chance** (more than {rel_tol:.0%} away): check the random control."))
    if len(flips):
        lines.append(f"Between generations, {flips['sign_flips'].min():.1%}–{flips['sign_flips'].max():.1%} of the "
                     "surviving weights changed sign; "
                     + ("signs are largely inherited (random signs would flip half)." if flips["sign_flips"].max() < 0.25
                        else "a sizeable share of the signs are redrawn by training."))
    return "\n\n".join(lines)


def takeaway_nlp(summary_df: pd.DataFrame, profile: str, chance: dict[tuple[str, str], float] | None = None) -> str:
    """Stage 5: for each task, whether the models are above chance (by more than 2 SE) and
    whether the paper's ordering holds."""
    chance = chance or {("hellaswag", "acc_norm"): 0.25, ("mmlu", "acc"): 0.25, ("blimp", "acc"): 0.5}
    names = {("hellaswag", "acc_norm"): "HellaSwag (normalised accuracy)", ("mmlu", "acc"): "MMLU accuracy",
             ("blimp", "acc"): "BLiMP accuracy", ("perplexity", "loss"): "the validation loss"}
    lines = [_profile_note(profile)]
    for key, name in names.items():
        stats = _summary_stats(summary_df, *key)
        if not stats:
            continue
        text = _ordering(stats, higher=key[1] != "loss", what=name)
        if key in chance:
            c = chance[key]
            above = [m for m, (v, se) in stats.items() if v - 2 * (se if np.isfinite(se) else 0) > c]
            text += (f" Above chance ({c:g}) by more than two standard errors: {', '.join(above)}." if above else
                     f" No model is clearly above chance ({c:g}), so this scale cannot test the paper's claim on this task.")
        lines.append("- " + text)
    return "\n\n".join(lines[:1]) + "\n\n" + "\n".join(lines[1:])


def takeaway_behaviour(summary_df: pd.DataFrame, baselines: pd.Series, profile: str) -> str:
    """Stage 6: reading-time r of the final models against the paper's ordering, the untrained
    model and word length (``baselines``: metric -> value, e.g. ``untrained/futrell2018/r``,
    ``rt/r_n_chars``, ``rt/r_n_tokens``)."""
    stats = _summary_stats(summary_df, "futrell2018", "r")
    lines = [_profile_note(profile), _ordering(stats, higher=True, what="the reading-time correlation r")]
    partial = _summary_stats(summary_df, "futrell2018", "r_partial_length")
    if partial:
        lines.append(_ordering(partial, higher=True, what="r with word length partialled out"))
    refs = {"the untrained model": baselines.get("untrained/futrell2018/r"),
            "word length in characters": baselines.get("rt/r_n_chars"),
            "tokens per word": baselines.get("rt/r_n_tokens")}
    text = _against_strongest_baseline(stats, refs, "", "No trained model exceeds it: at this scale the models' "
                                       "surprisal adds nothing a baseline does not already give, and the reading-time "
                                       "claim cannot be tested.")
    if text:
        lines.append(text)
    return "\n\n".join(lines)


def _against_strongest_baseline(stats: dict, refs: dict, where: str, none_beat: str) -> str | None:
    """"The strongest baseline is X (r = ...). A, B exceed it." for a takeaway; ``None`` when there
    is nothing to compare (no model statistics or no finite baseline)."""
    refs = {k: float(v) for k, v in refs.items() if v is not None and np.isfinite(v)}
    if not (stats and refs):
        return None
    best_name, best = max(refs.items(), key=lambda kv: kv[1])
    beat = [m for m, (v, _) in stats.items() if v > best]
    return (f"The strongest baseline is {best_name} (r = {best:.3f}). "
            + (f"{where}{', '.join(beat)} exceed{'s' if len(beat) == 1 else ''} it." if beat else none_beat))


def takeaway_brain(summary_df: pd.DataFrame, baselines: pd.Series, profile: str) -> str:
    """Stage 7: brain predictivity (best layer and language units) against the paper's ordering,
    the untrained model and sentence length (``baselines``: ``untrained/tuckute2024/r_best``,
    ``brain/r_length``)."""
    lines = [_profile_note(profile)]
    for (task, metric), name in {("tuckute2024", "r_best"): "brain predictivity at the best layer",
                                 ("language_units", "r_top1pct"): "the top 1 % language units",
                                 ("language_units", "r_top10pct"): "the top 10 % language units"}.items():
        stats = _summary_stats(summary_df, task, metric)
        if stats:
            lines.append("- " + _ordering(stats, higher=True, what=name))
    stats = _summary_stats(summary_df, "tuckute2024", "r_best")
    refs = {"the untrained model": baselines.get("untrained/tuckute2024/r_best"),
            "sentence length": baselines.get("brain/r_length")}
    text = _against_strongest_baseline(stats, refs, "At the best layer ", "No trained model exceeds it at its best "
                                       "layer: at this scale the brain claim cannot be tested.")
    if text:
        lines.append(text)
    return lines[0] + "\n\n" + "\n".join(l for l in lines[1:] if l.startswith("- ")) + "\n\n" + \
        "\n\n".join(l for l in lines[1:] if not l.startswith("- "))


def connectome_overview(connectomes) -> pd.DataFrame:
    """Overall density and mean share of positive signs (over tensors) of named connectomes:
    columns are the names of ``connectomes`` (a mapping name -> Connectome)."""
    return pd.DataFrame({name: [c.density(), float(c.density_table()["positive_fraction"].mean())]
                         for name, c in connectomes.items()},
                        index=["overall density", "mean share of positive signs"])


def initial_weights(run_root: str | Path, tensor: str, seed: int, inits=None) -> dict[str, np.ndarray]:
    """One tensor's weights at inner-loop iteration 0 (the initialisation) of each model type,
    keyed by its label (Connectome, RandomConnectome, NoConnectome), read from the checkpoint's
    safetensors files."""
    from safetensors.numpy import load_file

    out = {}
    for init in inits or layout.INITS:
        folder = layout.checkpoint_dir(layout.develop_dir(run_root, init, seed), 0)
        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no safetensors weights in {folder}: train the {init} model (connectome develop)")
        found = None
        for f in files:
            state = load_file(str(f))
            if tensor in state:
                found = state[tensor]
                break
        if found is None:
            raise KeyError(f"{folder} has no tensor named {tensor!r}")
        out[layout.INIT_LABELS.get(init, init)] = np.asarray(found, dtype=np.float32)
    return out


def eval_table(run_root: str | Path, model: str, iteration: int, task: str) -> pd.DataFrame:
    """The per-item table an evaluation wrote (``evals/tables/<model>_iter<iteration>_<task>.csv``),
    e.g. Futrell2018's per-word surprisal and reading time."""
    path = layout.eval_table_path(layout.evals_dir(run_root), model, iteration, task)
    if not path.exists():
        raise FileNotFoundError(f"no evaluation table at {path}: evaluate {model} on {task} first")
    return pd.read_csv(path)


def language_unit_tables(run_root: str | Path, final: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
    """Per-unit t-statistics of the language-units evaluation (``layer, unit, t``) of each model
    type's final model, for one seed (default: the smallest evaluated), with its ``label``: what
    :func:`connectome_lib.plots.language_unit_map` draws. Empty when no model has the table."""
    rows = final[final["task"] == "language_units"].drop_duplicates(["model", "iteration"])
    if rows.empty:
        return pd.DataFrame(columns=["layer", "unit", "t", "label", "seed"])
    seed = int(rows["seed"].min()) if seed is None else int(seed)
    parts = []
    for r in rows[rows["seed"] == seed].itertuples():
        t = eval_table(run_root, r.model, r.iteration, "language_units")
        parts.append(t.assign(label=r.label, seed=seed))
    return pd.concat(parts, ignore_index=True)


def untrained_by_layer(baselines: pd.Series, task: str = "tuckute2024") -> pd.Series:
    """The untrained model's per-layer scores from the baselines (metric -> value, metrics
    ``untrained/<task>/r_layer<k>``), indexed by layer ``k`` in order."""
    s = baselines[baselines.index.str.match(rf"^untrained/{task}/r_layer\d+$")]
    return pd.Series(s.to_numpy(float), index=s.index.str.extract(r"(\d+)$")[0].astype(int).to_numpy(),
                     name="r").sort_index()


def profile_drift(recorded: dict, profile: str) -> list[str]:
    """Dotted keys whose value in a run's recorded configuration (``provenance.json``'s
    ``config``) differs from the profile as it is defined now: non-empty means the results come
    from an earlier version of the profile and must be labelled so. Locations (data/cache/runs
    folders) are not settings and are ignored."""
    from .config import load_profile

    try:
        current = load_profile(profile).to_dict()
    except Exception:  # a profile that no longer exists: everything differs
        return ["(profile no longer defined)"]
    from .fingerprint import flatten

    ignore = {"runs_dir", "data.data_dir", "data.cache_dir"}
    a, b = flatten(recorded), flatten(current)
    return sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k) != b.get(k))



def takeaway_ablations(table: pd.DataFrame, tests: pd.DataFrame | None = None) -> str:
    """The ablation stage's "what this shows", from :func:`connectome_lib.ablation.ablation_table`
    and the paired tests of :func:`connectome_lib.ablation.ablation_tests` (every model against
    the Connectome model on the same validation windows and seeds, Holm-corrected): which
    component's replacement by the random control changes the loss, and what share of the
    Connectome-RandomConnectome gap it accounts for. Without ``tests`` it reports the losses
    and says that no difference was tested."""
    t = table.set_index("model")
    if "connectome" not in t.index or "random" not in t.index:
        return "The Connectome and RandomConnectome models are needed to read the ablation; they are missing."
    singles = [m for m in t.index if str(m).startswith("random_")]
    if not singles:
        return "No single-component ablation was run."
    part = lambda m: str(m).split("_", 1)[1].replace("_", " ")  # noqa: E731
    if tests is None or tests.empty:
        base = float(t.loc["connectome", "mean"])
        gap = float(t.loc["random", "mean"]) - base
        lines = [f"The RandomConnectome model ends {gap:+.3f} nats from the Connectome model."]
        for m in singles:
            d = float(t.loc[m, "mean"]) - base
            lines.append(f"Replacing the evolved **{part(m)}** mask by the random one changes the loss by {d:+.3f}.")
        lines.append("No paired test was run on these models, so none of these differences is tested.")
        return " ".join(lines)
    r = tests.set_index("a")

    def tested(m: str) -> str:
        x = r.loc[m]
        return (f"{x['effect']:+.3f} (95 % CI [{x['ci_low']:+.3f}, {x['ci_high']:+.3f}], Holm p = {x['p_items_holm']:.2g}, "
                f"{x['verdict'] if x['verdict'] != 'indistinguishable' else 'not distinguishable from the Connectome'})")

    gap = float(r.loc["random", "effect"]) if "random" in r.index else float("nan")
    n = r.iloc[0]
    lines = [f"Every model is compared with the Connectome model of the same seed on the same "
             f"{int(n['n_items']):,} validation windows × {int(n['n_seeds'])} seed(s) (paired sign-flip test, bootstrap CI "
             f"over windows, one Holm correction over the {len(r)} comparisons). The RandomConnectome model's loss "
             f"differs by {tested('random')}."]
    for m in singles:
        if m in r.index:
            share = float(r.loc[m, "effect"]) / gap if gap else float("nan")
            lines.append(f"Replacing the evolved **{part(m)}** mask by the random one: {tested(m)}"
                         + (f", {share:.0%} of the RandomConnectome gap." if np.isfinite(share) else "."))
    for m in [m for m in t.index if str(m).startswith("only_") and m in r.index]:
        share = 1 - float(r.loc[m, "effect"]) / gap if gap else float("nan")
        lines.append(f"Keeping **only the {part(m)}** evolved (the rest random): {tested(m)}"
                     + (f", recovering {share:.0%} of the gap." if np.isfinite(share) else "."))
    costly = [m for m in singles if m in r.index and r.loc[m, "verdict"] == "worse"]
    if costly:
        top = max(costly, key=lambda m: float(r.loc[m, "effect"]))
        lines.append(f"The component that matters most at this scale is the **{part(top)}**: its replacement costs the "
                     "most, by a tested difference.")
    else:
        lines.append("No single replacement makes the loss detectably worse: the ablation cannot place the effect in one "
                     "component at this scale.")
    return " ".join(lines)
