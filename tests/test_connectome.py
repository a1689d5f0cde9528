"""The connectome object: building, random control, overlap, init, compact and safe I/O."""

import pytest
import torch

from connectome_lib.connectome import Connectome, ConnectomeError, survivor_overlap
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM
from connectome_lib.pruning import full_masks, magnitude_prune, prunable_parameters


def _connectome(model, rounds=2):
    params = prunable_parameters(model)
    weights = {n: p.detach() for n, p in params.items()}
    masks = full_masks(params)
    for r in range(1, rounds + 1):
        masks = magnitude_prune(weights, masks, 0.2, r)
    return Connectome.from_model(model, masks, meta={"kind": "connectome"})


def test_save_load_bit_exact(tiny_model, tmp_path):
    c = _connectome(tiny_model)
    path = c.save(tmp_path / "c.cmask")
    d = Connectome.load(path)
    assert d == c
    assert d.model_config == c.model_config and d.meta == c.meta
    for n in c.masks:
        assert torch.equal(d.masks[n], c.masks[n]) and torch.equal(d.signs[n], c.signs[n])


def test_corrupt_file_is_detected(tiny_model, tmp_path):
    path = _connectome(tiny_model).save(tmp_path / "c.cmask")
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits in the payload
    bad = tmp_path / "bad.cmask"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ConnectomeError, match="corrupt"):
        Connectome.load(bad)
    (tmp_path / "junk.cmask").write_bytes(b"not a connectome at all")
    with pytest.raises(ConnectomeError, match="not a readable connectome"):
        Connectome.load(tmp_path / "junk.cmask")
    with pytest.raises(FileNotFoundError, match="evolve"):
        Connectome.load(tmp_path / "missing.cmask")


def test_wrong_model_is_rejected(tiny_model):
    c = _connectome(tiny_model)
    other = ConnectomeGPTForCausalLM(ConnectomeGPTConfig(vocab_size=97, n_layer=2, n_head=2, n_embd=32, block_size=16))
    with pytest.raises(ConnectomeError, match="shape"):
        c.init_model(other)
    longer_ctx = ConnectomeGPTForCausalLM(
        ConnectomeGPTConfig(vocab_size=97, n_layer=2, n_head=2, n_embd=16, block_size=32)
    )
    with pytest.raises(ConnectomeError, match="another model config"):
        c.init_model(longer_ctx)


def test_init_model_sign_times_value_else_zero(tiny_model, tiny_config):
    c = _connectome(tiny_model)
    fresh = ConnectomeGPTForCausalLM(tiny_config)
    c.init_model(fresh, 0.02)
    params = dict(fresh.named_parameters())
    trained = dict(tiny_model.named_parameters())
    for n, m in c.masks.items():
        w = params[n].detach()
        assert torch.all(w[~m] == 0)
        assert torch.all(w[m].abs() == torch.tensor(0.02))
        # survivors keep the sign of the weights they were taken from
        assert torch.equal(torch.sign(w[m]), torch.sign(trained[n].detach()[m]))


def test_random_control_matches_density_exactly_and_is_seeded(tiny_model):
    c = _connectome(tiny_model, rounds=3)
    r = c.random_control(seed=5)
    for n in c.masks:
        assert int(r.masks[n].sum()) == int(c.masks[n].sum())
        assert torch.all((r.signs[n] == 0) | r.masks[n])  # no sign off the mask
        assert torch.all(r.signs[n][r.masks[n]] != 0)  # random signs are +-1, never 0
    assert r == c.random_control(seed=5)
    assert r != c.random_control(seed=6)
    assert r != c
    # random signs: about half positive
    pos = sum(int((r.signs[n] > 0).sum()) for n in r.masks) / sum(int(r.masks[n].sum()) for n in r.masks)
    assert 0.45 < pos < 0.55


def test_density_reports_and_jaccard(tiny_model):
    c = _connectome(tiny_model, rounds=1)
    t = c.density_table()
    assert set(t.columns) >= {"tensor", "layer", "kind", "numel", "kept", "density", "positive_fraction"}
    assert c.density() == pytest.approx(0.8, abs=1e-3)
    layers = c.density_by_layer()
    assert set(layers["layer"]) == {"embedding", "block_00", "block_01", "head"}
    assert c.overall_jaccard(c) == 1.0
    j = c.jaccard(c.random_control(0))
    # two random masks of density d overlap with Jaccard about d / (2 - d)
    assert c.overall_jaccard(c.random_control(0)) == pytest.approx(0.8 / 1.2, abs=0.05)
    assert (j["sign_agreement"] < 0.7).all()


def test_paper_size_connectome_is_small_on_disk(tmp_path):
    """162M parameters at 26 % density: well under 50 MB (the official fp32 checkpoint is ~650 MB)."""
    with torch.device("meta"):
        model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig())
    g = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(p.shape, generator=g) < 0.8 ** 6 for n, p in model.named_parameters()}
    signs = {n: torch.rand(p.shape, generator=g) < 0.5 for n, p in model.named_parameters()}
    c = Connectome(masks, signs, model.config.to_dict())
    path = c.save(tmp_path / "paper.cmask")
    size_mb = path.stat().st_size / 1e6
    assert size_mb < 50
    assert Connectome.load(path) == c



def _uneven_connectome(seed: int = 0) -> Connectome:
    """A connectome whose token rows differ in density (as the embedding's rows do after
    pruning), a uniform block matrix, an odd-shaped one, a full and an empty matrix and a 1-D
    tensor."""
    g = torch.Generator().manual_seed(seed)
    masks = {"lm_head.weight": torch.rand(301, 40, generator=g) < torch.linspace(0.02, 0.7, 301)[:, None],
             "transformer.h.0.mlp.c_fc.weight": torch.rand(96, 32, generator=g) < 0.26,
             "transformer.h.0.mlp.c_proj.weight": torch.rand(7, 53, generator=g) < 0.4,
             "transformer.h.0.attn.c_proj.weight": torch.ones(8, 8, dtype=torch.bool),
             "transformer.h.0.attn.c_attn.weight": torch.zeros(24, 8, dtype=torch.bool),
             "transformer.h.0.ln_1.weight": torch.rand(33, generator=g) < 0.5}
    signs = {n: torch.where(torch.rand(m.shape, generator=g) < 0.5, 1, -1).to(torch.int8) for n, m in masks.items()}
    return Connectome(masks, signs, {}, {"kind": "connectome"})


def _assert_row_matched(c: Connectome, r: Connectome) -> None:
    assert set(r.masks) == set(c.masks)
    for n, m in c.masks.items():
        rm = r.masks[n]
        assert rm.shape == m.shape and rm.dtype == torch.bool
        if m.ndim == 2:  # every row count and every column count, exactly
            assert torch.equal(rm.sum(1), m.sum(1)), n
            assert torch.equal(rm.sum(0), m.sum(0)), n
        assert int(rm.sum()) == int(m.sum()), n
        assert torch.all(r.signs[n][rm].abs() == 1)  # random signs are +-1 on the mask ...
        assert not r.signs[n][~rm].any()  # ... and 0 off it
    assert r.density() == c.density()


def test_row_matched_control_keeps_every_row_and_column_count_and_is_seeded():
    c = _uneven_connectome()
    r = c.row_matched_control(3)
    _assert_row_matched(c, r)
    assert r.meta == {"kind": "row_matched_control", "seed": 3, "rounds": 12, "matched_to": "connectome"}
    assert r == c.row_matched_control(3)  # reproducible
    other = c.row_matched_control(4)
    assert r != other and r != c
    for n in ("lm_head.weight", "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.ln_1.weight"):
        assert not torch.equal(r.masks[n], other.masks[n])  # positions differ across seeds
    # the only matrices with those margins: full and empty ones stay as they are
    assert r.masks["transformer.h.0.attn.c_proj.weight"].all()
    assert not r.masks["transformer.h.0.attn.c_attn.weight"].any()
    pos = sum(int((r.signs[n] > 0).sum()) for n in r.masks) / sum(int(r.masks[n].sum()) for n in r.masks)
    assert 0.45 < pos < 0.55


def test_row_matched_control_moves_the_survivors_to_chance():
    c = _uneven_connectome()
    t = survivor_overlap(c, c.row_matched_control(0)).set_index("tensor")
    # a 26 % dense matrix with even rows keeps only about a quarter of its survivors in place ...
    row = t.loc["transformer.h.0.mlp.c_fc.weight"]
    assert row["observed"] < 0.4
    assert abs(row["observed"] - row["expected_margins"]) < 4 * row["chance_sd"]
    # ... and the token matrix about what its row densities alone give, well above its density
    row = t.loc["lm_head.weight"]
    assert row["expected_margins"] > row["expected"] + 0.05
    assert abs(row["observed"] - row["expected_margins"]) < 4 * row["chance_sd"]
    assert abs(t.loc["transformer.h.0.ln_1.weight", "observed"] - 0.5) < 0.35

    # structure is destroyed too: two full 32 x 32 diagonal blocks (rows and columns all 32 of
    # 64) become a matrix whose survivors sit half in the blocks, half off them (binomial SD of
    # the share over 2048 survivors: 0.011)
    block = torch.zeros(64, 64, dtype=torch.bool)
    block[:32, :32] = block[32:, 32:] = True
    d = Connectome({"w": block}, {"w": block.to(torch.int8)})
    r = d.row_matched_control(1)
    _assert_row_matched(d, r)
    assert abs(float((r.masks["w"] & block).sum()) / 2048 - 0.5) < 0.05


def test_row_matched_control_of_a_pruned_model_inits_a_model_and_round_trips(tiny_model, tiny_config, tmp_path):
    c = _connectome(tiny_model, rounds=6)  # density 0.8^6 = 0.26, as in the paper
    r = c.row_matched_control(seed=2)
    _assert_row_matched(c, r)
    assert survivor_overlap(c, r).set_index("tensor").loc["all", "observed"] < 0.5
    fresh = r.init_model(ConnectomeGPTForCausalLM(tiny_config), 0.02)
    params = dict(fresh.named_parameters())
    for n, m in r.masks.items():
        w = params[n].detach()
        assert torch.all(w[~m] == 0) and torch.all(w[m].abs() == torch.tensor(0.02))
    d = Connectome.load(r.save(tmp_path / "rm.cmask"))
    assert d == r and d.meta == r.meta and d.model_config == c.model_config


def test_survivor_overlap_is_one_with_itself_and_chance_with_a_random_control(tiny_model):
    c = _uneven_connectome()
    t = survivor_overlap(c, c).set_index("tensor")
    assert list(t.index[-1:]) == ["all"]
    nonempty = t[t["kept_a"] > 0]
    assert (nonempty["observed"] == 1).all()
    assert (nonempty["shared"] == nonempty["kept_a"]).all()
    for n, m in c.masks.items():
        assert t.loc[n, "expected"] == pytest.approx(float(m.float().mean()))  # expected = b's density

    for conn in (c, _connectome(tiny_model, rounds=3)):
        t = survivor_overlap(conn, conn.random_control(0)).set_index("tensor")
        for n, m in conn.masks.items():
            d, k = float(m.float().mean()), int(m.sum())
            assert t.loc[n, "expected"] == pytest.approx(d)
            if 0 < d < 1:
                # the chance SD is the hypergeometric one, at most the binomial sqrt(d (1-d) / k);
                # a random control is within 4 of them (p ~ 6e-5 per tensor)
                assert 0 < t.loc[n, "chance_sd"] <= (d * (1 - d) / k) ** 0.5
                assert abs(t.loc[n, "observed"] - d) < 4 * t.loc[n, "chance_sd"]
                assert t.loc[n, "ratio"] == pytest.approx(t.loc[n, "observed"] / d)
        all_ = t.loc["all"]
        rows = t.drop(index="all")
        assert all_["kept_a"] == rows["kept_a"].sum() and all_["shared"] == rows["shared"].sum()
        assert all_["expected"] == pytest.approx((rows["kept_a"] * rows["expected"]).sum() / rows["kept_a"].sum())
        assert abs(all_["observed"] - all_["expected"]) < 4 * all_["chance_sd"]
    with pytest.raises(ConnectomeError, match="different tensors"):
        survivor_overlap(c, _connectome(tiny_model))
