"""Magnitude pruning of the remaining weights: densities, scopes, determinism, signs."""

import pytest
import torch

from connectome_lib.pruning import full_masks, magnitude_prune, prunable_parameters


def test_default_covers_every_2d_weight_including_embeddings_and_head(tiny_model):
    names = set(prunable_parameters(tiny_model))
    assert names == {n for n, p in tiny_model.named_parameters() if p.ndim == 2}
    assert "transformer.wte.weight" in names and "lm_head.weight" in names
    blocks_only = prunable_parameters(tiny_model, exclude=r"^(transformer\.wte|lm_head)\.")
    assert "lm_head.weight" not in blocks_only and len(blocks_only) == len(names) - 2
    with pytest.raises(ValueError, match="no 2-D parameters"):
        prunable_parameters(tiny_model, include="nothing-matches")


@pytest.mark.parametrize("generations", [1, 3, 6])
def test_per_tensor_density_after_g_rounds(tiny_model, generations):
    params = prunable_parameters(tiny_model)
    masks = full_masks(params)
    g = torch.Generator().manual_seed(0)
    for r in range(1, generations + 1):
        # new random weights each round, as after a round of training
        weights = {n: torch.randn(p.shape, generator=g) for n, p in params.items()}
        new = magnitude_prune(weights, masks, 0.2, r)
        assert all(torch.all(new[n] <= masks[n]) for n in masks)  # pruned stays pruned
        masks = new
    for n, m in masks.items():
        assert abs(int(m.sum()) - m.numel() * 0.8**generations) <= 1, n


def test_prunes_the_smallest_remaining_magnitudes():
    w = {"a": torch.tensor([[0.5, -0.1, 0.3, -0.9, 0.05]])}
    m1 = magnitude_prune(w, {"a": torch.ones(1, 5, dtype=torch.bool)}, 0.2, 1)
    assert m1["a"].tolist() == [[True, True, True, True, False]]
    m2 = magnitude_prune(w, m1, 0.2, 2)  # keep round(5 * 0.64) = 3
    assert m2["a"].tolist() == [[True, False, True, True, False]]
    # an already-pruned weight never comes back even if it is large
    w2 = {"a": torch.tensor([[0.5, -0.1, 0.3, -0.9, 100.0]])}
    assert magnitude_prune(w2, m1, 0.2, 2)["a"].tolist() == [[True, False, True, True, False]]


def test_ties_are_deterministic():
    w = {"a": torch.ones(4, 4)}
    m = full_masks(w)
    assert torch.equal(magnitude_prune(w, m, 0.2, 1)["a"], magnitude_prune(w, m, 0.2, 1)["a"])


def test_global_scope_keeps_overall_fraction():
    g = torch.Generator().manual_seed(0)
    w = {"big": torch.randn(50, 50, generator=g) * 10, "small": torch.randn(20, 20, generator=g)}
    m = magnitude_prune(w, full_masks(w), 0.2, 1, scope="global")
    total = sum(x.numel() for x in w.values())
    assert abs(sum(int(x.sum()) for x in m.values()) - 0.8 * total) <= 1
    assert m["small"].float().mean() < m["big"].float().mean()  # global: small-magnitude tensor loses more
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(w, full_masks(w), 0.2, 1, scope="layer")


def _official_reference(param: torch.Tensor, mask: torch.Tensor, pct: float = 0.2) -> torch.Tensor:
    """The per-tensor branch of the official ``prune_bottom_pct_of_weights`` (train_itp.py)."""
    mask = mask.clone().float()
    unpruned_vals = param.abs()[mask.bool() > 0]
    prune_count = int(pct * unpruned_vals.numel())
    if prune_count >= 1:
        threshold = torch.topk(unpruned_vals, prune_count, largest=False).values[-1]
        mask[(param.abs() < threshold) & (mask.bool() > 0)] = 0.0
    return mask.bool()


def test_official_rule_matches_the_official_code_over_rounds(tiny_model):
    params = prunable_parameters(tiny_model)
    masks = full_masks(params)
    g = torch.Generator().manual_seed(1)
    for r in range(1, 4):
        weights = {n: torch.randn(p.shape, generator=g) for n, p in params.items()}
        new = magnitude_prune(weights, masks, 0.2, r, ties="official")
        for n in params:
            assert torch.equal(new[n], _official_reference(weights[n], masks[n])), (r, n)
        masks = new


def test_official_rule_never_prunes_tied_values():
    # a row that never received a gradient is exactly +-0.02: tied values at the threshold survive
    w = {"a": torch.tensor([[0.02, -0.02, 0.02, -0.02, 0.02, 0.5, 0.6, 0.7, 0.8, 0.9]])}
    m = magnitude_prune(w, full_masks(w), 0.2, 1, ties="official")
    assert m["a"].all()  # k = 2, threshold 0.02, nothing strictly below it
    r = magnitude_prune(w, full_masks(w), 0.2, 1, ties="random", seed=0)
    assert int(r["a"].sum()) == 8 and r["a"][0, 5:].all()  # exactly 20 % go, all among the ties


def test_random_ties_are_seeded_not_positional():
    w = {"a": torch.ones(1, 100)}
    m0 = magnitude_prune(w, full_masks(w), 0.2, 1, ties="random", seed=0)["a"]
    assert torch.equal(m0, magnitude_prune(w, full_masks(w), 0.2, 1, ties="random", seed=0)["a"])
    m1 = magnitude_prune(w, full_masks(w), 0.2, 1, ties="random", seed=1)["a"]
    assert int(m0.sum()) == int(m1.sum()) == 80 and not torch.equal(m0, m1)
    pruned = torch.nonzero(~m0[0]).flatten()
    assert not torch.equal(pruned, torch.arange(80, 100))  # not the last (or first) 20 positions
    assert not torch.equal(pruned, torch.arange(0, 20))
