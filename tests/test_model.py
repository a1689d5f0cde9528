"""The paper's GPT: size, architecture details, transformers integration."""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

import connectome_lib  # noqa: F401  (registers the Auto classes)
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM, count_parameters, rmsnorm


def test_paper_size_parameter_count():
    with torch.device("meta"):
        model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig())
    n = count_parameters(model)
    assert abs(n - 162.2e6) < 0.1e6
    blocks = sum(p.numel() for name, p in model.named_parameters() if ".h." in name)
    assert abs(blocks - 84.9e6) < 0.1e6
    assert model.lm_head.weight is not model.transformer.wte.weight


def test_no_biases_no_norm_weights_untied(tiny_model):
    names = [n for n, _ in tiny_model.named_parameters()]
    assert all(n.endswith(".weight") for n in names)
    assert not any("norm" in n or "ln" in n for n in names)
    assert tiny_model.lm_head.weight.data_ptr() != tiny_model.transformer.wte.weight.data_ptr()


def test_init_scales():
    torch.manual_seed(0)
    cfg = ConnectomeGPTConfig(vocab_size=512, n_layer=4, n_head=4, n_embd=128, block_size=32)
    model = ConnectomeGPTForCausalLM(cfg)
    for name, p in model.named_parameters():
        expected = 0.02 / math.sqrt(2 * 4) if name.endswith("c_proj.weight") else 0.02
        assert p.std().item() == pytest.approx(expected, rel=0.06), name


def _reference_forward(model, idx):
    """The official model's forward, written out independently of our modules."""
    cfg = model.config
    x = model.transformer.wte(idx)
    B, T, C = x.shape
    hd = C // cfg.n_head
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.outer(torch.arange(T).float(), inv)
    cos, sin = freqs.cos()[None, :, None, :], freqs.sin()[None, :, None, :]

    def rot(t):
        d = t.shape[3] // 2
        return torch.cat([t[..., :d] * cos + t[..., d:] * sin, -t[..., :d] * sin + t[..., d:] * cos], 3)

    def norm(t):
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6)

    for blk in model.transformer.h:
        h = norm(x)
        q, k, v = (h @ blk.attn.c_attn.weight.T).split(C, dim=2)
        q, k, v = (t.view(B, T, cfg.n_head, hd) for t in (q, k, v))
        q, k = rot(q), rot(k)
        att = (q.transpose(1, 2) @ k.transpose(1, 2).transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf")).softmax(-1)
        y = (att @ v.transpose(1, 2)).transpose(1, 2).reshape(B, T, C) @ blk.attn.c_proj.weight.T
        x = x + y / math.sqrt(2 * cfg.n_layer)
        x = x + F.gelu(norm(x) @ blk.mlp.c_fc.weight.T) @ blk.mlp.c_proj.weight.T
    return norm(x) @ model.lm_head.weight.T


def test_forward_matches_reference_and_loss(tiny_model):
    idx = torch.randint(0, 97, (3, 12), generator=torch.Generator().manual_seed(1))
    out = tiny_model(idx, labels=idx)
    torch.testing.assert_close(out.logits, _reference_forward(tiny_model, idx), atol=1e-5, rtol=1e-4)
    expected = F.cross_entropy(out.logits[:, :-1].reshape(-1, 97), idx[:, 1:].reshape(-1))
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_hidden_states(tiny_model):
    idx = torch.randint(0, 97, (2, 8))
    out = tiny_model(idx, output_hidden_states=True)
    assert len(out.hidden_states) == tiny_model.config.n_layer + 1
    torch.testing.assert_close(out.hidden_states[0], tiny_model.transformer.wte(idx))
    x = out.hidden_states[0]
    for i, blk in enumerate(tiny_model.transformer.h):
        x = blk(x)
        if i < tiny_model.config.n_layer - 1:
            torch.testing.assert_close(out.hidden_states[i + 1], x)
    torch.testing.assert_close(out.hidden_states[-1], rmsnorm(x))  # GPT-2 convention: last is normed


def test_right_padding_does_not_change_real_positions(tiny_model):
    idx = torch.randint(0, 97, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[0, 6:] = 0
    padded = tiny_model(idx, attention_mask=mask).logits
    torch.testing.assert_close(padded[0, :6], tiny_model(idx[:1, :6]).logits[0], atol=1e-5, rtol=1e-5)


def test_too_long_sequence_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="context window"):
        tiny_model(torch.zeros(1, 17, dtype=torch.long))


def test_save_and_auto_load_without_remote_code(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, ConnectomeGPTForCausalLM)
    idx = torch.randint(0, 97, (2, 9))
    torch.testing.assert_close(loaded(idx).logits, tiny_model(idx).logits)


def test_rmsnorm_has_no_weight_and_unit_rms():
    x = torch.randn(4, 32) * 7
    y = rmsnorm(x)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(4), atol=1e-4, rtol=0)


def test_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        ConnectomeGPTConfig(n_embd=30, n_head=4)


def test_logits_to_keep(tiny_model):
    idx = torch.randint(0, 97, (2, 10))
    full = tiny_model(idx).logits
    torch.testing.assert_close(tiny_model(idx, logits_to_keep=3).logits, full[:, -3:])
    pos = torch.tensor([1, 4, 7])
    torch.testing.assert_close(tiny_model(idx, logits_to_keep=pos).logits, full[:, pos])
    with pytest.raises(ValueError, match="logits_to_keep"):
        tiny_model(idx, labels=idx, logits_to_keep=2)
