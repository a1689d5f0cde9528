"""The step protocol (connectome_lib.step) and the plan of a profile's steps (connectome_lib.plan).

One tiny run (2 generations, one seed, one ablation variant) is computed once, step by step
through ``plan.run_step`` as a cluster's workers would; the tests then check what each step
left and what the plan says about it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from evals_helpers import tiny_run_overrides
from test_hf_export import FRESH_PROCESS, fresh_env

from connectome_lib import ablation, layout, plan, stages
from connectome_lib.config import ConfigError, load_profile
from connectome_lib.fingerprint import StaleResultError
from connectome_lib.step import Step

pytestmark = pytest.mark.slow
SHORT = "The dog sat."  # within the tiny context window


def _overrides(runs: Path, cache: Path, **extra) -> dict:
    """The tiny run of :func:`tiny_run_overrides` with one ablation variant and a quick evaluation."""
    return tiny_run_overrides(runs, cache, **{
        "ablations.variants": ["random_lm_head"], "evals.limit": 8, "evals.brain_limit": 20,
        "evals.progress": False, **extra})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny profile, and its plan before anything ran and after every step ran alone."""
    base = tmp_path_factory.mktemp("steps")
    p = load_profile("smoke", _overrides(base / "runs", base / "cache"))
    before = {s.id: s.status for s in plan.plan(p)}
    for s in plan.plan(p):  # in plan order, as a single worker (or a chain of dependent jobs) would
        plan.run_step(p, s.id, progress=False)
    after = {s.id: s.status for s in plan.plan(p)}
    return p, before, after


def test_plan_lists_every_step_with_what_it_needs(run):
    p, before, after = run
    assert list(before) == [
        "evolve/c0/gen_00", "evolve/c0/gen_01",
        "develop/connectome_s0", "develop/random_s0", "develop/rowmatched_s0", "develop/dense_s0",
        "ablation/random_lm_head_s0",
        "evaluate/connectome_s0", "evaluate/random_s0", "evaluate/rowmatched_s0", "evaluate/dense_s0",
        "evaluate/ablations"]
    # nothing ran: the first generation and the dense model can start, everything else waits
    assert before["evolve/c0/gen_00"] == "absent" and before["develop/dense_s0"] == "absent"
    assert {before[k] for k in before if k not in ("evolve/c0/gen_00", "develop/dense_s0")} == {"waiting"}
    assert set(after.values()) == {"done"}
    rows = {s.id: s for s in plan.plan(p, "smoke", ["develop.seeds=[0]"])}
    assert rows["develop/random_s0"].needs == ("evolve/c0/gen_01",)
    assert rows["evaluate/ablations"].needs[-1] == "ablation/random_lm_head_s0"
    assert rows["develop/dense_s0"].command == (
        "connectome step develop/dense_s0 --profile smoke --set 'develop.seeds=[0]'"
    )


def test_steps_run_alone_equal_the_stages(run, tmp_path):
    """The step-by-step run is the same computation as the stage functions: evolve and develop on
    a fresh copy of the settings reuse every step (same fingerprints) and give the same connectome."""
    p, _, _ = run
    final = layout.final_connectome_path(p.run_root).read_bytes()
    mtimes = {d: (d / "done.json").stat().st_mtime_ns for d in (p.run_root / "develop").iterdir()}
    stages.evolve(p, progress=False)
    stages.develop(p, progress=False)
    assert layout.final_connectome_path(p.run_root).read_bytes() == final
    assert {d: (d / "done.json").stat().st_mtime_ns for d in mtimes} == mtimes  # reused, not retrained


def test_every_step_folder_records_settings_first_and_done_last(run):
    p, _, _ = run
    for s in plan.plan(p):
        if s.kind == "evaluate":
            continue
        run_json, done_json = (layout.read_json(s.folder / n) for n in ("run.json", "done.json"))
        assert run_json["fingerprint"] == done_json["fingerprint"]
        assert not (s.folder / "state").exists()  # the resumable state is gone once done
    # the model card of an evaluated inner model carries its results
    from connectome_lib.model_card import read_model_card

    card = read_model_card(layout.develop_dir(p.run_root, "dense", 0) / "model")
    assert {(r.task_name, r.metric_type) for r in card.data.eval_results} >= {
        ("perplexity", "loss"), ("hellaswag", "acc"), ("mmlu", "acc"), ("blimp", "acc"), ("tuckute2024", "r_best"),
        ("futrell2018", "r")}
    assert "| perplexity | loss |" in card.text and card.data.profile == "smoke"


def test_ablation_model_folder_loads_from_the_folder_alone(run, tmp_path):
    """An ablation model folder is complete: weights, config, model.py/auto_map and tokenizer;
    a fresh process that cannot import connectome_lib loads it with AutoModelForCausalLM and
    AutoTokenizer, and its logits are ours."""
    p, _, _ = run
    folder = ablation.ablation_dir(p.run_root, "random_lm_head", 0) / "model"
    for name in ("config.json", "model.safetensors", "model.py", "tokenizer.json", "tokenizer_config.json"):
        assert (folder / name).exists(), name
    out = tmp_path / "logits.npy"
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(folder), str(out), SHORT], cwd=tmp_path,
                          env=fresh_env(tmp_path), capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT "):])
    from connectome_lib.evals.runner import load_model
    from connectome_lib.tokenizer import load_tokenizer

    tok = load_tokenizer(folder)
    assert info["ids"] == tok(SHORT)["input_ids"]
    with torch.no_grad():
        ours = load_model(folder, "cpu")(torch.tensor([info["ids"]])).logits[0].numpy()
    np.testing.assert_allclose(np.load(out), ours, atol=1e-6, rtol=0)


def test_step_status_absent_partial_done_stale(run, tmp_path):
    p, _, _ = run
    shutil.copytree(p.run_root.parent, tmp_path / "runs")
    q = load_profile("smoke", _overrides(tmp_path / "runs", Path(p.data.cache_dir)))
    step = stages.develop_step(q, "dense", 0)
    assert step.status() == "done"
    (step.folder / "done.json").unlink()
    assert step.status() == "partial"  # run.json with these settings: resumable
    other = stages.develop_step(load_profile("smoke", _overrides(tmp_path / "runs", Path(p.data.cache_dir),
                                                                 **{"develop.init_value": 0.5})), "dense", 0)
    assert other.status() == "stale"
    with pytest.raises(StaleResultError, match="develop.init_value"):
        other.reuse_or_clear(fresh=False)
    assert other.reuse_or_clear(fresh=True) is False and not other.folder.exists()
    assert Step("develop", "x", tmp_path / "nothing", tmp_path, {}).status() == "absent"


def test_run_step_refuses_unknown_and_unready_steps(run, tmp_path):
    p, _, _ = run
    with pytest.raises(ConfigError, match="did you mean 'develop/dense_s0'"):
        plan.run_step(p, "develop/dense_s9")
    q = load_profile("smoke", _overrides(tmp_path / "runs", Path(p.data.cache_dir)))
    with pytest.raises(FileNotFoundError, match="run connectome step evolve/c0/gen_00 first"):
        plan.run_step(q, "evolve/c0/gen_01")
    with pytest.raises(FileNotFoundError, match="connectome evolve"):
        plan.run_step(q, "develop/connectome_s0")
    with pytest.raises(FileNotFoundError, match="develop/dense_s0"):
        plan.run_step(q, "evaluate/dense_s0")


def test_compile_through_a_whole_evolve(tmp_path, run):
    """``evolve.train.compile=true``: the trained model comes back without torch.compile's
    wrapper, so pruning finds its weights and every generation after the first runs (it used
    to stop after generation 0: "weights and masks must name the same tensors")."""
    p, _, _ = run
    q = load_profile("smoke", _overrides(tmp_path / "runs", Path(p.data.cache_dir), **{"evolve.train.compile": True}))
    final, = stages.evolve(q, progress=False)
    assert [s.status() for s in stages.generation_steps(q)] == ["done", "done"]
    assert abs(final.density() - 0.8 ** 2) < 1e-3
    assert all(not n.startswith("_orig_mod.") for n in final.masks)


def test_lineages_have_their_own_steps_and_inner_seeds_follow_them():
    """Two lineages (the smoke profile): each has its own generations; inner seed i inherits the
    connectome of lineage i % 2, and NoConnectome's extra seeds need nothing."""
    p = load_profile("smoke", {"develop.seeds": [0, 1, 2], "develop.dense_seeds": [0, 1, 2, 3, 4]})
    ids = plan.training_step_ids(p)
    assert [i for i in ids if i.startswith("evolve/")] == [f"evolve/c{k}/gen_0{g}" for k in (0, 1) for g in range(3)]
    assert [stages.lineage_of(p, s) for s in (0, 1, 2)] == [0, 1, 0]
    assert plan._needs(p, "develop/rowmatched_s1") == ("evolve/c1/gen_02",)
    assert plan._needs(p, "develop/dense_s4") == ()
    assert "develop/dense_s4" in ids and "develop/connectome_s4" not in ids
    assert plan._needs(p, "evolve/c1/gen_01") == ("evolve/c1/gen_00",)
    q = load_profile("smoke", {"ablations.seeds": None, "develop.seeds": [0, 1, 2]})
    assert ablation.ablation_seeds(q) == [0, 2]  # the inner seeds of lineage 0
    with pytest.raises(ConfigError, match="ablations.lineage"):
        load_profile("smoke", {"ablations.lineage": 2})
