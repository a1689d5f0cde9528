"""Which of the paper's claims hold at this scale: per-item outcomes, paired tests, a verdict.

The paper claims that the Connectome model does better than, or as well as, both controls on
every measure (Connectome >= NoConnectome >= RandomConnectome). With 2-4 seeds a claim cannot
rest on "2 standard errors over seeds": the verdicts here use the paired tests of
:mod:`connectome_lib.stats` on the *same items* (HellaSwag and MMLU questions, BLiMP pairs,
validation windows, Natural Stories words), pooled over seeds, Holm-corrected over the whole
family of comparisons, and state the smallest difference the run could have detected.

* :func:`item_outcomes` -- one long table of the final models' per-item outcomes, from the
  per-item tables the evaluation writes (``<run_root>/evals/tables/``);
* :func:`verdict_table` -- every pair of model types on every measure (:func:`stats.compare_models`)
  with one Holm family, and the paper's expected direction next to each;
* :func:`claim_summary` and :func:`verdict_markdown` -- the plain-words verdict box;
* :func:`scorecard_frame` -- the table behind the one-glance scorecard figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import layout
from .registry import CLAIM_MEASURES, CONNECTOME, CONTROLS, PAPER_ORDER
from .stats import StatsConfig, apply_holm, compare_models, summarize_items

# The measures tested are the registry's :data:`~connectome_lib.registry.CLAIM_MEASURES`: each
# names its claim (``m.claim``, e.g. "HellaSwag acc_norm"), the task whose per-item table holds
# it, the per-item column (``m.item_column``), the columns that identify an item (``m.item``),
# for correlations the column it is correlated with (``m.target``) and ``m.higher_is_better``.


def item_outcomes(run_root: str | Path, results: pd.DataFrame, measures=CLAIM_MEASURES) -> pd.DataFrame:
    """Per-item outcomes of every final model: columns ``measure, label, init, seed, item,
    value`` (and ``target`` for correlations). The final model of a training folder is its
    highest evaluated iteration; models or tasks without a per-item table are left out."""
    if results.empty:
        return pd.DataFrame(columns=["measure", "label", "init", "seed", "item", "value", "target"])
    final = results.groupby("model")["iteration"].transform("max") == results["iteration"]
    models = results[final].drop_duplicates(["model", "task"])
    parts = []
    for m in measures:
        for r in models[models["task"] == m.task].itertuples():
            path = layout.eval_table_path(layout.evals_dir(run_root), r.model, r.iteration, m.task)
            if not path.exists():
                continue
            t = pd.read_csv(path)
            if m.item_column not in t:
                continue
            item = t[list(m.item)].astype(str).agg("/".join, axis=1) if len(m.item) > 1 else t[m.item[0]].astype(str)
            part = pd.DataFrame({"measure": m.claim, "label": r.label, "init": r.init, "seed": int(r.seed),
                                 "item": item, "value": t[m.item_column].to_numpy(float)})
            part["target"] = t[m.target].to_numpy(float) if m.target else np.nan
            parts.append(part.dropna(subset=["value"]))
    if not parts:
        return pd.DataFrame(columns=["measure", "label", "init", "seed", "item", "value", "target"])
    return pd.concat(parts, ignore_index=True)


def verdict_table(items: pd.DataFrame, measures=CLAIM_MEASURES, config: StatsConfig = StatsConfig()) -> pd.DataFrame:
    """Every pair of model types on every measure, with one Holm family over all rows.

    Adds ``paper_expects`` (the sign the paper's ordering predicts for ``a - b`` in the
    measure's "better" direction: +1 when ``a`` ranks above ``b``) and ``agrees_with_paper``:
    ``yes`` when the verdict is "better" in the paper's direction, ``no`` when it is "better"
    the other way round, ``unresolved`` when the two cannot be told apart."""
    rows = []
    for m in measures:
        sub = items[items["measure"] == m.claim]
        if sub["label"].nunique() < 2:
            continue
        df = compare_models(sub, "value", target="target" if m.target else None, models=PAPER_ORDER,
                            higher_is_better=m.higher_is_better, config=config)
        df["measure"] = m.claim  # compare_models names the column it compared; name the measure
        df["higher_is_better"] = m.higher_is_better
        rows.append(df)
    if not rows:
        return pd.DataFrame()
    out = apply_holm(pd.concat(rows, ignore_index=True), config.alpha)
    rank = {lab: i for i, lab in enumerate(PAPER_ORDER)}
    out["paper_expects"] = [1 if rank[a] < rank[b] else -1 for a, b in zip(out["a"], out["b"])]
    agree = []
    for r in out.itertuples():
        if r.verdict == "indistinguishable":
            agree.append("unresolved")
        else:
            a_better = r.verdict == "better"
            agree.append("yes" if a_better == (r.paper_expects > 0) else "no")
    out["agrees_with_paper"] = agree
    return out


def claim_summary(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The paper's claim, Connectome >= each control, per measure in plain words."""
    rows = []
    for measure, sub in verdicts.groupby("measure", sort=False):
        for control in CONTROLS:
            r = sub[((sub["a"] == CONNECTOME) & (sub["b"] == control))
                    | ((sub["b"] == CONNECTOME) & (sub["a"] == control))]
            if r.empty:
                continue
            r = r.iloc[0]
            sign = 1 if r["a"] == CONNECTOME else -1  # effect of Connectome - control
            effect = sign * r["effect"]
            connectome_better = ((r["verdict"] == "better") == (r["a"] == CONNECTOME)
                                 and r["verdict"] != "indistinguishable")
            if r["verdict"] == "indistinguishable":
                status = "cannot be told apart"
            else:
                status = "holds" if connectome_better else "does not hold"
            rows.append({"measure": measure, "claim": f"{CONNECTOME} ≥ {control}", "status": status,
                         "effect": effect, "ci_low": sign * (r["ci_low"] if sign > 0 else r["ci_high"]),
                         "ci_high": sign * (r["ci_high"] if sign > 0 else r["ci_low"]),
                         "p_holm": r["p_items_holm"], "mde": r["mde"], "higher_is_better": r["higher_is_better"]})
    return pd.DataFrame(rows)


def _fmt(x: float) -> str:
    return f"{x:+.3f}" if abs(x) >= 1e-3 or x == 0 else f"{x:+.1e}"


def verdict_markdown(claims: pd.DataFrame, n_seeds: int, profile: str) -> str:
    """The verdict box: what holds, what does not, what cannot be told apart, in words."""
    if claims.empty:
        return "No per-item evaluations were found for this run, so no verdict can be given."
    lines = []
    for status, title in (("holds", "Holds at this scale"), ("does not hold", "Does not hold at this scale"),
                          ("cannot be told apart", "Cannot be told apart")):
        sub = claims[claims["status"] == status]
        if sub.empty:
            continue
        items = []
        for r in sub.itertuples():
            better = "lower" if not r.higher_is_better else "higher"
            detail = (f"no difference larger than {r.mde:.3f} was detectable" if status == "cannot be told apart"
                      else f"difference {_fmt(r.effect)} ({better} is better), "
                           f"95 % CI [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}], "
                           f"Holm-adjusted p = {r.p_holm:.2g}")
            items.append(f"{r.claim} on {r.measure}: {detail}")
        lines.append(f"**{title}** — " + "; ".join(items) + ".")
    n_hold = int((claims["status"] == "holds").sum())
    n_not = int((claims["status"] == "does not hold").sum())
    head = (f"Profile `{profile}`, {n_seeds} seed(s) per model type. Of {len(claims)} comparisons of the Connectome "
            f"model with a control, the paper's claim holds in {n_hold}, fails in {n_not}, and "
            f"{len(claims) - n_hold - n_not} cannot be told apart. Tests are paired on the same items, pooled over "
            "seeds, with one Holm correction over every comparison on the page.")
    return "\n\n".join([head, *lines])


def scorecard_frame(items: pd.DataFrame, measures=CLAIM_MEASURES) -> pd.DataFrame:
    """Per measure and model type: mean over seeds of the per-seed metric with a bootstrap CI
    over items, and the paper's direction (for :func:`connectome_lib.plots.scorecard`)."""
    rows = []
    for m in measures:
        sub = items[items["measure"] == m.claim]
        if sub.empty:
            continue
        s = summarize_items(sub, "value", target="target" if m.target else None)
        s["measure"] = m.claim
        s["paper_direction"] = "higher" if m.higher_is_better else "lower"
        rows.append(s)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
