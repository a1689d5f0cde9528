"""Replication-level tests (connectome_lib.replication): calibrated under the null, powered
under an effect, a placebo that does not fire, clustered intervals that widen with dependence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectome_lib import replication as rep
from connectome_lib import stats


def _models(effects: dict[str, float], n_units: int, seeds: int, unit_sd=1.0, seed_sd=0.5, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for label, shift in effects.items():
        for u in range(n_units):
            unit_effect = rng.normal(shift, unit_sd)
            rows += [{"label": label, "unit": f"{label}{u}", "seed": s, "value": unit_effect + rng.normal(0, seed_sd)}
                     for s in range(seeds)]
    return pd.DataFrame(rows)


def test_unit_means_count_each_unit_once():
    m = pd.DataFrame({"label": ["A"] * 3 + ["B"] * 2, "unit": [0, 0, 1, 0, 1], "value": [1.0, 3.0, 5.0, 0.0, 4.0]})
    u = rep.unit_means(m)
    assert u.to_dict("records") == [
        {"label": "A", "unit": 0, "value": 2.0, "n_models": 2}, {"label": "A", "unit": 1, "value": 5.0, "n_models": 1},
        {"label": "B", "unit": 0, "value": 0.0, "n_models": 1}, {"label": "B", "unit": 1, "value": 4.0, "n_models": 1}]


def test_exact_test_enumerates_relabellings_and_knows_its_floor():
    t = rep.unit_test([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], "a", "b")
    assert t.exact and t.min_p == pytest.approx(2 / 70)
    assert t.p == pytest.approx(2 / 70)  # the most extreme of the 70 splits, both tails
    assert t.effect == -4.0 and t.ci_low < -4.0 < t.ci_high < 0
    assert t.excluded_beyond == pytest.approx(abs(t.ci_low))
    with pytest.raises(ValueError, match="at least 2 units"):
        rep.unit_test([1.0], [2.0, 3.0])


def test_false_positive_rate_under_the_null_is_at_most_five_percent():
    """The whole procedure (unit means, exact test across units) on simulated null data."""
    rate = rep.simulated_false_positive_rate(n_units_a=4, n_units_b=4, seeds_per_unit=2, n_sim=600, seed=1)
    assert rate <= 0.05
    # ... and not because it never rejects: with a real difference of 2 unit SDs it usually does
    hits = sum(rep.compare_types(rep.unit_means(_models({"a": 2.5, "b": 0.0}, 4, 2, seed=k)), "a", "b").p <= 0.05
               for k in range(100))
    assert hits >= 50


def test_item_level_placebo_fires_where_the_unit_level_one_does_not():
    """Two seeds of the *same* model type: paired item-level tests call them different, the
    unit-level placebo does not."""
    rng = np.random.default_rng(0)
    items = 2000
    rows = []
    for s in range(4):  # four seeds of one model type, each with its own overall offset
        offset = rng.normal(0, 0.02)
        rows += [{"label": "NoConnectome" if s < 2 else "NoConnectome'", "seed": s % 2, "item": i,
                  "loss": 4.0 + offset + rng.normal(0, 0.05)} for i in range(items)]
    item_test = stats.compare_models(pd.DataFrame(rows), "loss", models=["NoConnectome", "NoConnectome'"],
                                     higher_is_better=False)
    assert float(item_test["p_items"].iloc[0]) < 0.05  # fires: the models differ, the procedures do not
    units = rep.unit_means(_models({"NoConnectome": 0.0}, n_units=8, seeds=2, seed=3))
    pl = rep.placebo(units, "NoConnectome")
    assert pl.n_splits == 35 and not pl.fires


def test_verdict_needs_a_testable_design_and_a_quiet_placebo():
    t = rep.unit_test([1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 1.9, 2.05], "Connectome", "NoConnectome")
    quiet = rep.Placebo("NoConnectome", 4, 3, 0, 0.05)
    assert rep.verdict(t, quiet, higher_is_better=False) == "better"  # lower loss
    assert rep.verdict(t, quiet, higher_is_better=True) == "worse"
    assert rep.verdict(t, rep.Placebo("NoConnectome", 4, 3, 2, 0.05), higher_is_better=False) == "placebo fires"
    assert rep.verdict(t, quiet, False, testable=False) == "not testable at this scale"
    small = rep.unit_test([1.0, 1.1], [2.0, 2.1])  # 2 vs 2 units: the smallest p is 1/3
    assert small.min_p == pytest.approx(1 / 3) and rep.verdict(small, None, False) == "not testable at this scale"
    same = rep.unit_test([1.0, 2.0, 3.0, 2.2], [1.5, 2.5, 2.0, 1.8])
    assert rep.verdict(same, None, False) == "indistinguishable"


def test_cluster_bootstrap_widens_with_dependence_within_clusters():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(10), 100)
    values = rng.normal(0, 1, 10)[clusters] + rng.normal(0, 0.1, clusters.size)  # strong cluster effects
    from connectome_lib.stats import cluster_bootstrap, mean

    ci = cluster_bootstrap((values,), mean, clusters, n_resamples=2000)
    iid = cluster_bootstrap((values,), mean, np.arange(values.size), n_resamples=2000)  # items as if iid
    assert (ci.high - ci.low) > 5 * (iid.high - iid.low)
    assert ci.low < values.mean() < ci.high
    with pytest.raises(ValueError, match="2 clusters"):
        cluster_bootstrap((values,), mean, np.zeros_like(clusters))
