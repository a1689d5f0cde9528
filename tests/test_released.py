"""The paper's released checkpoints: safe loading, conversion, the released connectome, push.

Every test builds a tiny checkpoint in the official layout: ``config.json`` as on the hub
(``architectures ["GPT"]``, ``model_type "ConnectomeGPT100M.GPT"``, ``auto_map`` to their
``config.py``/``model.py``; tiny sizes), weights under the official key names including the
persistent ``attn.rotary.inv_freq`` buffers, and a ``model.py``/``config.py`` that are a
**trip-wire**: importing either writes a file, and every test asserts that file never appears
(the loader reads ``config.json`` as data and never runs the checkpoint's code). Logits are
checked against an independent, functional forward written here in the official code's style,
which uses the checkpoint's own ``inv_freq``.
"""

from __future__ import annotations

import json
import math
import os
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from connectome_lib import released
from connectome_lib.connectome import Connectome
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM
from connectome_lib.released import HubUnavailableError, ReleasedCheckpointError

SIZE = dict(vocab_size=50304, n_layer=2, n_head=2, n_embd=32, block_size=256)
TRIP = "TRIPWIRE_IMPORTED"
CODE = ("open({path!r}, 'a').write(__name__ + ' was imported\\n')\n\n"
        "class GPT:\n    pass\n\nclass GPTConfig:\n    pass\n")


# ------------------------------------------------------------------------------- fixtures
def official_config(**changes) -> dict:
    return {"_name_or_path": "TuKoResearch/ConnectomeGPT100M", "architectures": ["GPT"],
            "model_type": "ConnectomeGPT100M.GPT",
            "auto_map": {"AutoConfig": "config.GPTConfig", "AutoModelForCausalLM": "model.GPT"},
            **SIZE, "dropout": 0.0, "bias": False, "pos_init": None, **changes}


def official_state(seed: int = 0, density: float | None = None) -> dict[str, torch.Tensor]:
    """Weights under the official names; with ``density``, exact zeros off a random mask (as in
    ConnectomeGPT100M); the rotary buffers as the official Rotary registers them."""
    torch.manual_seed(seed)
    model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig(**SIZE))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if density is not None:
        g = torch.Generator().manual_seed(seed)
        for v in state.values():
            if v.ndim == 2:
                v.mul_((torch.rand(v.shape, generator=g) < density).to(v.dtype))
    hd = SIZE["n_embd"] // SIZE["n_head"]
    for i in range(SIZE["n_layer"]):
        state[f"transformer.h.{i}.attn.rotary.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    return state


def make_released(folder: Path, tripwire: Path, state: dict | None = None, fmt: str = "safetensors",
                  prefix: str = "", config: dict | None = None) -> dict[str, torch.Tensor]:
    """Write a released-layout folder; return the (unprefixed) state it holds."""
    folder.mkdir(parents=True, exist_ok=True)
    state = official_state() if state is None else state
    (folder / "config.json").write_text(json.dumps(config or official_config(), indent=2))
    for name in ("model.py", "config.py"):
        (folder / name).write_text(CODE.format(path=str(tripwire)))
    stored = {prefix + k: v.contiguous() for k, v in state.items()}
    if fmt == "safetensors":
        save_file(stored, str(folder / "model.safetensors"))
    elif fmt == "bin":
        torch.save(stored, folder / "pytorch_model.bin")
    elif fmt == "pt":  # a training checkpoint
        torch.save({"model_state_dict": stored, "iter_num": 2000, "best_val_loss": 3.58,
                    "config": {"n_layer": SIZE["n_layer"]}}, folder / "ckpt_2000.pt")
    return state


@pytest.fixture
def tripwire(tmp_path):
    path = tmp_path / TRIP
    yield path
    assert not path.exists(), f"the checkpoint's own code was imported: {path.read_text()}"


@pytest.fixture
def folder(tmp_path, tripwire):
    f = tmp_path / "ConnectomeGPT100M"
    state = make_released(f, tripwire, official_state(density=0.262))
    return SimpleNamespace(path=f, state=state)


# ------------------------------------------------------------------ the official forward
def _rmsnorm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def official_forward(state: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """Logits of the official GPT computed from a state dict (rotary from its inv_freq)."""
    L, H, C = SIZE["n_layer"], SIZE["n_head"], SIZE["n_embd"]
    hd = C // H
    x = F.embedding(ids, state["transformer.wte.weight"])
    B, T, _ = x.shape
    for i in range(L):
        p = f"transformer.h.{i}."
        q, k, v = (_rmsnorm(x) @ state[p + "attn.c_attn.weight"].T).split(C, dim=2)
        q, k, v = (t.view(B, T, H, hd) for t in (q, k, v))
        inv = state[p + "attn.rotary.inv_freq"]
        freqs = torch.outer(torch.arange(T).type_as(inv), inv)
        cos, sin = freqs.cos()[None, :, None, :], freqs.sin()[None, :, None, :]

        def rot(t, cos=cos, sin=sin):
            a, b = t[..., : hd // 2], t[..., hd // 2:]
            return torch.cat([a * cos + b * sin, -a * sin + b * cos], 3)

        y = F.scaled_dot_product_attention(rot(q).transpose(1, 2), rot(k).transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True)
        x = x + (1 / math.sqrt(2 * L)) * (y.transpose(1, 2).reshape(B, T, C) @ state[p + "attn.c_proj.weight"].T)
        x = x + F.gelu(_rmsnorm(x) @ state[p + "mlp.c_fc.weight"].T) @ state[p + "mlp.c_proj.weight"].T
    return _rmsnorm(x) @ state["lm_head.weight"].T


IDS = torch.tensor([[464, 3290, 318, 257, 1332, 13, 50256, 40, 1842, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])


def assert_same_logits(model, state):
    with torch.no_grad():
        ours = model(IDS).logits
        ref = official_forward(state, IDS)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------------- loader
def test_loads_released_folder_with_exact_logits(folder):
    assert released.is_released_folder(folder.path)
    model, tok = released.load_released(folder.path)
    assert isinstance(model, ConnectomeGPTForCausalLM) and not model.training
    assert (model.config.n_layer, model.config.n_embd, model.config.vocab_size) == (2, 32, 50304)
    assert tok.eos_token_id == 50256 and tok("Hello")["input_ids"] == [15496]  # GPT-2's tokenizer
    assert_same_logits(model, folder.state)
    # our own model built from the same weights agrees too (the same numbers, another code path)
    ref = ConnectomeGPTForCausalLM(ConnectomeGPTConfig(**SIZE)).eval()
    ref.load_state_dict({k: v for k, v in folder.state.items() if "inv_freq" not in k})
    with torch.no_grad():
        torch.testing.assert_close(model(IDS).logits, ref(IDS).logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt,prefix", [("safetensors", "_orig_mod."), ("bin", "module."), ("pt", ""),
                                        ("pt", "module._orig_mod.")])
def test_weight_formats_and_prefixes(tmp_path, tripwire, fmt, prefix):
    f = tmp_path / "ckpt"
    state = make_released(f, tripwire, fmt=fmt, prefix=prefix)
    model, _ = released.load_released(f)
    assert_same_logits(model, state)


def test_strip_prefixes():
    t = torch.zeros(1)
    assert list(released.strip_prefixes({"module._orig_mod.lm_head.weight": t, "transformer.wte.weight": t})) == [
        "lm_head.weight", "transformer.wte.weight"]
    with pytest.raises(ReleasedCheckpointError, match="twice"):
        released.strip_prefixes({"module.lm_head.weight": t, "lm_head.weight": t})


def test_is_released_folder_is_false_for_ours_and_for_nonsense(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "ours")
    assert not released.is_released_folder(tmp_path / "ours")
    assert not released.is_released_folder(tmp_path / "absent")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    assert not released.is_released_folder(tmp_path / "bad")


@pytest.mark.parametrize("changes,message", [
    ({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, "unknown architecture"),
    ({"bias": True}, "no biases"),
    ({"pos_init": "learned"}, "rotary positions only"),
])
def test_refuses_unknown_or_different_architecture(tmp_path, tripwire, changes, message):
    f = tmp_path / "other"
    make_released(f, tripwire, config=official_config(**changes))
    with pytest.raises(ReleasedCheckpointError, match=message) as e:
        released.load_released(f)
    assert "\n" not in str(e.value)


def test_folder_problems_say_what_is_missing_and_corrupt_only_when_unreadable(tmp_path, tripwire):
    f = tmp_path / "noweights"
    f.mkdir()
    (f / "config.json").write_text(json.dumps(official_config()))
    with pytest.raises(ReleasedCheckpointError) as e:
        released.load_released(f)
    assert "no weights file (model.safetensors, pytorch_model.bin or *.pt)" in str(e.value)
    assert "corrupt" not in str(e.value)
    (f / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    with pytest.raises(ReleasedCheckpointError, match="corrupt"):
        released.load_released(f)
    (f / "config.json").write_text("{")
    with pytest.raises(ReleasedCheckpointError, match="corrupt"):
        released.load_released(f)
    with pytest.raises(ReleasedCheckpointError, match="no config.json"):
        released.load_released(tmp_path)


class _Payload:  # a pickled object: weights_only must refuse it
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_never_unpickles_objects(tmp_path, tripwire):
    f = tmp_path / "pickled"
    state = make_released(f, tripwire, fmt="safetensors")
    (f / "model.safetensors").unlink()
    torch.save({"model_state_dict": state, "payload": _Payload()}, f / "ckpt.pt")
    with pytest.raises(ReleasedCheckpointError, match="refusing to unpickle"):
        released.load_released(f)


def test_weights_must_match_strictly_and_rotary_is_checked(tmp_path, tripwire):
    state = official_state()
    bad = dict(state, **{"transformer.h.0.attn.rotary.inv_freq": state["transformer.h.0.attn.rotary.inv_freq"] * 2})
    make_released(tmp_path / "rope", tripwire, bad)
    with pytest.raises(ReleasedCheckpointError, match="rotary frequencies"):
        released.load_released(tmp_path / "rope")
    missing = {k: v for k, v in state.items() if k != "lm_head.weight"}
    make_released(tmp_path / "missing", tripwire, missing)
    with pytest.raises(ReleasedCheckpointError, match="missing lm_head.weight"):
        released.load_released(tmp_path / "missing")
    extra = dict(state, **{"transformer.h.0.ln_1.weight": torch.ones(SIZE["n_embd"])})
    make_released(tmp_path / "extra", tripwire, extra)
    with pytest.raises(ReleasedCheckpointError, match="unexpected transformer.h.0.ln_1.weight"):
        released.load_released(tmp_path / "extra")
    # the inv_freq buffers are optional (a checkpoint saved without persistent buffers)
    make_released(tmp_path / "nobuf", tripwire, {k: v for k, v in state.items() if "inv_freq" not in k})
    released.load_released(tmp_path / "nobuf")


def test_hub_id_offline_is_one_clear_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnavailableError) as e:
        released.local_folder(released.HUB_IDS["Connectome"], cache_dir=str(tmp_path / "hf"))
    assert "TuKoResearch/ConnectomeGPT100M" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="not a hub id"):
        released.load_released(tmp_path / "no" / "such" / "folder")


def test_model_label_and_name():
    assert released.model_label("TuKoResearch/RandomConnectomeGPT100M") == "RandomConnectome"
    assert released.model_label("/x/NoConnectomeGPT100M") == "NoConnectome"
    assert released.model_label("TuKoResearch/ConnectomeGPT100M") == "Connectome"
    assert released.model_label("/x/gpt2") is None
    assert released.model_name("TuKoResearch/ConnectomeGPT100M") == "ConnectomeGPT100M"


def test_the_tripwire_is_live(tmp_path):
    """The fixture's code does write its file when imported (so the other tests mean something)."""
    wire = tmp_path / "wire"
    make_released(tmp_path / "f", wire)
    runpy.run_path(str(tmp_path / "f" / "model.py"))
    assert wire.exists()


# ------------------------------------------------------------------------------- evaluation
def test_connectome_evaluate_hellaswag_matches_the_official_forward(folder, tmp_path):
    """``connectome evaluate --model <released folder> --tasks hellaswag --limit 8`` (the real
    ``load_model``, which routes released folders to the safe loader): each choice's
    log-likelihood equals the official-style forward's within 1e-5."""
    from connectome_lib.evals import cli
    from connectome_lib.evals.hellaswag import load_hellaswag
    from connectome_lib.evals.scoring import encode_request
    from connectome_lib.tokenizer import load_tokenizer

    results = tmp_path / "res" / "results.csv"
    rc = cli.main(["evaluate", "--model", str(folder.path), "--tasks", "hellaswag", "--limit", "8", "--device", "cpu",
                   "--results", str(results), "--set", "progress=false"])
    assert rc == 0
    (table_file,) = (results.parent / "tables").glob("*hellaswag.csv")
    table = pd.read_csv(table_file)
    items = load_hellaswag(limit=8, seed=0)
    assert len(table) == 8 and list(table["item"].astype(str)) == [it.item_id for it in items]
    tok, W = load_tokenizer(), SIZE["block_size"]
    ref = np.zeros((8, 4))
    with torch.no_grad():
        for i, it in enumerate(items):
            for j, choice in enumerate(it.choices):
                r = encode_request(tok, it.context, choice)
                full = list(r.context_ids + r.continuation_ids)[-(W + 1):]
                lp = torch.log_softmax(official_forward(folder.state, torch.tensor([full[:-1]]))[0].float(), -1)
                n = len(r.continuation_ids)
                tgt = torch.tensor(full[1:])[-n:]
                ref[i, j] = lp[-n:].gather(1, tgt[:, None]).double().sum().item()
    np.testing.assert_allclose(table[[f"loglik_{j}" for j in range(4)]].to_numpy(), ref, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------- conversion
@pytest.fixture
def converted(folder, tmp_path):
    return released.convert(folder.path, tmp_path / "converted")


def test_convert_writes_a_standard_folder(converted, folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {p.name for p in converted.iterdir()}
    assert {"config.json", "model.safetensors", "model.py", "tokenizer.json", "README.md", "conversion.json"} <= names
    assert not released.is_released_folder(converted)
    cfg = json.loads((converted / "config.json").read_text())
    assert cfg["auto_map"]["AutoModelForCausalLM"].endswith("ConnectomeGPTForCausalLM")
    model = AutoModelForCausalLM.from_pretrained(str(converted), trust_remote_code=True, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(converted))
    assert tok("Hello")["input_ids"] == [15496]
    assert_same_logits(model, folder.state)
    prov = json.loads((converted / "conversion.json").read_text())
    assert prov["label"] == "Connectome" and len(prov["weights_sha256"]) == 64
    card = __import__("connectome_lib.model_card", fromlist=["read_model_card"]).read_model_card(converted)
    assert card.data.library_name == "transformers" and card.data.license == "mit"
    assert card.data.base_model == "TuKoResearch/ConnectomeGPT100M" and "generation 5" in card.data.connectome_origin


def test_lm_eval_hf_evaluates_the_converted_folder(converted, tmp_path):
    """``lm_eval --model hf`` (a fresh process without connectome_lib, offline) scores the
    converted folder; its log-likelihoods equal ours on the released weights."""
    pytest.importorskip("lm_eval.models.huggingface")
    from test_lm_eval_compat import run_lm_eval_hellaswag

    from connectome_lib.evals.hellaswag import load_hellaswag
    from connectome_lib.evals.multiple_choice import score_choice_items

    n = 4
    _, samples = run_lm_eval_hellaswag(converted, tmp_path, n)
    model, tok = released.load_released(converted.parent / "ConnectomeGPT100M")
    preds = score_choice_items(model, tok, load_hellaswag(limit=n, seed=0), batch_size=4, progress=False)
    theirs = np.array([[float(r[0][0]) for r in s["resps"]] for s in samples])
    np.testing.assert_allclose(theirs, preds.loglik, atol=1e-4, rtol=0)


def test_convert_command_line(folder, tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    released.add_parsers(sub)
    args = parser.parse_args(["convert", str(folder.path), str(tmp_path / "out")])
    assert args.func(args) == 0
    assert (tmp_path / "out" / "model.safetensors").exists() and "converted" in capsys.readouterr().out


# ---------------------------------------------------------------------------- the connectome
def test_extract_mask_reads_zeros_and_trained_signs(folder):
    model, _ = released.load_released(folder.path)
    c = released.extract_mask(model)
    assert set(c.masks) == {k for k, v in folder.state.items() if v.ndim == 2}
    for k, m in c.masks.items():
        w = folder.state[k]
        assert torch.equal(m, w != 0) and torch.equal(c.signs[k], torch.sign(w).to(torch.int8))
    assert c.density() == pytest.approx(0.262, abs=0.01)
    assert c == released.extract_mask(folder.state) == released.extract_mask(folder.path)
    assert c.meta["signs"] == "trained (inner loop)"


def test_density_comparison_against_ours(folder):
    rel = released.extract_mask(folder.state)
    ours = rel.random_control(seed=3)
    t = released.density_comparison(rel, ours)
    assert {"layer", "kind", "density_released", "density_ours", "expected"} <= set(t.columns)
    assert t["expected"].eq(0.8 ** 6).all()
    assert set(t["kind"]) >= {"wte", "c_attn", "attn.c_proj", "c_fc", "mlp.c_proj", "lm_head", "all"}
    block = t[(t["layer"] == "block_01") & (t["kind"] == "c_fc")].iloc[0]
    assert block["density_released"] == pytest.approx(block["density_ours"])  # a matched control
    assert t.iloc[-1]["density_released"] == pytest.approx(rel.density())
    assert released.expected_density() == pytest.approx(0.262144)


def test_row_density_vs_frequency_reuses_the_analysis(folder):
    rel = released.extract_mask(folder.state)
    counts = np.bincount(np.random.default_rng(0).zipf(1.3, 20000) % SIZE["vocab_size"], minlength=SIZE["vocab_size"])
    out = released.row_density(rel, counts, counts, random_connectome=rel.random_control(1))
    assert set(out.summary["tensor"]) == {"wte", "lm_head"} and len(out.summary) == 4
    assert isinstance(rel, Connectome)


# ------------------------------------------------------------------------------------- push
class FakeApi:
    """Records the calls push_model makes (no network)."""

    def __init__(self, fail: Exception | None = None):
        self.calls, self.fail = [], fail

    def create_repo(self, **kwargs):
        if self.fail:
            raise self.fail
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        return "https://huggingface.co/me/ConnectomeGPT100M-hf/commit/0123"


def test_push_converted_folder_with_a_mocked_api(converted):
    from connectome_lib import hub

    api = FakeApi()
    url = hub.push_model(converted, "me/ConnectomeGPT100M-hf", private=True, api=api)
    assert url.endswith("/commit/0123")
    (c1, create), (c2, upload) = api.calls
    assert (c1, c2) == ("create_repo", "upload_folder")
    assert create["repo_id"] == "me/ConnectomeGPT100M-hf" and create["private"] is True and create["exist_ok"]
    assert upload["folder_path"] == str(converted) and "*.py" in upload["allow_patterns"]


def test_push_refuses_incomplete_or_released_folders_and_reports_offline(converted, folder, tmp_path):
    from huggingface_hub.errors import LocalEntryNotFoundError

    from connectome_lib import hub

    with pytest.raises(hub.IncompleteModelFolderError, match="released layout"):
        hub.push_model(folder.path, "me/x", api=FakeApi())
    (converted / "README.md").unlink()
    (converted / "tokenizer.json").unlink()
    with pytest.raises(hub.IncompleteModelFolderError) as e:
        hub.push_model(converted, "me/x", api=FakeApi())
    assert "tokenizer" in str(e.value) and "README.md" in str(e.value) and "\n" not in str(e.value)
    from connectome_lib.model_card import released_card
    from connectome_lib.tokenizer import load_tokenizer

    released_card(converted, "Connectome", source="test")
    load_tokenizer().save_pretrained(str(converted))
    for err in (LocalEntryNotFoundError("offline"), ConnectionError("Name or service not known")):
        with pytest.raises(HubUnavailableError, match="cannot push") as e:
            hub.push_model(converted, "me/x", api=FakeApi(fail=err))
        assert "\n" not in str(e.value)


def test_push_command_line_parses():
    import argparse

    from connectome_lib import hub

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    hub.add_parsers(sub)
    args = parser.parse_args(["push", "--model", "m", "--repo-id", "me/m", "--private"])
    assert (args.model, args.repo_id, args.private, args.func) == ("m", "me/m", True, hub._cmd_push)



def test_released_evaluation_preset_holds_the_papers_definitions():
    from connectome_lib.evals.cli import _read_config_file, eval_presets
    from connectome_lib.evals.config import EvalConfig, EvalConfigError
    from connectome_lib.registry import TASK_NAMES

    assert "released" in eval_presets()
    cfg = EvalConfig.from_dict(_read_config_file("released"))
    assert (cfg.hellaswag_norm, cfg.mmlu_prompt, cfg.limit, cfg.checkpoints) == ("tokens", "paper", None, "final")
    assert tuple(cfg.tasks) == TASK_NAMES
    with pytest.raises(EvalConfigError, match="no preset of that name"):
        _read_config_file("relased")
