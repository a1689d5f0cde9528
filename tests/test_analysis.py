"""Analyses on small synthetic connectomes and hand-written run folders (hand-checkable cases)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from connectome_lib import analysis, layout
from connectome_lib.connectome import Connectome
from connectome_lib.pruning import full_masks, magnitude_prune, prunable_parameters
from connectome_lib.training import save_model


def random_connectome(model, density: float, seed: int) -> Connectome:
    """A connectome of ``model`` with uniformly random masks of ``density`` in every tensor."""
    dense = Connectome.from_model(model, full_masks(prunable_parameters(model)))
    g = torch.Generator().manual_seed(seed)
    masks = {n: torch.rand(m.shape, generator=g) < density for n, m in dense.masks.items()}
    return Connectome.from_model(model, masks)


# ------------------------------------------------------------------------ data efficiency
def write_curve(root, init, seed, tokens, losses):
    d = layout.develop_dir(root, init, seed)
    d.mkdir(parents=True)
    pd.DataFrame({"iteration": np.arange(len(tokens)) * 10, "tokens": tokens, "train_loss": np.nan,
                  "val_loss": losses, "lr_factor": 1.0, "seconds": 0.0}).to_csv(d / "curve.csv", index=False)


def test_learning_curves_per_seed_rows_of_every_found_seed(tmp_path):
    write_curve(tmp_path, "connectome", 0, [0, 100, 200], [10.0, 6.0, 5.0])
    write_curve(tmp_path, "dense", 0, [0, 100, 200], [11.0, 7.0, 4.0])
    write_curve(tmp_path, "dense", 1, [0, 100, 200], [11.0, 7.0, 6.0])
    curves = analysis.learning_curves(tmp_path, ["dense"], [0, 1])
    assert list(curves.columns) == ["init", "label", "seed", "iteration", "tokens", "val_loss"]
    assert len(curves) == 6 and set(curves["seed"]) == {0, 1} and set(curves["label"]) == {"NoConnectome"}
    # by default every seed folder found, of the inits that have any
    found = analysis.learning_curves(tmp_path)
    assert len(found) == 9 and set(found["label"]) == {"Connectome", "NoConnectome"}
    with pytest.raises(FileNotFoundError, match="no learning curves"):
        analysis.learning_curves(tmp_path / "empty")


def test_learning_curves_missing_curve_names_the_file(tmp_path):
    write_curve(tmp_path, "connectome", 0, [0, 100], [10.0, 6.0])
    with pytest.raises(FileNotFoundError, match=r"random_s0[/\\]curve.csv"):
        analysis.learning_curves(tmp_path, inits=["connectome", "random"], seeds=[0])


# -------------------------------------------------------------- row density vs frequency
def test_row_density_vs_frequency_on_a_planted_mask(tiny_model):
    vocab = tiny_model.config.vocab_size
    full = Connectome.from_model(tiny_model, full_masks(prunable_parameters(tiny_model)))
    masks = {n: m.clone() for n, m in full.masks.items()}
    masks["lm_head.weight"][:10] = False          # the 10 most frequent tokens lose their head rows
    masks["lm_head.weight"][10:20, :8] = False    # the next 10 keep half (16 columns)
    planted = Connectome.from_model(tiny_model, masks)
    control = planted.random_control(0)
    inner = np.zeros(vocab, dtype=np.int64)
    inner[:10] = 100
    inner[10:20] = 10
    inner[20:] = 1
    outer = inner * 3
    res = analysis.row_density_vs_frequency(planted, control, outer, inner)
    rows = res.rows.set_index(["tensor", "connectome", "token"])
    assert rows.loc[("lm_head", "Connectome", 3), "row_density"] == 0.0
    assert rows.loc[("lm_head", "Connectome", 15), "row_density"] == 0.5
    assert rows.loc[("lm_head", "Connectome", 50), "row_density"] == 1.0
    assert (res.rows.query("tensor == 'wte' and connectome == 'Connectome'")["row_density"] == 1.0).all()
    total = inner.sum()
    s = res.summary.set_index(["tensor", "connectome"])
    head = s.loc[("lm_head", "Connectome")]
    assert head["inner_share_on_empty_rows"] == pytest.approx(1000 / total)
    assert head["weighted_density_inner"] == pytest.approx((100 * 0.5 + (vocab - 20) * 1.0) / total)
    assert head["weighted_density_outer"] == pytest.approx(head["weighted_density_inner"])  # outer = 3 x inner
    assert head["empty_rows"] == 10
    assert head["spearman_log_freq_inner"] < -0.8   # frequent tokens pruned: density falls with frequency
    assert head["top_tokens_on_empty_rows"].split() == [str(i) for i in range(10)]
    assert math.isnan(s.loc[("wte", "Connectome"), "spearman_log_freq_inner"])  # constant density
    # the random control has the same density, spread over rows: no empty row, no frequency trend
    rc = s.loc[("lm_head", "RandomConnectome")]
    assert rc["density"] == pytest.approx(head["density"])
    assert rc["empty_rows"] == 0 and rc["inner_share_on_empty_rows"] == 0.0
    assert abs(rc["spearman_log_freq_inner"]) < 0.4


def test_row_density_rejects_counts_of_another_vocabulary(tiny_model):
    c = random_connectome(tiny_model, 0.5, 0)
    with pytest.raises(ValueError, match="token_counts_outer has 50 entries"):
        analysis.row_density_vs_frequency(c, c.random_control(0), np.ones(50), np.ones(97))


# ----------------------------------------------------------------------- survivor overlap
def test_survivor_share_is_chance_for_independent_masks_and_one_for_identical(tiny_model):
    a = random_connectome(tiny_model, 0.6, 10)
    b = random_connectome(tiny_model, 0.4, 11)
    t = analysis.survivor_share(a, b).set_index("kind")
    for kind, row in t.iterrows():
        assert row["chance"] == pytest.approx(0.6, abs=0.06)
        tol = analysis.binomial_tolerance(row["chance"], int(row["later_kept"]))
        assert abs(row["share"] - row["chance"]) < tol, kind
    assert set(t.index) == {"c_attn", "attn.c_proj", "c_fc", "mlp.c_proj", "wte", "lm_head", "all"}
    assert t.loc["all", "later_kept"] == sum(int(m.sum()) for m in b.masks.values())
    same = analysis.survivor_share(b, b)
    assert (same["share"] == 1.0).all()


def test_jaccard_vs_chance_for_a_random_control_and_identical_masks(tiny_model):
    c = random_connectome(tiny_model, 0.5, 3)
    j = analysis.jaccard_vs_chance(c, c.random_control(4)).set_index("kind")
    d = c.density()
    assert j.loc["all", "chance"] == pytest.approx(d * d / (2 * d - d * d), rel=1e-9)
    # intersection ~ Binomial over the union: tolerance from its SD
    tol = analysis.binomial_tolerance(j.loc["all", "chance"], int(j.loc["all", "union"]))
    assert abs(j.loc["all", "jaccard"] - j.loc["all", "chance"]) < tol
    assert abs(j.loc["all", "sign_agreement"] - 0.5) < analysis.binomial_tolerance(
        0.5, int(j.loc["all", "intersection"])
    )
    same = analysis.jaccard_vs_chance(c, c)
    assert (same["jaccard"] == 1.0).all() and (same["sign_agreement"] == 1.0).all()


def test_sign_agreement_counts_equal_signs_of_shared_survivors(tiny_model):
    c = random_connectome(tiny_model, 0.5, 5)
    flipped = Connectome({n: m.clone() for n, m in c.masks.items()},
                         {n: (-s if n == "lm_head.weight" else s.clone()) for n, s in c.signs.items()})
    t = analysis.sign_agreement(c, flipped).set_index("kind")
    assert t.loc["lm_head", "agreement"] == 0.0 and t.loc["wte", "agreement"] == 1.0
    kept_head = int(c.masks["lm_head.weight"].sum())
    assert t.loc["all", "agreement"] == pytest.approx(1 - kept_head / t.loc["all", "shared"])
    rnd = analysis.sign_agreement(c, c.random_control(6)).set_index("kind")
    assert abs(rnd.loc["all", "agreement"] - 0.5) < 4 * rnd.loc["all", "chance_sd"]


def test_first_ranking_overlap_is_one_for_one_shot_pruning_and_chance_for_random(tiny_model):
    w = {n: p.detach().clone() for n, p in tiny_model.named_parameters() if p.ndim == 2}
    first = Connectome.from_model(tiny_model, magnitude_prune(w, full_masks(w), 0.2, 1))
    one_shot = Connectome.from_model(tiny_model, magnitude_prune(w, full_masks(w), 0.2, 3))
    t = analysis.first_ranking_overlap(w, first, one_shot)
    assert (t["share"] == 1.0).all()
    assert t.set_index("kind").loc["all", "chance"] == pytest.approx(0.8 ** 2, abs=0.01)
    # a random subset of the first mask with the same count: share ~ chance k / k_first
    g = torch.Generator().manual_seed(0)
    masks = {}
    for n, m in first.masks.items():
        idx = torch.nonzero(m.reshape(-1)).reshape(-1)
        keep = idx[torch.randperm(idx.numel(), generator=g)[: int(one_shot.masks[n].sum())]]
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        flat[keep] = True
        masks[n] = flat.view(m.shape)
    r = analysis.first_ranking_overlap(w, first, Connectome.from_model(tiny_model, masks)).set_index("kind").loc["all"]
    assert abs(r["share"] - r["chance"]) < analysis.binomial_tolerance(r["chance"], int(r["later_kept"]))


def synthetic_run(root, model, generations=3, fraction=0.2):
    """An evolve folder with nested generation connectomes pruned from ``model``'s weights
    (perturbed a little each generation) and generation 0's model saved."""
    w = {n: p.detach().clone() for n, p in model.named_parameters() if p.ndim == 2}
    masks = full_masks(w)
    g = torch.Generator().manual_seed(0)
    for gen in range(generations):
        if gen:
            w = {n: t + 0.01 * torch.randn(t.shape, generator=g) for n, t in w.items()}
        masks = magnitude_prune(w, masks, fraction, gen + 1)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in w:
                    p.copy_(w[n])
        c = Connectome.from_model(model, masks, meta={"kind": "connectome", "generation": gen, "rounds": gen + 1,
                                                       "prune_fraction": fraction})
        gdir = layout.generation_dir(root, gen)
        c.save(gdir / "connectome.cmask")
        if gen == 0:
            save_model(model, gdir / "model")
    return c


def test_density_by_layer_and_kind_over_generations(tmp_path, tiny_model):
    synthetic_run(tmp_path, tiny_model)
    assert analysis.available_generations(tmp_path) == [0, 1, 2]
    d = analysis.density_by_layer_and_kind(tmp_path)
    assert set(d["generation"]) == {0, 1, 2}
    assert set(d["kind"]) == {"c_attn", "attn.c_proj", "c_fc", "mlp.c_proj", "wte", "lm_head"}
    assert set(d["layer"]) == {"embedding", "block_00", "block_01", "head"}
    assert len(d) == 3 * 10
    # per-tensor pruning: every tensor at (1 - f) ** rounds to within one element
    assert ((d["kept"] - d["numel"] * d["uniform_density"]).abs() <= 1).all()
    assert d.loc[d["generation"] == 2, "uniform_density"].iloc[0] == pytest.approx(0.8 ** 3)
    assert d["relative_density"].between(0.99, 1.01).all()
    with pytest.raises(FileNotFoundError, match="run `connectome evolve` first"):
        analysis.density_by_layer_and_kind(tmp_path / "nothing")


def test_survivor_overlap_on_a_synthetic_run(tmp_path, tiny_model):
    final = synthetic_run(tmp_path, tiny_model)
    t = analysis.survivor_overlap(tmp_path)
    assert set(t["comparison"]) == {"nested", "sign_consecutive", "sign_vs_final", "first_ranking",
                                    "jaccard_random_control"}
    nested = t[t["comparison"] == "nested"]
    assert set(nested["generation"]) == {1, 2} and (nested["observed"] == 1.0).all()
    assert (nested["z"] > 0).all()
    fr = t[t["comparison"] == "first_ranking"].set_index(["generation", "kind"])
    assert fr.loc[(0, "all"), "observed"] == 1.0   # generation 0's mask is its own top-|w|
    # the small perturbation keeps the ranking mostly: far above chance k_g / k_0
    assert fr.loc[(2, "all"), "observed"] > fr.loc[(2, "all"), "chance"] + 0.1
    # a perturbation of SD 0.01 flips only the signs of small survivors: far above chance 0.5
    sc = t[(t["comparison"] == "sign_consecutive") & (t["kind"] == "all")]
    assert (sc["chance"] == 0.5).all()
    assert (sc["observed"] > 0.5 + 4 * sc["chance_sd"]).all() and (sc["observed"] < 1.0).all()
    jr = t[t["comparison"] == "jaccard_random_control"].set_index("kind").loc["all"]
    d = final.density()
    assert jr["chance"] == pytest.approx(d * d / (2 * d - d * d))
    assert abs(jr["observed"] - jr["chance"]) < analysis.binomial_tolerance(jr["chance"], int(jr["n"]))


# ------------------------------------------------------------------------------ stage tables
TENSOR = "transformer.h.0.mlp.c_fc.weight"


def _conn(mask: np.ndarray, signs: np.ndarray) -> Connectome:
    return Connectome({TENSOR: torch.tensor(mask, dtype=torch.bool)}, {TENSOR: torch.tensor(signs, dtype=torch.int8)})


def _generations():
    """Three nested generations of a 2x5 tensor: 10 -> 8 -> 4 kept; one survivor's sign flips
    between gen 0 and 1 (1 of 8 shared), none between gen 1 and 2."""
    m0 = np.ones((2, 5), bool)
    s0 = np.ones((2, 5), np.int8)
    m1 = m0.copy()
    m1[0, :2] = False
    s1 = s0.copy()
    s1[1, 4] = -1
    m2 = m1.copy()
    m2[1, :4] = False
    return [_conn(m0, s0), _conn(m1, s1 * m1), _conn(m2, s1 * m2)]


def test_sign_flips_counts_kept_share_and_flipped_signs():
    t = analysis.sign_flips(_generations())
    assert list(t["generation"]) == [1, 2]
    assert t["kept_of_previous"].tolist() == pytest.approx([0.8, 0.5])
    assert t["sign_flips"].tolist() == pytest.approx([1 / 8, 0.0])


def test_sign_flips_pools_survivors_over_tensors_as_the_analysis_does():
    """A big tensor with no flip and a small one whose only survivor flips: pooled over the 11
    survivors 1/11 flip (a mean over the two tensors would say 0.5), the same number as the
    ``all`` row of analysis.sign_agreement shows on the analyses page."""
    big, small = "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.attn.c_proj.weight"
    m_big, m_small = torch.ones(2, 5, dtype=torch.bool), torch.tensor([[True, False]])
    s_big = torch.ones(2, 5, dtype=torch.int8)
    before = Connectome({big: m_big, small: m_small}, {big: s_big, small: torch.tensor([[1, 0]], dtype=torch.int8)})
    after = Connectome({big: m_big, small: m_small}, {big: s_big, small: torch.tensor([[-1, 0]], dtype=torch.int8)})
    flips = analysis.sign_flips([before, after])["sign_flips"].item()
    assert flips == pytest.approx(1 / 11)
    pooled = analysis.sign_agreement(before, after).set_index("kind").loc["all", "agreement"]
    assert flips == pytest.approx(1 - pooled)


def test_sign_flips_takes_a_mapping_and_needs_two_generations():
    gens = dict(zip([3, 4, 5], _generations()))
    assert list(analysis.sign_flips(gens)["generation"]) == [4, 5]
    with pytest.raises(ValueError, match="two generations"):
        analysis.sign_flips(_generations()[:1])


def test_connectome_overview_density_and_positive_share():
    mask = np.array([[1, 1, 0, 0]], bool)
    c = Connectome({TENSOR: torch.tensor(mask)}, {TENSOR: torch.tensor([[1, -1, 0, 0]], dtype=torch.int8)})
    t = analysis.connectome_overview({"Connectome": c})
    assert t.loc["overall density", "Connectome"] == pytest.approx(0.5)
    assert t.loc["mean share of positive signs", "Connectome"] == pytest.approx(0.5)


def test_density_by_kind_sums_counts_per_kind_and_generation():
    d = pd.DataFrame({"generation": [0, 0, 1, 1], "kind": ["c_fc", "c_fc", "c_fc", "wte"],
                      "numel": [10, 30, 40, 10], "kept": [8, 24, 16, 5]})
    t = analysis.density_by_kind(d)
    assert t.loc["c_fc", "after gen 0"] == pytest.approx(0.8)
    assert t.loc["c_fc", "after gen 1"] == pytest.approx(0.4)
    assert t.loc["wte", "after gen 1"] == pytest.approx(0.5)
    assert np.isnan(t.loc["wte", "after gen 0"])
    with pytest.raises(ValueError, match="kind"):
        analysis.density_by_kind(d.drop(columns="kind"))
