"""The connectome object: building, random control, overlap, init, compact and safe I/O."""

import pytest
import torch

from connectome_lib.connectome import Connectome, ConnectomeError
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
