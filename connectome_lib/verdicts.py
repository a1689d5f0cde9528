"""Which of the paper's claims hold at this scale, tested on the right unit of replication.

The paper's claim is about training *procedures*: a model that inherits an evolved connectome
does better than one that inherits a random connectome of matched density, or none
(Connectome >= NoConnectome >= RandomConnectome). Its replicates are independent connectomes
(one outer-loop *lineage* each) and independent inner seeds, never the items of a benchmark: two
seeds of one model type differ on almost every item-level test. So every verdict here is a test
across units (:mod:`connectome_lib.replication`):

* :func:`model_values` -- one value per trained model and measure (its final value, or for a
  trajectory measure the mean over its checkpoints), with the model's unit: the lineage ``c<k>``
  for the types that start from a connectome, the seed ``s<n>`` for NoConnectome
  (:func:`connectome_lib.readers.unit_of`);
* :func:`testability` -- whether a measure can discriminate at all: not when a compared model is
  degenerate (one answer position for most items), nor when no model type beats chance or the
  untrained-model and word-length baselines (registry ``Measure.baselines``);
* :func:`claim_table` -- the Connectome model against every control on every measure: effect,
  95 % interval and exact permutation p over unit means, the smallest p the design allows, the
  placebo (the same test between halves of NoConnectome's seeds), the verdict, the unit and n;
* :func:`verdict_markdown` -- the plain-words verdict box, led by :func:`bottom_line`: whether
  the paper's claim stands at this scale, said plainly;
* :func:`item_outcomes` and :func:`scorecard_frame` -- per-item outcomes of the final models,
  which *describe* model pairs (per-book losses, per-item plots), never a claim.

No correction for multiple comparisons is folded into the verdicts; the box states how many
comparisons were made and how many would fire by chance alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import layout, replication
from .registry import CLAIM_MEASURES, CONNECTOME, CONTROLS, Measure

ALPHA = 0.05
#: the model type whose seeds the built-in placebo splits in half
PLACEBO_TYPE = "NoConnectome"
#: the statuses of a claim, in the order the box lists them
STATUSES = ("holds", "does not hold", "cannot be told apart", "not testable at this scale")


# ------------------------------------------------------------------------------ per-item outcomes
def item_outcomes(run_root: str | Path, results: pd.DataFrame, measures=CLAIM_MEASURES) -> pd.DataFrame:
    """Per-item outcomes of every final model: columns ``measure, label, init, seed, model, item,
    value`` (and ``target`` for correlations). The final model of a training folder is its
    highest evaluated iteration; models or tasks without a per-item table are left out."""
    columns = ["measure", "label", "init", "seed", "model", "item", "value", "target", "cluster"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    final = results.groupby("model")["iteration"].transform("max") == results["iteration"]
    models = results[final].drop_duplicates(["model", "task"])
    parts = []
    for m in measures:
        if not m.has_items:
            continue
        for r in models[models["task"] == m.task].itertuples():
            path = layout.eval_table_path(layout.evals_dir(run_root), r.model, r.iteration, m.task)
            if not path.exists():
                continue
            t = pd.read_csv(path)
            if m.item_column not in t:
                continue
            item = t[list(m.item)].astype(str).agg("/".join, axis=1) if len(m.item) > 1 else t[m.item[0]].astype(str)
            part = pd.DataFrame({"measure": m.claim, "label": r.label, "init": r.init, "seed": int(r.seed),
                                 "model": r.model, "item": item, "value": t[m.item_column].to_numpy(float)})
            part["target"] = t[m.target].to_numpy(float) if m.target else np.nan
            # the group of dependent items (a subject, a paradigm, a story); validation books are
            # filled in by the export, which knows the corpus
            part["cluster"] = t[m.cluster].astype(str).to_numpy() if m.cluster in t else np.nan
            parts.append(part.dropna(subset=["value"]))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)


def scorecard_frame(items: pd.DataFrame, measures=CLAIM_MEASURES) -> pd.DataFrame:
    """Per measure and model type: mean over seeds of the per-seed metric with a bootstrap CI
    over items (over whole clusters of dependent items where ``items`` names them: books,
    stories, subjects, paradigms), and the paper's direction (for
    :func:`connectome_lib.plots.scorecard`). A description of the trained models, not a test."""
    from .stats import summarize_items

    rows = []
    for m in measures:
        sub = items[items["measure"] == m.claim]
        if sub.empty:
            continue
        s = summarize_items(sub, "value", target="target" if m.target else None, clusters=_clusters(sub))
        s["measure"] = m.claim
        s["paper_direction"] = "higher" if m.higher_is_better else "lower"
        rows.append(s)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _clusters(items: pd.DataFrame) -> pd.Series | None:
    """Item -> cluster of a per-item table whose every row names its cluster (else None)."""
    if "cluster" not in items or items["cluster"].isna().any():
        return None
    return items.drop_duplicates("item").set_index("item")["cluster"]


# ------------------------------------------------------------------------------ per-model values
def model_values(results: pd.DataFrame, units: pd.DataFrame, measures=CLAIM_MEASURES) -> pd.DataFrame:
    """One row per inner-loop model and claim measure: ``measure, label, model, seed, unit,
    value``. ``units`` is :func:`connectome_lib.readers.model_units` (model -> unit); a model
    without one counts as its own unit (its folder name)."""
    columns = ["measure", "label", "model", "seed", "unit", "value"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    unit_of = dict(zip(units["model"], units["unit"])) if len(units) else {}
    last = results.groupby(["model", "task"])["iteration"].transform("max") == results["iteration"]
    parts = []
    for m in measures:
        if m.mean_over_training_of:
            rows = results[(results["task"] == m.task) & (results["metric"] == m.mean_over_training_of)]
            if rows["iteration"].nunique() < 2:
                continue  # one checkpoint is no trajectory
            v = rows.groupby(["model", "label", "seed"], as_index=False)["value"].mean()
        else:
            v = results[last & (results["task"] == m.task) & (results["metric"] == m.metric)]
            v = v.drop_duplicates("model")[["model", "label", "seed", "value"]]
        if v.empty:
            continue
        parts.append(v.assign(measure=m.claim, unit=v["model"].map(lambda x: unit_of.get(x, x))))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def unit_table(values: pd.DataFrame, measure: str) -> pd.DataFrame:
    """:func:`connectome_lib.replication.unit_means` of one measure's model values."""
    return replication.unit_means(values[values["measure"] == measure])


# ------------------------------------------------------------------------------ testability
def testability(m: Measure, units: pd.DataFrame, labels: tuple[str, str], degenerate: pd.DataFrame,
                baselines: pd.Series) -> str | None:
    """Why measure ``m`` cannot tell the model types ``labels`` apart at this scale, or ``None``
    when it can: a degenerate model among them (``degenerate``: rows ``label, task, mean`` of the
    ``degenerate`` metric, the fraction of seeds), or no model type clearly better than chance
    or than every baseline in ``m.baselines`` (its unit mean more than two standard errors beyond
    the best of them)."""
    deg = degenerate[(degenerate["task"] == m.task) & degenerate["label"].isin(labels) & (degenerate["mean"] > 0)]
    if len(deg):
        return "degenerate: " + ", ".join(sorted(deg["label"])) + " answer(s) one position for most items"
    refs = {}
    if m.chance is not None:
        refs["chance"] = m.chance
    for b in m.baselines:
        if b in baselines.index and np.isfinite(baselines[b]):
            refs[b] = float(baselines[b])
    if not refs:
        return None
    sign = 1 if m.higher_is_better else -1
    bar = max(sign * v for v in refs.values())
    for _, g in units.groupby("label"):
        x = g["value"].to_numpy(float)
        se = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else np.inf
        if sign * x.mean() - 2 * se > bar:
            return None
    return "no model type beats " + " and ".join(refs) + " by more than two standard errors"


# ------------------------------------------------------------------------------ claims
def claim_table(values: pd.DataFrame, degenerate: pd.DataFrame | None = None, baselines: pd.Series | None = None,
                measures=CLAIM_MEASURES, alpha: float = ALPHA) -> pd.DataFrame:
    """The paper's claim (Connectome >= each control) on every measure, tested across units.

    One row per (measure, control): ``measure, claim, control, unit_a, n_a, unit_b, n_b,
    mean_a, mean_b, effect`` (Connectome minus control, in the measure's own direction),
    ``ci_low, ci_high`` (Welch 95 %), ``p`` (exact permutation over unit means), ``min_p``
    (the smallest p the design allows), ``excluded_beyond``, ``placebo_rate``,
    ``placebo_splits``, ``placebo_can_fire``, ``testable`` (why not, or empty), ``status`` (one of
    :data:`STATUSES`) and ``higher_is_better``."""
    degenerate = degenerate if degenerate is not None else pd.DataFrame(columns=["label", "task", "mean"])
    baselines = baselines if baselines is not None else pd.Series(dtype=float)
    rows = []
    for m in measures:
        units = unit_table(values, m.claim) if len(values) else pd.DataFrame()
        if units.empty or CONNECTOME not in set(units["label"]):
            continue
        placebo = replication.placebo(units, PLACEBO_TYPE, alpha=alpha)
        for control in CONTROLS:
            if control not in set(units["label"]):
                continue
            pair = units[units["label"].isin([CONNECTOME, control])]
            try:
                t = replication.compare_types(pair, CONNECTOME, control, alpha=alpha)
            except ValueError:
                continue  # fewer than two units in a group
            why = testability(m, pair, (CONNECTOME, control), degenerate, baselines)
            status = replication.verdict(t, placebo if placebo.n_splits else None, m.higher_is_better, alpha,
                                         testable=why is None)
            if t.min_p > alpha and why is None:
                why = f"with {t.n_a} and {t.n_b} units no p-value can reach {alpha}"
            if status == "placebo fires":  # the test rejects halves of one type: no verdict on this measure
                why = (f"the placebo fires: halves of {PLACEBO_TYPE}'s units differ in {placebo.rate:.0%} of "
                       "splits")
            named = {"better": "holds", "worse": "does not hold", "indistinguishable": "cannot be told apart"}
            rows.append({
                "measure": m.claim, "claim": f"{CONNECTOME} ≥ {control}", "control": control,
                "unit_a": _unit_name(pair, CONNECTOME), "n_a": t.n_a, "unit_b": _unit_name(pair, control), "n_b": t.n_b,
                "mean_a": t.mean_a, "mean_b": t.mean_b, "effect": t.effect, "ci_low": t.ci_low, "ci_high": t.ci_high,
                "p": t.p, "min_p": t.min_p, "excluded_beyond": t.excluded_beyond,
                "placebo_rate": placebo.rate, "placebo_splits": placebo.n_splits,
                "placebo_can_fire": placebo.can_fire,
                "testable": why or "", "status": named.get(status, status if status in STATUSES else
                                                           "not testable at this scale"),
                "higher_is_better": m.higher_is_better,
            })
    return pd.DataFrame(rows)


def _unit_name(units: pd.DataFrame, label: str) -> str:
    """``lineage`` or ``seed``: what the units of ``label`` are."""
    names = units.loc[units["label"] == label, "unit"].astype(str)
    return "lineage" if len(names) and names.str.startswith("c").all() else "seed"


def placebo_summary(values: pd.DataFrame, measures=CLAIM_MEASURES, alpha: float = ALPHA) -> pd.DataFrame:
    """The built-in placebo of every measure and model type with at least four units: the unit
    test between halves of the type's units, over every split; ``fires`` when it rejects in more
    than twice ``alpha`` of them (:attr:`connectome_lib.replication.Placebo.fires`)."""
    rows = []
    for m in measures:
        units = unit_table(values, m.claim) if len(values) else pd.DataFrame()
        for label in (units["label"].unique() if len(units) else []):
            p = replication.placebo(units, label, alpha=alpha)
            if p.n_splits:
                rows.append({"measure": m.claim, "label": label, "units": p.n_units, "splits": p.n_splits,
                             "rejections": p.rejections, "rate": p.rate, "can_fire": p.can_fire, "fires": p.fires})
    return pd.DataFrame(rows, columns=["measure", "label", "units", "splits", "rejections", "rate", "can_fire",
                                       "fires"])


def _fmt(x: float) -> str:
    return f"{x:+.3f}" if abs(x) >= 1e-3 or x == 0 else f"{x:+.1e}"


def verdict_markdown(claims: pd.DataFrame, profile: str) -> str:
    """The verdict box: what holds, what does not, what cannot be told apart and what this scale
    cannot test, each with its unit of replication and n."""
    if claims.empty:
        return "No evaluations were found for this run, so no verdict can be given."
    lines = []
    for status in STATUSES:
        sub = claims[claims["status"] == status]
        if sub.empty:
            continue
        items = []
        for r in sub.itertuples():
            better = "higher" if r.higher_is_better else "lower"
            n = f"{r.n_a} {r.unit_a}s vs {r.n_b} {r.unit_b}s"
            if status == "not testable at this scale":
                detail = f"{r.testable} ({n})"
            elif status == "cannot be told apart":
                detail = (f"difference {_fmt(r.effect)}, differences larger than {r.excluded_beyond:.3f} are "
                          f"excluded (95 %), p = {r.p:.2g} ({n})")
            else:
                detail = (f"difference {_fmt(r.effect)} ({better} is better), 95 % CI [{_fmt(r.ci_low)}, "
                          f"{_fmt(r.ci_high)}], exact p = {r.p:.2g} ({n})")
            items.append(f"{r.claim} on {r.measure}: {detail}")
        lines.append(f"**{status[0].upper() + status[1:]}** — " + "; ".join(items) + ".")
    counted = claims[claims["status"] != "not testable at this scale"]
    lines.insert(0, bottom_line(claims))
    head = (f"Profile `{profile}`. Each claim is tested across its units of replication — lineages (independent "
            "outer-loop runs) for the types that inherit a connectome, inner seeds for NoConnectome — with an exact "
            f"permutation test on the unit means at α = {ALPHA}. Of {len(claims)} comparisons, {len(counted)} can be "
            f"tested at this scale; by chance alone about {len(counted) * ALPHA:.1f} of them would reject.")
    return "\n\n".join([head, *lines])


def _and(names: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def bottom_line(claims: pd.DataFrame) -> str:
    """The verdict in one sentence per control, then whether the paper's claim stands at this
    scale, said plainly: it is *supported* only where Connectome beats the control on some
    measure and loses on none; with no testable comparison at all, nothing is said either way."""
    if claims.empty or "control" not in claims:
        return "No claim was tested on this run."
    parts, supported, refuted = [], [], []
    for control in CONTROLS:
        sub = claims[claims["control"] == control]
        if sub.empty:
            continue
        counts = {s: sorted(sub.loc[sub["status"] == s, "measure"]) for s in STATUSES}
        said = [f"not testable on {len(m)}" if s == STATUSES[-1]
                else f"{s} on {len(m)} ({', '.join(f'“{x}”' for x in m)})" for s, m in counts.items() if m]
        parts.append(f"Against {control}: " + "; ".join(said) + ".")
        if counts["does not hold"]:
            refuted.append(control)
        elif counts["holds"]:
            supported.append(control)
    testable = claims[claims["status"] != "not testable at this scale"]
    if testable.empty:
        plain = ("**At this scale the paper's claim can be neither confirmed nor refuted**: no comparison is "
                 "testable with this many units or on these measures.")
    elif not supported:
        plain = ("**At this scale the paper's claim does not hold**: the connectome beats none of the controls on "
                 "any measure" + (f", and loses to {_and(refuted)}" if refuted else "") + ".")
    else:
        missing = [c for c in CONTROLS if c in set(claims["control"]) and c not in supported]
        plain = (f"**At this scale the paper's claim holds against {_and(supported)}**"
                 + (f" but not against {_and(missing)}" if missing else "") + " (on the measures named)"
                 + (f"; the connectome loses to {_and(refuted)}" if refuted else "") + ".")
    return " ".join([plain, *parts])
