"""lm-evaluation-harness loads our checkpoints and agrees with our HellaSwag scorer item by item.

Runs only where lm-eval (with its ``hf`` extra) is installed. The documented command,
``lm_eval --model hf --model_args pretrained=PATH,trust_remote_code=True``, runs in a fresh
process that never imports ``connectome_lib``, offline: HellaSwag comes from our local copy of
the data through a task file that reproduces lm-eval's own ``hellaswag`` task (same prompt
``{{query}}``, choices, target delimiter " ", acc and acc_norm) on already pre-processed items,
instead of the hub's ``Rowan/hellaswag``. Each item's four log-likelihoods and both decisions
are then compared with :func:`connectome_lib.evals.multiple_choice.score_choice_items`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("lm_eval")
pytest.importorskip("lm_eval.models.huggingface")  # the hf extra: transformers, accelerate, peft

from connectome_lib.evals.hellaswag import load_hellaswag  # noqa: E402
from connectome_lib.evals.multiple_choice import score_choice_items, seeded_sample  # noqa: E402
from connectome_lib.jsonl import read_jsonl  # noqa: E402
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM  # noqa: E402
from connectome_lib.paths import data_path  # noqa: E402
from connectome_lib.tokenizer import load_tokenizer  # noqa: E402
from connectome_lib.training import save_model  # noqa: E402

N_ITEMS = 8

TASK_YAML = """\
task: hellaswag_local
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
output_type: multiple_choice
validation_split: validation
doc_to_text: "{{{{query}}}}"
doc_to_target: "{{{{gold}}}}"
doc_to_choice: "choices"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

RUN_CLI = r"""
import sys
from lm_eval.__main__ import cli_evaluate
sys.argv = ["lm_eval"] + sys.argv[1:]
cli_evaluate()
leaked = sorted(m for m in sys.modules if m == "connectome_lib" or m.startswith("connectome_lib."))
assert not leaked, f"lm-eval imported {leaked}"
print("NO_CONNECTOME_LIB")
"""


def run_lm_eval_hellaswag(folder, tmp_path, n_items: int) -> tuple[dict, list[dict]]:
    """``lm_eval --model hf`` on ``folder`` (``trust_remote_code``, float32, CPU) over the seeded
    sample of ``n_items`` HellaSwag items, in a fresh process that never imports connectome_lib,
    offline; returns its results for the task and its per-item samples in item order."""
    records = read_jsonl(data_path("hellaswag"))
    picked = [records[i] for i in seeded_sample(len(records), n_items, 0)]
    data = tmp_path / "hellaswag_local.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in picked))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "hellaswag_local.yaml").write_text(TASK_YAML.format(data=data))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_HOME=str(tmp_path / "hf"), HF_MODULES_CACHE=str(tmp_path / "hf_modules"))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", RUN_CLI, "--model", "hf",
         "--model_args", f"pretrained={folder},trust_remote_code=True,dtype=float32",
         "--tasks", "hellaswag_local", "--include_path", str(tasks), "--device", "cpu", "--batch_size", "4",
         "--output_path", str(out), "--log_samples"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    assert "NO_CONNECTOME_LIB" in proc.stdout
    (results_file,) = out.rglob("results_*.json")
    (samples_file,) = out.rglob("samples_hellaswag_local_*.jsonl")
    theirs = json.loads(results_file.read_text())["results"]["hellaswag_local"]
    samples = sorted((json.loads(line) for line in samples_file.read_text().splitlines()), key=lambda s: s["doc_id"])
    assert len(samples) == n_items
    return theirs, samples


def test_lm_eval_cli_loads_our_checkpoint_and_agrees_on_hellaswag(tmp_path):
    torch.manual_seed(0)
    model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=256)).eval()
    tok = load_tokenizer()
    ckpt = save_model(model, tmp_path / "ckpt", tokenizer=tok)
    items = load_hellaswag(limit=N_ITEMS, seed=0)  # the same seeded sample of items for both scorers
    theirs, samples = run_lm_eval_hellaswag(ckpt, tmp_path, N_ITEMS)
    assert [s["doc"]["query"] for s in samples] == [it.context for it in items]

    preds = score_choice_items(model, tok, items, batch_size=4, progress=False)
    their_ll = np.array([[float(r[0][0]) for r in s["resps"]] for s in samples])
    np.testing.assert_allclose(their_ll, preds.loglik, atol=1e-4, rtol=0)
    np.testing.assert_array_equal([s["acc"] for s in samples], preds.correct("acc"))
    np.testing.assert_array_equal([s["acc_norm"] for s in samples], preds.correct("acc_norm_chars"))
    assert theirs["acc,none"] == pytest.approx(preds.correct("acc").mean())
    assert theirs["acc_norm,none"] == pytest.approx(preds.correct("acc_norm_chars").mean())
