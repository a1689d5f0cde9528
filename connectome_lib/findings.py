"""Every table and text of the Findings page (``book/results.md``): the paper's numbers next to
ours, the verdict box and its notes, the provenance of the numbers.

The page only calls these functions and shows what they return; they read the exported result
files (:func:`connectome_lib.export.load_results`) and the paper's numbers
(:mod:`connectome_lib.paper_numbers`), and take model-type order, measure names and chance
levels from :mod:`connectome_lib.registry`. A function whose section has nothing to show for
a run returns ``None`` (the page then shows nothing there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import plots
from .book_support import book_results_dir, profile_drift
from .export import load_results
from .paper_numbers import paper_results
from .readers import baseline_means
from .registry import INIT_LABELS as LABELS_BY_INIT
from .registry import LABELS, PAPER_LABELS, chance_level, measure
from .verdicts import bottom_line, verdict_markdown

#: the accuracies of the NLP section (the paper reports the first two; BLiMP is ours)
NLP_MEASURES: tuple[tuple[str, str], ...] = (("hellaswag", "acc_norm"), ("mmlu", "acc"), ("blimp", "acc"))
#: the reading-time correlations of the table beside the paper's final r
READING_TIME_METRICS: tuple[str, ...] = ("r_official", "r", "r_brainscore", "r_partial_length")
#: the reading-time baselines, each with its name in the table
READING_TIME_BASELINES: dict[str, str] = {
    "untrained/futrell2018/r": "untrained model",
    "rt/r_n_tokens": "tokens per word",
    "rt/r_n_chars": "characters per word",
    "rt/r_logfreq": "unigram log-frequency",
    "untrained/futrell2018/r_partial_length": "untrained model, length partialled",
}
#: the inner-loop iteration of the paper's final reading-time r
PAPER_FINAL_ITERATION = 2000
#: the language-unit measures (the paper does not say which fraction it used)
LANGUAGE_UNIT_MEASURES: tuple[tuple[str, str], ...] = (
    ("language_units", "r_top1pct"), ("language_units", "r_top10pct"),
)
#: the final-model numbers of the page's last table, in its order
FINAL_MEASURES: tuple[tuple[str, str], ...] = (
    ("perplexity", "loss"), ("hellaswag", "acc_norm"), ("mmlu", "acc"), ("blimp", "acc"), ("futrell2018", "r"),
    ("tuckute2024", "r_best"), ("language_units", "r_top1pct"), ("language_units", "r_top10pct"),
)
#: the columns of the claims table and their names on the page
#: the verdict table's columns, in the order shown: the verdict first, then the effect and its
#: test, then the units of replication and their numbers
CLAIM_COLUMNS: dict[str, str] = {
    "measure": "measure", "claim": "claim", "status": "verdict", "effect": "Connectome − control",
    "ci_low": "95 % CI low", "ci_high": "95 % CI high", "p": "p (exact)", "min_p": "smallest possible p",
    "n_a": "Connectome lineages", "unit_b": "control unit", "n_b": "control units", "testable": "why not testable",
}


@dataclass
class FindingsData:
    """What the page shows, read once: the exported results and the paper's numbers."""

    results_dir: Path
    provenance: dict
    summary: pd.DataFrame
    evals: pd.DataFrame
    training_curves: pd.DataFrame
    items: pd.DataFrame
    claims: pd.DataFrame
    #: one value per model and tested measure, with its unit (lineage or seed)
    values: pd.DataFrame
    placebo: pd.DataFrame
    book_gaps: pd.DataFrame
    gap_over_training: pd.DataFrame
    tokens_to_target: pd.DataFrame
    lineage_overlap: pd.DataFrame
    paper: pd.DataFrame
    #: the baselines task's values averaged over seeds (metric -> value)
    baselines: pd.Series

    @property
    def config(self) -> dict:
        return self.provenance["config"]

    @property
    def profile(self) -> str:
        return self.provenance["profile"]

    @property
    def n_seeds(self) -> int:
        return len(self.config["develop"]["seeds"])

    @property
    def lineages(self) -> dict[str, int]:
        """Lineage name -> outer-loop seed (one lineage for runs made before lineages existed)."""
        return self.provenance.get("lineages") or {"c0": self.config["evolve"]["train"]["seed"]}


def load(results_dir: str | Path | None = None) -> FindingsData:
    """Read the results the book shows (default :func:`~connectome_lib.book_support.book_results_dir`)."""
    d = Path(results_dir) if results_dir is not None else book_results_dir()
    res = load_results(d)
    empty = pd.DataFrame()
    evals = res["eval_results"]
    return FindingsData(
        results_dir=d, provenance=res["provenance"], summary=res["summary"], evals=evals,
        training_curves=res["training_curves"], items=res.get("items", empty), claims=res.get("claims", empty),
        values=res.get("model_values", empty), placebo=res.get("placebo", empty), book_gaps=res.get("book_gaps", empty),
        gap_over_training=res.get("gap_over_training", empty), tokens_to_target=res.get("tokens_to_target", empty),
        lineage_overlap=res.get("lineage_overlap", empty), paper=paper_results(),
        baselines=baseline_means(evals) if len(evals) else pd.Series(dtype=float, name="mean"),
    )


# ------------------------------------------------------------------------------ provenance
def provenance_markdown(prov: dict) -> str:
    """The profile, hardware, date, commit, software and model sizes the numbers come from."""
    cfg = prov["config"]
    return (
        f"**These numbers come from the `{prov['profile']}` profile** ({prov['description']}), run on "
        f"{prov['hardware']} on {prov['date']} (commit `{prov['commit'] or 'n/a'}`, torch {prov['torch']}, "
        f"transformers {prov['transformers']}). "
        f"Model: {cfg['model']['n_layer']} layers × {cfg['model']['n_embd']} wide, "
        f"context {cfg['model']['block_size']}; outer loop {_lineages_text(prov)}, each "
        f"{cfg['evolve']['generations']} generations × {cfg['evolve']['train']['iters']} iterations; inner loop "
        f"{cfg['develop']['train']['iters']} iterations, seeds {cfg['develop']['seeds']}"
        + (f" (NoConnectome: {cfg['develop']['dense_seeds']})" if cfg["develop"].get("dense_seeds") else "")
        + f"; evaluation subsets: limit={cfg['evals']['limit']}, "
        f"futrell_limit={cfg['evals'].get('futrell_limit')}, brain_limit={cfg['evals'].get('brain_limit')}."
    )


def _lineages_text(prov: dict) -> str:
    lineages = prov.get("lineages") or {"c0": prov["config"]["evolve"]["train"]["seed"]}
    return (f"{len(lineages)} lineage(s) (independent outer-loop runs, seeds "
            + ", ".join(str(v) for v in lineages.values()) + ")")


def _in_order(times: dict, order) -> list[tuple[str, object]]:
    """``times`` (stage or step kind -> time) in the order of the names ``order`` (a JSON file
    keeps its keys sorted by name); names not in ``order`` last."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(times.items(), key=lambda kv: rank.get(kv[0], len(rank)))


def timings_markdown(results_dir: str | Path) -> str | None:
    """The wall time of the run that made the results (``timings.json`` beside them), per stage
    and, when the stage pages were executed again, of that second pass; ``None`` without one."""
    from .pipeline import STAGE_KEYS
    from .timings import STEP_KINDS

    path = Path(results_dir) / "timings.json"
    if not path.exists():
        return None
    t = json.loads(path.read_text())
    total = t.get("total_seconds")
    older = t.get("total_seconds_including_setup_and_book")  # timings written before `connectome timings`
    second = t.get("second_pass")
    second_total = (second.get("total_seconds") or second.get("total_seconds_including_setup_and_book")
                    if second else None)
    return (f"Wall time of `{t['command']}` at commit `{t['commit'][:7]}`: "
            + (f"**{total / 60:.0f} min** in all (set-up included, book build not); " if total else "")
            + (f"**{older / 60:.0f} min** in all (set-up and book build included); " if older and not total else "")
            + "per stage: "
            + ", ".join(f"{k} {v / 60:.1f} min" for k, v in _in_order(t["stage_seconds"], STAGE_KEYS))
            + "."
            + (f" The stage pages were then executed again at commit `{second['commit'][:7]}` on the same "
               f"run folders ({second_total / 60:.0f} min; "
               f"{second['what']})." if second else "")
            + "".join(f" {name[0].upper() + name[1:]}: {v['count']}, {v['seconds_median']:.0f} s each (median; "
                      f"{v['seconds_min']:.0f}–{v['seconds_max']:.0f} s)."
                      for name, v in _in_order(t.get("step_seconds") or {}, [name for name, _ in STEP_KINDS]))
            + (f" Note: {t['note']}." if t.get("note") else ""))


# ------------------------------------------------------------------------------ verdict
def drift_warning(prov: dict) -> str | None:
    """A warning admonition when the results come from an earlier version of their profile."""
    drift = profile_drift(prov["config"], prov["profile"])
    if not drift:
        return None
    return (":::{warning}\nThese results were produced by an **earlier version of the "
            f"`{prov['profile']}` profile** (commit `{prov['commit'] or 'n/a'}`); the profile now differs in "
            + ", ".join(f"`{k}`" for k in drift[:12]) + (" and more" if len(drift) > 12 else "")
            + ". They are kept as the record of that run. Re-run `bash scripts/reproduce.sh` to produce results "
            "for the current profile.\n:::")


def degenerate_caution(summary: pd.DataFrame) -> str | None:
    """A caution naming the models that answer one position for more than 90 % of the items
    (position bias, not knowledge); ``None`` when there is none."""
    deg = summary[(summary["metric"] == "degenerate") & (summary["mean"] > 0)]
    if deg.empty:
        return None
    return (":::{caution}\nSome models answer one position for more than 90 % of the items: "
            + "; ".join(f"{r.label} on {r.task} ({r.mean:.0%} of seeds)" for r in deg.itertuples())
            + ". A verdict on such a task reflects answer-position bias, not knowledge.\n:::")


def verdict_box(claims: pd.DataFrame, profile: str) -> str:
    """The "What holds at this scale" admonition: the verdicts of the tests across units, or,
    for a run without them, that no claim is tested."""
    head = ":::{admonition} What holds at this scale\n:class: important\n"
    if len(claims) and "unit_a" in claims:
        return head + verdict_markdown(claims, profile) + "\n:::"
    return (head + "This run predates the tests across units of replication (lineages and seeds), so its numbers "
            "are shown as they are; **no claim of the paper is confirmed or refuted by them.**\n:::")


def verdict_notes(data: FindingsData) -> list[str]:
    """The Verdict section's Markdown blocks in order: the drift warning and the caution on
    degenerate models where they apply, then the verdict box."""
    notes = [drift_warning(data.provenance), degenerate_caution(data.summary), verdict_box(data.claims, data.profile)]
    return [n for n in notes if n]


def claim_details(claims: pd.DataFrame) -> pd.DataFrame | None:
    """Every test of the claim (effect, 95 % CI, exact p, the smallest p the design allows, the
    verdict and why a comparison is not testable), indexed by measure and claim; ``None`` without."""
    if not len(claims) or "unit_a" not in claims:
        return None
    t = claims[list(CLAIM_COLUMNS)].rename(columns=CLAIM_COLUMNS)
    return t.round(4).set_index(["measure", "claim"])


def placebo_markdown(placebo: pd.DataFrame, claims: pd.DataFrame) -> str | None:
    """What the built-in placebo (the same test between halves of one model type's units) did,
    and whether it could fire at all with this many units."""
    if not len(placebo):
        return ("No model type has the four units a placebo needs, so the test's false-positive rate is not checked "
                "on this run's own data (see the simulated-null check below).")
    fired = placebo[placebo["fires"]]
    silent = placebo[~placebo["can_fire"].astype(bool)]
    text = (f"**Placebo.** The same test between two halves of one model type's units, over every split: "
            f"{int(placebo['rejections'].sum())} rejections in {int(placebo['splits'].sum())} splits "
            f"({len(placebo)} measure × type combinations). ")
    if len(fired):
        text += ("It **fires** (rejects in more than twice 5 % of its splits) for "
                 + ", ".join(f"{r.label} on {r.measure}" for r in fired.itertuples())
                 + ": verdicts on those measures do not count. ")
    else:
        text += "It fires for none of them. "
    if len(silent):
        text += (f"With {int(silent['units'].min())} units, a split into halves cannot reach p ≤ 0.05 at all, so "
                 "for those combinations the placebo is silent by construction, not evidence of calibration.")
    return text


def calibration_table(claims: pd.DataFrame, seeds_per_unit: int = 1, n_sim: int = 400) -> pd.DataFrame | None:
    """The false-positive rate of the test on data simulated under the null for each design of
    the claims table (n units against n units; :func:`connectome_lib.replication.simulated_false_positive_rate`)."""
    from .replication import simulated_false_positive_rate

    if not len(claims) or "unit_a" not in claims:
        return None
    designs = sorted(set(zip(claims["n_a"].astype(int), claims["n_b"].astype(int))))
    rows = [{"Connectome units": a, "control units": b,
             "false-positive rate under the null": simulated_false_positive_rate(a, b, seeds_per_unit, n_sim=n_sim)}
            for a, b in designs]
    out = pd.DataFrame(rows).set_index(["Connectome units", "control units"])
    out.attrs["n_sim"] = n_sim
    return out


def calibration_markdown(table: pd.DataFrame | None, alpha: float = 0.05) -> str | None:
    """What :func:`calibration_table` shows, in words: each design's simulated false-positive
    rate against ``alpha``, judged with the simulations' own error (a rate within two binomial
    standard errors of ``alpha`` is consistent with a calibrated test; above that, it is not)."""
    if table is None or not len(table):
        return None
    n_sim = int(table.attrs.get("n_sim", 0)) or None
    rates = table.iloc[:, 0]
    se = (alpha * (1 - alpha) / n_sim) ** 0.5 if n_sim else float("nan")
    over = rates[rates > alpha + 2 * se]
    designs = ", ".join(f"{a} vs {b} units: {r:.3f}" for (a, b), r in rates.items())
    head = (f"The same procedure on data simulated with no difference between the types (unit effects and seed "
            f"noise of equal size), {n_sim} simulations per design of the claims table, rejects at these rates "
            f"({designs}); with {n_sim} simulations a rate's standard error is about {se:.3f}. ")
    if over.empty:
        return head + (f"Every rate lies within two standard errors of {alpha:.0%} or below it: consistent with a test "
                       f"that rejects a true null at most {alpha:.0%} of the time.")
    return head + (f"**{len(over)} design(s) reject more often than {alpha:.0%} allows** "
                   f"({', '.join(f'{a} vs {b}' for a, b in over.index)}): verdicts from them are not calibrated.")


def lineage_losses(values: pd.DataFrame) -> pd.DataFrame | None:
    """Final validation loss of every model type per unit (rows: units; lineages ``c<k>``
    first, then NoConnectome's seeds ``s<n>``), 4 digits: how much the connectomes' results differ."""
    v = values[values["measure"] == "validation loss"] if len(values) else values
    if not len(v):
        return None
    t = v.groupby(["unit", "label"])["value"].mean().unstack("label")
    return t.reindex(columns=[lab for lab in LABELS if lab in t.columns]).round(4)


def spread_markdown(values: pd.DataFrame, overlap: pd.DataFrame) -> str | None:
    """The spread between lineages in words: the SD of the Connectome models' final loss over
    lineages against NoConnectome's over seeds, and how many survivors two connectomes share."""
    v = values[values["measure"] == "validation loss"] if len(values) else values
    if not len(v):
        return None
    sd = v.groupby(["label", "unit"])["value"].mean().groupby("label").std(ddof=1)
    text = ("Between units, the final validation loss varies with a standard deviation of "
            + ", ".join(f"{sd[lab]:.4f} ({lab})" for lab in LABELS if lab in sd and pd.notna(sd[lab])) + " nats.")
    if len(overlap) and "observed" in overlap:
        allrows = overlap[overlap["tensor"] == "all"]
        if len(allrows):
            text += (f" Two independently evolved connectomes share {allrows['observed'].mean():.1%} of their "
                     f"survivors on average, against {allrows['expected'].mean():.1%} expected by chance at their "
                     f"density ({len(allrows)} pair(s) of lineages).")
    return text


def book_gap_table(gaps: pd.DataFrame) -> pd.DataFrame | None:
    """Per validation book: the Connectome model's gap to each control (negative = better) with
    its 95 % interval over units, 4 digits; ``None`` without per-book losses."""
    if not len(gaps):
        return None
    t = gaps.assign(gap=gaps["gap"].round(4), ci=[f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in zip(gaps["ci_low"],
                                                                                         gaps["ci_high"])])
    return t.pivot(index=["title", "windows"], columns="control", values=["gap", "ci"])


def paper_tokens_to_target(paper: pd.DataFrame) -> float:
    """The same measure on the paper's inner-loop losses (its iterations 500-2000, read off its
    figure; the fraction of its 2,000 iterations, tokens being proportional to iterations)."""
    from .effects import tokens_to_target

    p = paper[(paper["task"] == "perplexity") & (paper["metric"] == "loss")]
    curves = pd.DataFrame({"label": p["model"], "unit": "paper", "iteration": p["iteration"].astype(int),
                           "tokens": p["iteration"].astype(float), "val_loss": p["value"]})
    t = tokens_to_target(curves)
    return float(t.loc[t["unit"] == "paper", "fraction"].iloc[0]) if len(t) else float("nan")


def tokens_to_target_markdown(t: pd.DataFrame, paper: pd.DataFrame | None = None) -> str | None:
    """The data-efficiency measure in words: the fraction of the inner loop's tokens a Connectome
    lineage needs to reach NoConnectome's final validation loss (and the paper's, from ``paper``)."""
    if not len(t):
        return None
    per = t[t["unit"] != "mean"]
    mean = t[t["unit"] == "mean"].iloc[0]
    missed = int(per["fraction"].isna().sum())
    text = (f"**Tokens to NoConnectome's final loss** ({float(t['target'].iloc[0]):.4f} nats): "
            + ", ".join(f"{r.unit} {r.fraction:.0%}" if pd.notna(r.fraction) else f"{r.unit} never"
                        for r in per.itertuples()) + " of the inner loop's tokens")
    if missed:
        return text + f"; {missed} lineage(s) never reach it, so no mean is given."
    text += f"; mean {mean['fraction']:.0%}, 95 % CI over lineages [{mean['ci_low']:.0%}, {mean['ci_high']:.0%}]"
    if paper is not None and len(paper):
        text += (f". In the paper the Connectome model reaches NoConnectome's final loss after "
                 f"{paper_tokens_to_target(paper):.0%} of its inner loop (interpolated between the losses read off "
                 "its figure)")
    return text + "."


# ------------------------------------------------------------------------------ NLP
def _mean_pm_se(mean: float, se: float, digits: int = 4) -> str:
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def nlp_table(summary: pd.DataFrame, paper: pd.DataFrame, measures=NLP_MEASURES) -> pd.DataFrame:
    """Per NLP measure and model type: the paper's value, ours (mean ± SE over seeds; marked
    degenerate when the model answers one position for > 90 % of the items) and chance."""
    rows = []
    for task, metric in measures:
        for label in LABELS:
            p = paper[(paper["model"] == label) & (paper["task"] == task) & (paper["metric"] == metric)]
            mine = summary[(summary["label"] == label) & (summary["task"] == task)]
            o = mine[mine["metric"] == metric]
            deg = mine[mine["metric"] == "degenerate"]
            ours = _mean_pm_se(o["mean"].iloc[0], o["se"].iloc[0]) if len(o) else "—"
            if len(deg) and deg["mean"].iloc[0] > 0:  # picks one answer position for > 90 % of the items
                ours = f"degenerate ({ours}: answers one position almost always)"
            rows.append({"measure": f"{task} {metric}", "model": label,
                         "paper": _mean_pm_se(p["value"].iloc[0], p["se"].iloc[0]) if len(p) else "—",
                         "ours": ours, "chance": chance_level(task, metric)})
    return pd.DataFrame(rows).set_index(["measure", "model"])


def present_measures(summary: pd.DataFrame, measures) -> list[tuple[str, str]]:
    """The (task, metric) of ``measures`` that ``summary`` has rows for, in their order."""
    return [(t, m) for t, m in measures if ((summary["task"] == t) & (summary["metric"] == m)).any()]


def chance_lines(measures) -> dict[tuple[str, str], float]:
    """The registry's chance level of each measure that has one (for ``plots.metric_bars(baselines=)``)."""
    return {(t, m): c for t, m in measures if (c := chance_level(t, m)) is not None}


# ------------------------------------------------------------------------------ reading times
def paper_reading_times(paper: pd.DataFrame) -> pd.DataFrame:
    """The paper's reading-time r against inner-loop iteration (integer iterations)."""
    return paper[(paper["task"] == "futrell2018") & (paper["metric"] == "r")].astype({"iteration": int})


def reading_time_curves(evals: pd.DataFrame) -> pd.DataFrame:
    """Our reading-time r rows at every evaluated iteration."""
    return evals[(evals["task"] == "futrell2018") & (evals["metric"] == "r")]


def reading_time_table(summary: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Per model type: our final reading-time correlations (:data:`READING_TIME_METRICS` that
    the run has) and the paper's final r, rounded to 4 digits."""
    fut = summary[(summary["task"] == "futrell2018") & summary["metric"].isin(READING_TIME_METRICS)]
    table = fut.pivot(index="label", columns="metric", values="mean").reindex(list(LABELS))
    final = paper_reading_times(paper)
    final = final[final["iteration"] == PAPER_FINAL_ITERATION].set_index("model")["value"]
    table["paper r (final)"] = [final.get(label, float("nan")) for label in table.index]
    return table.round(4)


def reading_time_baselines(baselines: pd.Series) -> pd.DataFrame:
    """The reading-time r of the untrained model and of the model-free predictors, rounded to 4 digits."""
    return pd.DataFrame({"r": [baselines.get(k) for k in READING_TIME_BASELINES]},
                        index=list(READING_TIME_BASELINES.values())).round(4)


def paper_reading_time_curves(paper: pd.DataFrame) -> pd.DataFrame:
    """The paper's reading-time r, iterations (rows) by model type (columns)."""
    return paper_reading_times(paper).pivot(index="iteration", columns="model", values="value")[list(PAPER_LABELS)]


# ------------------------------------------------------------------------------ brain
def paper_brain_by_layer(paper: pd.DataFrame) -> pd.DataFrame:
    """The paper's brain predictivity per layer (integer layers)."""
    return paper[paper["task"] == "tuckute2024"].dropna(subset=["layer"]).astype({"layer": int})


def sentence_length_r(baselines: pd.Series) -> str:
    """The brain predictivity of sentence length alone, as the page quotes it (3 digits)."""
    return f"{baselines.get('brain/r_length', float('nan')):.3f}"


def language_units_table(summary: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Per model type: our language-unit predictivity (top 1 % and 10 %) and the paper's (mean ± SE)."""
    lu = paper[paper["task"] == "language_units"].set_index("model")
    metrics = [m for _, m in LANGUAGE_UNIT_MEASURES]
    units = summary[(summary["task"] == "language_units") & summary["metric"].isin(metrics)]
    t = units.pivot(index="label", columns="metric", values="mean").reindex(list(LABELS))
    t["paper"] = [f"{lu.loc[label, 'value']:.3f} ± {lu.loc[label, 'se']:.3f}" if label in lu.index else "—"
                  for label in t.index]
    return t.round(4)


def untrained_best_layer(baselines: pd.Series) -> dict[tuple[str, str], float]:
    """The untrained model's best-layer predictivity as the reference line of each language-unit measure."""
    return {LANGUAGE_UNIT_MEASURES[0]: baselines.get("untrained/tuckute2024/r_best", float("nan"))}


# ------------------------------------------------------------------------------ all numbers
def final_numbers(summary: pd.DataFrame, measures=FINAL_MEASURES) -> pd.DataFrame:
    """Every final-model number of :data:`FINAL_MEASURES` that the run has, mean ± SE (4 digits):
    rows task/metric, columns model types."""
    for key in measures:
        if measure(*key) is None:
            raise KeyError(f"{key} is not a measure the registry declares")
    return plots.summary_table(summary, present_measures(summary, measures), digits=4).T


# ------------------------------------------------------------------------------ page one
def run_description(prov: dict) -> str:
    """What a run trained, in one paragraph generated from its recorded profile: model size,
    lineages and generations with their tokens, inner-loop tokens and models per type."""
    from .config import ModelSize
    from .estimate import human_count, parameter_count, training_tokens

    cfg = prov["config"]
    m, ev, dv = cfg["model"], cfg["evolve"], cfg["develop"]

    def per_iter(t: dict) -> int:
        return training_tokens(t["iters"], t["batch_size"], t["grad_accum"], m["block_size"])

    lineages = prov.get("lineages") or {"c0": ev["train"]["seed"]}
    seeds = ("seeds " if len(lineages) > 1 else "seed ") + ", ".join(str(s) for s in lineages.values())
    k, n = len(lineages), len(dv["seeds"])
    per_lineage = "one per lineage" if n == k else f"on {k} lineage{'s' if k > 1 else ''}"
    inner = dv["train"]
    unique = cfg["data"].get("inner_max_tokens")
    passes = (f" ({per_iter(inner) / unique:.3g} passes over an inner corpus of {human_count(unique)} tokens)"
              if unique else "")
    dense = dv.get("dense_seeds") or dv["seeds"]
    inherit = [LABELS_BY_INIT[i] for i in dv["inits"] if i != "dense"]
    params = human_count(parameter_count(ModelSize(**m)))
    return (f"A GPT of {m['n_layer']} layers × {m['n_embd']} ({params} parameters, context "
            f"{m['block_size']}, vocabulary {m['vocab_size']:,}). Outer loop: {len(lineages)} independent "
            f"lineage{'s' if k > 1 else ''} ({seeds}) × {ev['generations']} generations of "
            f"{human_count(per_iter(ev['train']))} fresh tokens. Inner loop: {human_count(per_iter(inner))} tokens "
            f"per model{passes}; {', '.join(inherit)}: {n} model{'s' if n > 1 else ''} each ({per_lineage}), "
            f"NoConnectome: {len(dense)} seeds.")


def at_a_glance(data: FindingsData) -> str:
    """The box on the book's first page: what was run, what holds, what cannot be tested at this
    scale and what the unit of replication is -- every word generated from the results."""
    head = ":::{admonition} At a glance: what this run found\n:class: important\n"
    body = [f"**What was run** (profile `{data.profile}`, {data.provenance['hardware']}). "
            + run_description(data.provenance)]
    if len(data.claims) and "unit_a" in data.claims:
        body.append("**Unit of replication**: the lineage (one independent connectome) for the model types that "
                    "inherit a connectome, the inner seed for NoConnectome; items (windows, words, questions) "
                    "never count as replicates. Each claim is an exact permutation test on unit means.")
        body.append(bottom_line(data.claims))
    else:
        body.append("This run predates the tests across units of replication, so no claim of the paper is "
                    "confirmed or refuted by it.")
    body.append("Effects, intervals, the placebo and the per-book gaps: {doc}`results`.")
    return head + "\n\n".join(body) + "\n:::"


def learning_gate_markdown(data: FindingsData) -> str:
    """Whether the run's models learned language: NoConnectome's final validation loss against the
    unigram entropy of the validation corpus, and the gate (the record the export keeps in the
    provenance; runs exported before it existed say so)."""
    g = data.provenance.get("learning_gate")
    if not g or g.get("met") is None:
        return ("The learning gate is not recorded with these results (they were exported before the gate was, or "
                "the run has no NoConnectome model); the development stage's page states it for its run.")
    verdict = "**meets the gate**" if g["met"] else "**misses the gate**: its models carry no claim"
    return (f"NoConnectome ends at {g['final_loss']:.3f} nats/token ({g['final_loss_definition']}) against a unigram "
            f"entropy of {g['unigram_entropy']:.3f}: {abs(g['gap']):.2f} {'below' if g['gap'] >= 0 else 'above'} it, "
            f"so the run {verdict} "
            f"({g['gate']} nats below).")


def learning_gate_of(results_dir: str | Path) -> str:
    """:func:`learning_gate_markdown` of the results in ``results_dir``, or a line saying there are none."""
    if not (Path(results_dir) / "provenance.json").exists():
        return f"No exported `{Path(results_dir).name}` results here, so no learning gate to report."
    return learning_gate_markdown(load(results_dir))


def loss_definitions_markdown(data: FindingsData) -> str | None:
    """The book's two validation losses, named and set side by side for each model type: the
    learning-curve loss at the last iteration (the trainer's, over the first windows of the
    validation corpus; stages 3 and 8) and the final validation loss (the ``perplexity`` task,
    every token of the validation corpus; the verdicts, stage 5 and this page). ``None`` when
    either is missing."""
    from types import SimpleNamespace

    from .registry import FINAL_LOSS, LEARNING_CURVE_LOSS, learning_curve_windows

    curves, summary = data.training_curves, data.summary
    if curves is None or curves.empty or summary.empty:
        return None
    c = curves.dropna(subset=["val_loss"])
    last = c[c.groupby(["label", "unit"])["iteration"].transform("max") == c["iteration"]]
    curve = last.groupby(["label", "unit"])["val_loss"].mean().groupby("label").mean()
    final = summary[(summary["task"] == "perplexity") & (summary["metric"] == "loss")].set_index("label")["mean"]
    labels = [label for label in curve.index if label in final.index]
    if not labels:
        return None
    windows = learning_curve_windows(SimpleNamespace(**data.config["develop"]["train"]))
    block = int(data.config["model"]["block_size"])
    evals = data.evals
    n = evals[(evals["task"] == "perplexity") & (evals["metric"] == "loss")]["n"] if "n" in evals else None
    tokens = f"{int(n.iloc[0]):,} tokens" if n is not None and len(n) else "every token"
    pairs = "; ".join(f"{label} {curve[label]:.3f} and {final[label]:.3f}" for label in labels)
    return (f"**Two validation losses, two names.** The *{LEARNING_CURVE_LOSS}* is the trainer's, measured at every "
            f"evaluation of the inner loop on the first {windows:,} windows of {block} tokens of the validation "
            f"corpus (the learning curves, the data-efficiency figure, the ablation table of stage 8). The "
            f"*{FINAL_LOSS}* is the `perplexity` task's on the final models, over {tokens} of the validation "
            f"corpus (every book): the number the verdicts test. They differ because they read different windows, "
            f"not because the models differ; per model type ({LEARNING_CURVE_LOSS} at the last iteration, then "
            f"{FINAL_LOSS}): {pairs}.")
