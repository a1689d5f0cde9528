"""Checkpoints the ecosystem can load, and any Hugging Face causal LM through our evaluations.

* A saved folder carries the model code (``model.py``), an ``auto_map`` and the tokenizer, so a
  fresh Python process that never imports ``connectome_lib`` loads it with
  ``AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)`` and
  ``AutoTokenizer.from_pretrained(path)`` and gets the same logits (what lm-eval's ``hf`` model
  does).
* ``connectome evaluate --model PATH`` evaluates a plain ``GPT2LMHeadModel`` folder with the
  tokenizer saved in it, including the hidden-state tasks (tuckute2024, language_units).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

import connectome_lib.model as model_module
from connectome_lib.cli import main as connectome_main
from connectome_lib.evals.config import EvalConfig
from connectome_lib.evals.runner import model_tokenizer
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM
from connectome_lib.tokenizer import load_tokenizer
from connectome_lib.training import save_model

TEXT = "The quick brown fox jumps over the lazy dog. Colorless green ideas sleep furiously."

FRESH_PROCESS = r"""
import json, sys
import numpy as np, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
path, out = sys.argv[1], sys.argv[2]
# plain AutoTokenizer: transformers 5 reads config.json first and, the model type being unknown
# without remote code, asks whether to run it; with stdin closed the answer is "no" and it falls
# back to the tokenizer files alone. trust_remote_code=True (what lm-eval passes) skips the question.
tok = AutoTokenizer.from_pretrained(path)
tok_trusted = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, dtype=torch.float32).eval()
ids = tok(sys.argv[3])["input_ids"]
assert tok_trusted(sys.argv[3])["input_ids"] == ids
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0].numpy()
np.save(out, logits)
leaked = sorted(m for m in sys.modules if m == "connectome_lib" or m.startswith("connectome_lib."))
assert not leaked, leaked
print("\nRESULT", json.dumps(dict(ids=ids, model_class=type(model).__name__, model_module=type(model).__module__,
                      tokenizer_class=type(tok).__name__, eos=tok.eos_token_id)))
"""


def fresh_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "hf_modules"))
    return env


@pytest.fixture(scope="module")
def gpt2_tokenizer():
    return load_tokenizer()


def test_model_module_is_self_contained():
    """The file save_pretrained copies must import only torch, transformers and the stdlib."""
    tree = ast.parse(Path(model_module.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import in model.py: from {'.' * node.level}{node.module}"
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
    foreign = {r for r in roots if r not in sys.stdlib_module_names and r not in {"torch", "transformers"}}
    assert not foreign, f"model.py imports {foreign}: a checkpoint's copy would not load without them"


def test_saved_folder_has_code_auto_map_and_tokenizer(tmp_path, gpt2_tokenizer):
    torch.manual_seed(0)
    model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64))
    folder = save_model(model, tmp_path / "model", tokenizer=gpt2_tokenizer)
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "model.py", "tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "model.ConnectomeGPTConfig",
                                  "AutoModelForCausalLM": "model.ConnectomeGPTForCausalLM"}
    assert (folder / "model.py").read_text() == Path(model_module.__file__).read_text()
    # inside connectome_lib the registered local class is used, not the copied file
    again = AutoModelForCausalLM.from_pretrained(str(folder))
    assert type(again) is ConnectomeGPTForCausalLM
    # without a tokenizer the folder is still a valid model folder (tokenizer files absent)
    bare = save_model(model, tmp_path / "bare")
    assert not (bare / "tokenizer.json").exists() and (bare / "model.py").exists()


def test_fresh_process_without_connectome_lib_loads_the_checkpoint(tmp_path, gpt2_tokenizer):
    torch.manual_seed(1)
    model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64)).eval()
    folder = save_model(model, tmp_path / "ckpt", tokenizer=gpt2_tokenizer)
    out = tmp_path / "logits.npy"
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), str(out), TEXT],
        cwd=tmp_path, env=fresh_env(tmp_path), capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    info = json.loads(line[len("RESULT "):])
    assert info["model_class"] == "ConnectomeGPTForCausalLM"
    assert info["model_module"].startswith("transformers_modules.")  # the copied model.py, not ours
    assert info["eos"] == 50256
    ids = gpt2_tokenizer(TEXT)["input_ids"]
    assert info["ids"] == ids
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- any causal LM


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory, gpt2_tokenizer) -> Path:
    """A tiny randomly initialised GPT-2 saved with its tokenizer, as any HF user would."""
    folder = tmp_path_factory.mktemp("gpt2") / "tiny-gpt2"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=256))
    model.save_pretrained(folder)
    gpt2_tokenizer.save_pretrained(folder)
    return folder


def test_model_tokenizer_prefers_the_folder(gpt2_folder, tmp_path):
    cfg = EvalConfig(tokenizer=str(tmp_path / "no-such-tokenizer"))
    tok = model_tokenizer([gpt2_folder], cfg)  # the configured one would fail to load
    assert tok(TEXT)["input_ids"] == load_tokenizer()(TEXT)["input_ids"] and tok.pad_token_id == 50256
    with pytest.raises(OSError, match="no-such-tokenizer"):
        model_tokenizer([tmp_path], cfg)  # no tokenizer in the folder: falls back to the configured one


def test_evaluate_any_causal_lm_with_its_own_tokenizer(gpt2_folder, tmp_path, capsys):
    results = tmp_path / "results.csv"
    rc = connectome_main([
        "evaluate", "--model", str(gpt2_folder), "--tasks", "hellaswag,blimp,tuckute2024,language_units",
        "--limit", "3", "--device", "cpu", "--results", str(results),
        "--set", "progress=false", "--set", "brain_limit=20", "--set", "localizer_n_sentences=40",
        # the configured tokenizer does not exist: the run only works with the folder's own
        "--set", f"tokenizer={tmp_path / 'no-such-tokenizer'}",
    ])
    assert rc == 0, capsys.readouterr().err
    df = pd.read_csv(results)
    assert set(df["model"]) == {"tiny-gpt2"}
    assert set(df["task"]) == {"hellaswag", "blimp", "tuckute2024", "language_units"}
    value = df.set_index(["task", "metric"])["value"]
    assert 0 <= value[("hellaswag", "acc")] <= 1 and 0 <= value[("blimp", "acc")] <= 1
    # hidden-state tasks: GPT-2 returns n_layer + 1 hidden states; a score per layer and a best r
    brain = df[df.task == "tuckute2024"]
    assert np.isfinite(brain["value"]).all() and ("tuckute2024", "r_best") in value.index
    units = df[df.task == "language_units"]
    assert np.isfinite(units["value"]).all() and ("language_units", "r_top1pct") in value.index


def test_evaluate_model_flag_rejects_two_paths(gpt2_folder, capsys):
    with pytest.raises(SystemExit):
        connectome_main(["evaluate", str(gpt2_folder), "--model", str(gpt2_folder)])
