"""connectome_lib.stats: known answers for the bootstrap, the paired tests, Holm, MDE and verdicts."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from connectome_lib import stats as S


def correctness_table(shifts: dict, n_items: int = 1500, seeds=(0, 1, 2), seed: int = 0) -> pd.DataFrame:
    """Per-item 0/1 correctness; item difficulty shared by all models, plus a per-model shift."""
    rng = np.random.default_rng(seed)
    p_item = rng.uniform(0.15, 0.85, n_items)
    frames = []
    for label, shift in shifts.items():
        for s in seeds:
            c = (rng.random(n_items) < np.clip(p_item + shift, 0, 1)).astype(int)
            frames.append(pd.DataFrame(dict(label=label, seed=s, item=np.arange(n_items), correct=c)))
    return pd.concat(frames, ignore_index=True)


def correlation_table(signal: dict, n_items: int = 3000, seeds=(0, 1, 2), seed: int = 0) -> pd.DataFrame:
    """Per-word predictor = signal * rt + noise, the same reading times for every model."""
    rng = np.random.default_rng(seed)
    rt = rng.normal(size=n_items)
    frames = []
    for label, sig in signal.items():
        for s in seeds:
            x = sig * rt + rng.normal(size=n_items)
            frames.append(pd.DataFrame(dict(label=label, seed=s, item=np.arange(n_items), surprisal=x, rt=rt)))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- bootstrap

def test_bootstrap_ci_of_an_accuracy_matches_the_normal_interval_and_is_seeded():
    x = np.random.default_rng(3).random(2000) < 0.6
    ci = S.bootstrap_ci(x)
    assert ci.estimate == pytest.approx(x.mean())
    half = 1.96 * np.sqrt(x.mean() * (1 - x.mean()) / x.size)
    assert ci.low < x.mean() < ci.high
    assert (ci.high - ci.low) / 2 == pytest.approx(half, rel=0.15)
    assert ci.se == pytest.approx(half / 1.96, rel=0.15)
    assert S.bootstrap_ci(x, seed=5) == S.bootstrap_ci(x, seed=5)
    assert S.bootstrap_ci(x, seed=5) != S.bootstrap_ci(x, seed=6)


def test_bootstrap_ci_of_a_correlation_resamples_pairs():
    rng = np.random.default_rng(0)
    y = rng.normal(size=3000)
    x = 0.5 * y + rng.normal(size=3000)
    r = sps.pearsonr(x, y)[0]
    ci = S.bootstrap_ci((x, y), S.pearson_r)
    assert ci.estimate == pytest.approx(r, abs=1e-12)
    half = 1.96 * (1 - r**2) / np.sqrt(x.size)  # Fisher's large-sample SE of r
    assert ci.low < r < ci.high and (ci.high - ci.low) / 2 == pytest.approx(half, rel=0.2)
    # resampling x and y independently (unpaired) would destroy the correlation; paired keeps it
    assert ci.low > 0.3


def test_bootstrap_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2 items"):
        S.bootstrap_ci([1.0])
    with pytest.raises(ValueError, match="differ in length"):
        S.bootstrap_ci((np.zeros(5), np.zeros(6)), S.pearson_r)


# ---------------------------------------------------------------- paired tests

def test_mcnemar_exact_known_answer():
    # 8 pairs favour a, 2 favour b, 90 concordant: p = 2 * P(Bin(10, 1/2) <= 2) = 112 / 1024
    a = np.array([1] * 8 + [0] * 2 + [1] * 50 + [0] * 40)
    b = np.array([0] * 8 + [1] * 2 + [1] * 50 + [0] * 40)
    assert S.mcnemar_exact(a, b) == pytest.approx(112 / 1024)
    assert S.mcnemar_exact(a, a) == 1.0
    with pytest.raises(ValueError, match="0/1"):
        S.mcnemar_exact(np.array([0.5, 1]), np.array([1, 1]))


def test_paired_permutation_test_is_exact_for_few_pairs_and_detects_a_shift():
    # 4 positive differences: 2 of the 16 sign patterns are as extreme -> p = 2/16
    assert S.paired_permutation_test([1.0, 2, 3, 4], [0.0, 0, 0, 0]) == pytest.approx(0.125)
    assert S.paired_permutation_test([1.0, 2, 3], [1.0, 2, 3]) == 1.0
    rng = np.random.default_rng(0)
    b = rng.normal(size=400)
    assert S.paired_permutation_test(b + 0.3 + rng.normal(scale=0.5, size=400), b) < 0.01
    assert S.paired_permutation_test(b + rng.normal(scale=0.5, size=400), b, seed=1) > 0.01


def test_seed_tests_report_the_permutation_floor_honestly():
    st = S.paired_seed_tests([0.31, 0.32, 0.33], [0.30, 0.30, 0.30])
    assert st.p_permutation == pytest.approx(0.25)  # 2 / 2**3: never below, whatever the effect
    assert st.same_sign and st.n_seeds == 3
    assert st.p_t == pytest.approx(sps.ttest_rel([0.31, 0.32, 0.33], [0.30] * 3).pvalue)
    assert S.paired_seed_tests([0.5, 0.9], [0.1, 0.2]).p_permutation == pytest.approx(0.5)
    mixed = S.paired_seed_tests([0.31, 0.29, 0.33], [0.30, 0.30, 0.30])
    assert not mixed.same_sign and mixed.p_permutation > 0.25
    same = S.paired_seed_tests([0.3, 0.4], [0.3, 0.4])
    assert same.p_t == 1.0 and same.p_permutation == 1.0
    assert np.isnan(S.paired_seed_tests([0.3], [0.2]).p_t)


def test_holm_against_a_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    adj = S.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(S.holm([0.5, np.nan, 0.6]), [1.0, np.nan, 1.0])
    np.testing.assert_allclose(S.holm([0.02]), [0.02])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        S.holm([1.5])


# ---------------------------------------------------------------- power

def test_mde_normal_and_t_known_values():
    assert S.mde_normal(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    # for many seeds the t-test MDE approaches the z-test one
    assert S.mde_t(1.0, 400) == pytest.approx(S.mde_normal(1 / np.sqrt(400)), rel=0.01)
    assert S.mde_t(1.0, 3) > S.mde_t(1.0, 5) > S.mde_t(1.0, 10)
    assert S.mde_t(1.0, 1) == np.inf and S.mde_t(0.0, 3) == 0.0


def test_mde_t_has_80_percent_power_by_simulation():
    n, delta = 5, S.mde_t(1.0, 5)
    d = np.random.default_rng(0).normal(delta, 1.0, size=(40000, n))
    t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(n))
    power = np.mean(np.abs(t) > sps.t.ppf(0.975, n - 1))
    assert power == pytest.approx(0.80, abs=0.01)


def test_mde_shrinks_with_more_items():
    small = S.compare_models(correctness_table({"Connectome": 0, "NoConnectome": 0}, n_items=400), "correct")
    large = S.compare_models(correctness_table({"Connectome": 0, "NoConnectome": 0}, n_items=3200), "correct")
    ratio = small["mde"].iloc[0] / large["mde"].iloc[0]
    assert ratio == pytest.approx(np.sqrt(8), rel=0.2)


# ---------------------------------------------------------------- compare_models

def test_identical_models_are_indistinguishable():
    df = correctness_table({"Connectome": 0.0})
    twin = df.assign(label="NoConnectome")
    out = S.compare_models(pd.concat([df, twin]), "correct")
    (r,) = out.itertuples()
    assert r.effect == 0 and r.p_items == 1.0 and r.p_seeds_perm == 1.0 and r.ci_low <= 0 <= r.ci_high
    assert r.verdict == "indistinguishable" and "no difference larger than" in r.note


def test_a_planted_difference_is_detected_and_only_it():
    df = correctness_table({"Connectome": 0.06, "NoConnectome": 0.0, "RandomConnectome": 0.0})
    out = S.compare_models(df, "correct").set_index(["a", "b"])
    assert list(out.columns[:3]) == ["measure", "n_items", "n_seeds"]
    better = out.loc[("Connectome", "NoConnectome")]
    assert better.verdict == "better" and better.ci_low > 0 and better.p_items_holm < 0.05
    assert better.effect == pytest.approx(0.06, abs=0.02)
    assert out.loc[("Connectome", "RandomConnectome")].verdict == "better"
    null = out.loc[("NoConnectome", "RandomConnectome")]
    assert null.verdict == "indistinguishable"
    assert abs(null.effect) < null.mde  # the effect was smaller than what could be detected
    assert set(out["verdict"]) <= set(S.VERDICTS)
    # Holm over the three rows: adjusted >= raw, and equal to S.holm of the raw column
    np.testing.assert_allclose(out["p_items_holm"], S.holm(out["p_items"]))
    # a loss: lower is better, so the same sign reads "worse"
    loss = S.compare_models(df, "correct", higher_is_better=False).set_index(["a", "b"])
    assert loss.loc[("Connectome", "NoConnectome")].verdict == "worse"


def test_a_significant_items_test_with_disagreeing_seeds_is_not_a_verdict():
    df = correctness_table({"Connectome": 0.0, "NoConnectome": 0.0}, seeds=(0, 1, 2))
    boost = (df.label == "Connectome") & (df.seed.isin([0, 1]))
    rng = np.random.default_rng(9)
    df.loc[boost, "correct"] = np.maximum(df.loc[boost, "correct"], (rng.random(boost.sum()) < 0.2).astype(int))
    drop = (df.label == "Connectome") & (df.seed == 2)
    df.loc[drop, "correct"] = np.minimum(df.loc[drop, "correct"], (rng.random(drop.sum()) > 0.05).astype(int))
    (r,) = S.compare_models(df, "correct").itertuples()
    assert r.p_items_holm < 0.05 and not r.seeds_same_sign
    assert r.verdict == "indistinguishable" and "seeds disagree" in r.note


def test_continuous_measure_uses_the_permutation_test():
    rng = np.random.default_rng(0)
    base = rng.normal(size=500)
    frames = [pd.DataFrame(dict(label=lab, seed=s, item=np.arange(500),
                                loglik=base + shift + rng.normal(scale=0.3, size=500)))
              for lab, shift in (("Connectome", 0.1), ("NoConnectome", 0.0)) for s in (0, 1)]
    (r,) = S.compare_models(pd.concat(frames), "loglik").itertuples()
    assert r.p_items < 0.01 and r.verdict == "better" and r.p_seeds_perm == pytest.approx(0.5)


def test_correlation_comparison_on_the_same_items():
    df = correlation_table({"Connectome": 0.5, "NoConnectome": 0.5, "RandomConnectome": 0.3})
    out = S.compare_models(df, "surprisal", target="rt").set_index(["a", "b"])
    assert out.loc[("Connectome", "RandomConnectome")].verdict == "better"
    assert out.loc[("NoConnectome", "RandomConnectome")].verdict == "better"
    tie = out.loc[("Connectome", "NoConnectome")]
    assert tie.verdict == "indistinguishable" and tie.ci_low <= 0 <= tie.ci_high
    sub = df[df.label == "Connectome"]
    r0 = [sps.pearsonr(g.surprisal, g.rt)[0] for _, g in sub.groupby("seed")]
    assert tie.mean_a == pytest.approx(np.mean(r0))
    same = pd.concat([df[df.label == "Connectome"], df[df.label == "Connectome"].assign(label="NoConnectome")])
    (r,) = S.compare_models(same, "surprisal", target="rt").itertuples()
    assert r.p_items == 1.0 and r.effect == 0 and r.verdict == "indistinguishable"


def test_compare_models_is_reproducible_and_seeded():
    df = correlation_table({"Connectome": 0.5, "NoConnectome": 0.45}, n_items=800)
    a = S.compare_models(df, "surprisal", target="rt")
    pd.testing.assert_frame_equal(a, S.compare_models(df, "surprisal", target="rt"))
    other = S.compare_models(df, "surprisal", target="rt", config=S.StatsConfig(seed=1))
    assert other["ci_low"].iloc[0] != a["ci_low"].iloc[0]


def test_compare_models_bad_input():
    df = correctness_table({"Connectome": 0.0, "NoConnectome": 0.0}, n_items=50)
    with pytest.raises(ValueError, match="lacks column"):
        S.compare_models(df, "acc")
    with pytest.raises(ValueError, match="share no seed"):
        S.compare_models(df.assign(seed=np.where(df.label == "Connectome", df.seed, df.seed + 10)), "correct")
    with pytest.raises(ValueError, match="duplicate"):
        S.compare_models(pd.concat([df, df]), "correct")
    with pytest.raises(ValueError, match="target column"):
        bad = df.assign(rt=np.where(df.label == "Connectome", 1.0, 2.0) * df.item)
        S.compare_models(bad, "correct", target="rt")


def test_summarize_items_puts_item_ci_beside_seed_se():
    df = correctness_table({"Connectome": 0.0, "NoConnectome": -0.1}, n_items=1000)
    out = S.summarize_items(df, "correct").set_index("label")
    acc = df[df.label == "Connectome"].groupby("seed").correct.mean()
    c = out.loc["Connectome"]
    assert c["mean"] == pytest.approx(acc.mean()) and c.seed_se == pytest.approx(acc.std(ddof=1) / np.sqrt(3))
    assert c.ci_low < c["mean"] < c.ci_high and c.n_items == 1000
    assert out.loc["NoConnectome", "mean"] < c["mean"]
    corr = S.summarize_items(correlation_table({"Connectome": 0.5}, n_items=500), "surprisal", target="rt")
    assert 0.3 < corr["mean"].iloc[0] < 0.6 and corr.ci_low.iloc[0] < corr["mean"].iloc[0] < corr.ci_high.iloc[0]


# ---------------------------------------------------------------- mean ± SE over seeds

def test_seed_mean_se_one_row_per_group_in_order_of_appearance():
    df = pd.DataFrame({"label": ["B", "B", "A", "A", "A", "C"], "value": [1.0, 3.0, 2.0, 4.0, np.nan, 5.0]})
    out = S.seed_mean_se(df, ["label"])
    assert list(out.columns) == ["label", "mean", "se", "n_seeds"]
    assert list(out["label"]) == ["B", "A", "C"]
    b = out.set_index("label")
    assert b.loc["B", "mean"] == 2.0 and b.loc["B", "se"] == pytest.approx(np.std([1, 3], ddof=1) / np.sqrt(2))
    assert b.loc["A", "n_seeds"] == 2  # NaN is not a seed
    assert b.loc["C", "n_seeds"] == 1 and np.isnan(b.loc["C", "se"])  # one seed: no SE
    assert list(S.seed_mean_se(df, ["label"], sort=True)["label"]) == ["A", "B", "C"]
    with pytest.raises(ValueError, match="lacks"):
        S.seed_mean_se(df, ["label"], "val_loss")


def test_apply_holm_over_a_larger_family():
    df = correctness_table({"Connectome": 0.04, "NoConnectome": 0.0})
    one = S.compare_models(df, "correct")
    family = S.apply_holm(pd.concat([one, one.assign(measure="copy")], ignore_index=True))
    assert (family["p_items_holm"] >= one["p_items_holm"].iloc[0] - 1e-15).all()
    np.testing.assert_allclose(family["p_items_holm"], np.minimum(1, 2 * one["p_items"].iloc[0]))


def test_config_validation():
    with pytest.raises(ValueError, match="alpha"):
        S.StatsConfig(alpha=0)
    with pytest.raises(ValueError, match="n_resamples"):
        S.StatsConfig(n_resamples=0)


# ---------------------------------------------------------------- dependent items (clusters)
def test_cluster_sign_flip_is_exact_with_few_clusters():
    from connectome_lib.stats import cluster_sign_flip_p

    # 4 clusters, all differences positive: only the all-+ and all-- patterns are as extreme
    codes = np.repeat(np.arange(4), 5)
    assert cluster_sign_flip_p(np.ones(20), codes) == pytest.approx(2 / 16)
    # one cluster carries everything: flipping it alone reaches the observed sum half the time
    d = np.zeros(20)
    d[:5] = 1.0
    assert cluster_sign_flip_p(d, codes) == pytest.approx(1.0)


def test_clusters_widen_the_comparison_when_items_within_a_cluster_move_together():
    from connectome_lib.stats import StatsConfig, compare_models

    rng = np.random.default_rng(0)
    n_clusters, per = 10, 30
    shift = np.repeat(rng.normal(0, 0.5, n_clusters), per)  # a shared offset per cluster
    rows = []
    for seed in (0, 1):
        noise = rng.normal(0, 0.05, n_clusters * per)
        for label, x in (("A", 1.0 + shift + noise), ("B", 1.0 + noise)):
            rows += [{"label": label, "seed": seed, "item": i, "v": float(v)} for i, v in enumerate(x)]
    df = pd.DataFrame(rows)
    clusters = pd.Series(np.repeat(np.arange(n_clusters), per), index=np.arange(n_clusters * per))
    cfg = StatsConfig(n_resamples=2000)
    flat = compare_models(df, "v", models=["A", "B"], config=cfg).iloc[0]
    clustered = compare_models(df, "v", models=["A", "B"], config=cfg, clusters=clusters).iloc[0]
    assert flat["n_clusters"] == n_clusters * per and clustered["n_clusters"] == n_clusters
    assert clustered["effect"] == pytest.approx(flat["effect"])
    width = lambda r: r["ci_high"] - r["ci_low"]  # noqa: E731
    assert width(clustered) > 3 * width(flat)
    assert clustered["p_items"] > flat["p_items"]


def test_summarize_items_resamples_clusters():
    from connectome_lib.stats import StatsConfig, summarize_items

    rng = np.random.default_rng(1)
    x = np.repeat(rng.normal(0, 1, 8), 25) + rng.normal(0, 0.1, 200)
    df = pd.DataFrame({"label": "A", "seed": 0, "item": np.arange(200), "v": x})
    cfg = StatsConfig(n_resamples=2000)
    flat = summarize_items(df, "v", config=cfg).iloc[0]
    clustered = summarize_items(df, "v", config=cfg, clusters=dict(zip(range(200), np.repeat(range(8), 25)))).iloc[0]
    assert clustered["n_clusters"] == 8 and flat["n_clusters"] == 200
    assert clustered["ci_high"] - clustered["ci_low"] > 3 * (flat["ci_high"] - flat["ci_low"])
