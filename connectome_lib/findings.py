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
from .registry import LABELS, chance_level, measure
from .verdicts import verdict_markdown

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
#: the columns of the verdict table and their names on the page
VERDICT_COLUMNS: dict[str, str] = {
    "measure": "measure", "a": "model a", "b": "model b", "effect": "a − b", "ci_low": "CI low",
    "ci_high": "CI high", "p_items_holm": "p (items, Holm)", "p_seeds_perm": "p (seeds, exact)",
    "mde": "detectable at 80 %", "verdict": "verdict",
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
    verdicts: pd.DataFrame
    claims: pd.DataFrame
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


def load(results_dir: str | Path | None = None) -> FindingsData:
    """Read the results the book shows (default :func:`~connectome_lib.book_support.book_results_dir`)."""
    d = Path(results_dir) if results_dir is not None else book_results_dir()
    res = load_results(d)
    empty = pd.DataFrame()
    evals = res["eval_results"]
    return FindingsData(
        results_dir=d, provenance=res["provenance"], summary=res["summary"], evals=evals,
        training_curves=res["training_curves"], items=res.get("items", empty), verdicts=res.get("verdicts", empty),
        claims=res.get("claims", empty), paper=paper_results(),
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
        f"context {cfg['model']['block_size']}; outer loop {cfg['evolve']['generations']} generations × "
        f"{cfg['evolve']['train']['iters']} iterations; inner loop {cfg['develop']['train']['iters']} iterations, "
        f"seeds {cfg['develop']['seeds']}; evaluation subsets: limit={cfg['evals']['limit']}, "
        f"futrell_limit={cfg['evals'].get('futrell_limit')}, brain_limit={cfg['evals'].get('brain_limit')}."
    )


def timings_markdown(results_dir: str | Path) -> str | None:
    """The wall time of the run that made the results (``timings.json`` beside them), per stage
    and, when the stage pages were executed again, of that second pass; ``None`` without one."""
    path = Path(results_dir) / "timings.json"
    if not path.exists():
        return None
    t = json.loads(path.read_text())
    total = t.get("total_seconds_including_setup_and_book")
    second = t.get("second_pass")
    return (f"Wall time of `{t['command']}` at commit `{t['commit'][:7]}`: "
            + (f"**{total / 60:.0f} min** in all (set-up and book build included); " if total else "")
            + "per stage: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in t["stage_seconds"].items()) + "."
            + (f" The stage pages were then executed again at commit `{second['commit'][:7]}` on the same "
               f"run folders ({second['total_seconds_including_setup_and_book'] / 60:.0f} min; "
               f"{second['what']})." if second else ""))


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


def verdict_box(claims: pd.DataFrame, n_seeds: int, profile: str) -> str:
    """The "What holds at this scale" admonition: the verdicts of the paired tests, or, for a
    run without per-item results, that no claim is tested."""
    head = ":::{admonition} What holds at this scale\n:class: important\n"
    if len(claims):
        return head + verdict_markdown(claims, n_seeds, profile) + "\n:::"
    return (head + "This run predates the per-item result files, so its claims cannot be tested on the same items; "
            f"with {n_seeds} seeds a seed-level rule cannot support a verdict either. The measured numbers below are "
            "shown as they are; **no claim of the paper is confirmed or refuted by them.**\n:::")


def verdict_notes(data: FindingsData) -> list[str]:
    """The Verdict section's Markdown blocks in order: the drift warning and the caution on
    degenerate models where they apply, then the verdict box."""
    notes = [drift_warning(data.provenance), degenerate_caution(data.summary),
             verdict_box(data.claims, data.n_seeds, data.profile)]
    return [n for n in notes if n]


def verdict_details(verdicts: pd.DataFrame) -> pd.DataFrame | None:
    """Every paired comparison (effect, CI, Holm-adjusted p, seed p, detectable difference,
    verdict), indexed by measure and the two models; ``None`` without per-item verdicts."""
    if not len(verdicts):
        return None
    return (verdicts[list(VERDICT_COLUMNS)].rename(columns=VERDICT_COLUMNS).round(4)
            .set_index(["measure", "model a", "model b"]))


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
    table["paper r (final)"] = [final[label] for label in table.index]
    return table.round(4)


def reading_time_baselines(baselines: pd.Series) -> pd.DataFrame:
    """The reading-time r of the untrained model and of the model-free predictors, rounded to 4 digits."""
    return pd.DataFrame({"r": [baselines.get(k) for k in READING_TIME_BASELINES]},
                        index=list(READING_TIME_BASELINES.values())).round(4)


def paper_reading_time_curves(paper: pd.DataFrame) -> pd.DataFrame:
    """The paper's reading-time r, iterations (rows) by model type (columns)."""
    return paper_reading_times(paper).pivot(index="iteration", columns="model", values="value")[list(LABELS)]


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
    t["paper"] = [f"{lu.loc[label, 'value']:.3f} ± {lu.loc[label, 'se']:.3f}" for label in t.index]
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
