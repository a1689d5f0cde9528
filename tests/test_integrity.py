"""Results that are never stale, partial or mixed (issue 8) and sign(0) = 0 (issue 10).

* settings fingerprints: a finished generation / inner model / evaluation row computed with
  other settings is never reported: StaleResultError, or recomputed with fresh=True;
* the run-folder lock, tested with two real processes;
* complete evaluations: missing and unfinished models, leftover ``iter_XXXXXX.tmp`` folders;
* atomic tables: a failure mid-write leaves no partial table and no results row claiming it;
* byte-identical connectome files, also across processes;
* three-valued signs: a surviving weight that is exactly 0 restarts at 0.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from evals_helpers import tiny_connectome_gpt, tiny_run_overrides

from connectome_lib import layout, plan, stages
from connectome_lib.cli import build_parser
from connectome_lib.config import load_profile
from connectome_lib.connectome import Connectome
from connectome_lib.evals import runner
from connectome_lib.evals.config import EvalConfig
from connectome_lib.evals.results import TaskResult
from connectome_lib.evals.runner import evaluate, evaluate_run
from connectome_lib.fingerprint import (
    StaleResultError,
    canonical_json,
    file_sha256,
    fingerprint,
    generation_settings,
    inner_settings,
    settings_diff,
)
from connectome_lib.locking import RunLockedError, run_lock
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM
from connectome_lib.pruning import full_masks, magnitude_prune, prunable_parameters

REPO = Path(__file__).resolve().parents[1]


def _overrides(runs: Path, cache: Path, **extra) -> dict:
    """The smoke profile shrunk to seconds: 2 generations, one tiny model."""
    return tiny_run_overrides(runs, cache, **extra)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A finished tiny run (2 generations, one connectome inner model), computed once."""
    base = tmp_path_factory.mktemp("base")
    p = load_profile("smoke", _overrides(base / "runs", base / "cache"))
    stages.evolve(p, progress=False)
    stages.develop(p, inits=["connectome"], progress=False)
    return base


def _copy_run(base: Path, tmp_path: Path, **extra):
    """A private copy of the base run (the token cache is shared: it is locational, not a setting)."""
    shutil.copytree(base / "runs", tmp_path / "runs")
    return load_profile("smoke", _overrides(tmp_path / "runs", base / "cache", **extra))


# ---------------------------------------------------------------------------------- fingerprints
def test_fingerprint_is_canonical_and_leaves_out_locations():
    assert canonical_json({"b": 1, "a": [1, 2.5]}) == canonical_json({"a": [1, 2.5], "b": 1}) == '{"a":[1,2.5],"b":1}'
    assert fingerprint({"b": 1, "a": 2}) == fingerprint({"a": 2, "b": 1}) != fingerprint({"a": 2, "b": 2})
    p = load_profile("smoke", {"data.cache_dir": "/x", "data.data_dir": "/y", "runs_dir": "/z"})
    q = load_profile("smoke", {"data.cache_dir": "/elsewhere", "runs_dir": "/other", "evolve.generations": 9})
    assert fingerprint(generation_settings(p, 0, None)) == fingerprint(generation_settings(q, 0, None))
    assert "cache_dir" not in generation_settings(p, 0, None)["data"]
    r = load_profile("smoke", {"evolve.prune_fraction": 0.5})
    assert settings_diff(generation_settings(p, 0, None), generation_settings(r, 0, None)) == [
        "evolve.prune_fraction: 0.2 -> 0.5"]
    # the chain: generation 1 depends on generation 0's fingerprint
    assert fingerprint(generation_settings(p, 1, "a")) != fingerprint(generation_settings(p, 1, "b"))
    assert inner_settings(p, "connectome", 0, "sha1") != inner_settings(p, "connectome", 0, "sha2")


@pytest.mark.slow
def test_evolve_with_other_settings_stops_then_fresh_recomputes_downstream(base_run, tmp_path):
    p = _copy_run(base_run, tmp_path)
    root = p.run_root
    done0 = layout.read_json(layout.generation_dir(root, 0) / "done.json")
    assert done0["fingerprint"] == fingerprint(done0["settings"])
    assert done0["settings"]["evolve"]["prune_fraction"] == 0.2
    old_final = file_sha256(layout.final_connectome_path(root))
    old_density = Connectome.load(layout.final_connectome_path(root)).density()
    # the same settings: nothing is retrained, the final connectome's bytes do not change
    mtime = (layout.generation_dir(root, 1) / "done.json").stat().st_mtime_ns
    stages.evolve(p, progress=False)
    assert (layout.generation_dir(root, 1) / "done.json").stat().st_mtime_ns == mtime
    assert file_sha256(layout.final_connectome_path(root)) == old_final

    half = load_profile("smoke", _overrides(root.parent, base_run / "cache", **{"evolve.prune_fraction": 0.5}))
    with pytest.raises(StaleResultError) as e:
        stages.evolve(half, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "generation 0" in msg and "evolve.prune_fraction: 0.2 -> 0.5" in msg
    assert "--fresh" in msg and "runs-dir" in msg
    assert layout.read_json(layout.generation_dir(root, 0) / "done.json") == done0  # untouched
    assert file_sha256(layout.final_connectome_path(root)) == old_final  # nothing reported, nothing replaced

    new = stages.evolve(half, progress=False, fresh=True)[0]
    for g in range(2):
        done = layout.read_json(layout.generation_dir(root, g) / "done.json")
        assert done["settings"]["evolve"]["prune_fraction"] == 0.5
    assert new.density() < old_density
    assert Connectome.load(layout.final_connectome_path(root)) == new

    # the inner model trained from the replaced connectome is noticed ...
    with pytest.raises(StaleResultError, match="connectome_sha256") as e:
        stages.develop(half, inits=["connectome"], progress=False)
    assert "connectome_s0" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(StaleResultError, match="another connectome"):  # evaluating it would report it
        evaluate_run(root, EvalConfig(tasks=["perplexity"], progress=False))
    # ... and with fresh retrained from the new one
    (ddir,) = stages.develop(half, inits=["connectome"], progress=False, fresh=True)
    run = layout.read_json(ddir / "run.json")
    assert run["connectome_sha256"] == file_sha256(layout.final_connectome_path(root))
    assert layout.read_json(ddir / "done.json")["fingerprint"] == run["fingerprint"]
    w0 = dict(ConnectomeGPTForCausalLM.from_pretrained(ddir / "checkpoints" / "iter_000000").named_parameters())
    for n, m in new.masks.items():
        assert torch.equal(w0[n].detach() != 0, m & (new.signs[n] != 0))


@pytest.mark.slow
def test_unfinished_or_unfingerprinted_steps_are_not_resumed(base_run, tmp_path):
    p = _copy_run(base_run, tmp_path)
    root = p.run_root
    g1 = layout.generation_dir(root, 1)
    # generation 1 "was started with other settings": no done.json, run.json with another fingerprint
    (g1 / "done.json").unlink()
    layout.write_json_atomic(g1 / "run.json", {"fingerprint": "0" * 64, "settings": {"evolve": {"reset_value": 0.5}}})
    with pytest.raises(StaleResultError, match="unfinished generation 1"):
        stages.evolve(p, progress=False)
    stages.evolve(p, progress=False, fresh=True)
    assert layout.read_json(g1 / "done.json")["fingerprint"] == layout.read_json(g1 / "run.json")["fingerprint"]
    # a done.json written before fingerprints existed is never trusted either
    d = layout.develop_dir(root, "connectome", 0)
    done = layout.read_json(d / "done.json")
    layout.write_json_atomic(d / "done.json", {k: v for k, v in done.items() if k not in ("fingerprint", "settings")})
    with pytest.raises(StaleResultError, match="older version"):
        stages.develop_one(p, "connectome", 0, progress=False)


# ------------------------------------------------------------------------------------------ lock
_HOLDER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from connectome_lib import stages
    from connectome_lib.config import load_profile
    overrides, flag = json.loads(sys.argv[1]), Path(sys.argv[2])
    p = load_profile("smoke", overrides)
    def hold(it, model):
        if it == 1:
            (flag / "started").write_text("1")
            t0 = time.time()
            while not (flag / "go").exists() and time.time() - t0 < 300:
                time.sleep(0.05)
    stages.develop_one(p, "dense", 1, progress=False, on_iteration=[hold])
""")


@pytest.mark.slow
def test_second_process_gets_run_locked_error_at_once(base_run, tmp_path):
    """Step locks: a second worker on the same step stops at once, naming the holder; a
    different step of the same run (the cluster fan-out) runs alongside."""
    p = _copy_run(base_run, tmp_path, **{"develop.seeds": [0, 1]})
    flag = tmp_path / "flags"
    flag.mkdir()
    overrides = _overrides(tmp_path / "runs", base_run / "cache")
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, json.dumps(overrides), str(flag)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while not (flag / "started").exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() - t0 < 300, "the holder never started"
            time.sleep(0.1)
        for attempt in (lambda: stages.develop_one(p, "dense", 1, progress=False),
                        lambda: plan.run_step(p, "develop/dense_s1", progress=False),
                        lambda: stages.develop(p, inits=["dense"], seeds=[1], progress=False)):
            t1 = time.time()
            with pytest.raises(RunLockedError) as e:
                attempt()
            assert time.time() - t1 < 10  # no waiting on the lock
            msg = str(e.value)
            assert "\n" not in msg and "dense_s1" in msg and f"process {proc.pid}" in msg and "develop" in msg
            assert "runs-dir" in msg
        stages.evolve(p, progress=False)  # other steps are not blocked (here: done, so reused)
        stages.develop_one(p, "dense", 0, progress=False)  # ... and another inner model trains meanwhile
        assert layout.is_done(layout.develop_dir(p.run_root, "dense", 0))
        assert not layout.is_done(layout.develop_dir(p.run_root, "dense", 1))  # the holder is still at it
    finally:
        (flag / "go").write_text("1")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert layout.is_done(layout.develop_dir(p.run_root, "dense", 1))
    stages.develop_one(p, "dense", 1, progress=False)  # the lock is free again (and the step done)


def test_lock_is_reentrant_in_one_process_and_released_on_error(tmp_path):
    with run_lock(tmp_path, "outer"):
        with run_lock(tmp_path, "inner"):  # a stage called from inside another does not wait on itself
            pass
        assert (tmp_path / ".lock.owner.json").exists()  # the inner block left the outer lock alone
    with pytest.raises(KeyError):
        with run_lock(tmp_path, "failing"):
            raise KeyError("boom")
    assert not (tmp_path / ".lock.owner.json").exists()
    with run_lock(tmp_path, "again"):
        pass
    with run_lock(tmp_path, "disabled", enabled=False) as held:
        assert held is None


# ------------------------------------------------------------------------------- evaluation rows
VAL = np.random.default_rng(0).integers(0, 50257, 2000).astype(np.uint16)


def _train_folder(root: Path, name: str, init: str, seed: int, done: bool = True, fp: str = "model-fp-1") -> Path:
    train = root / "develop" / name
    for it in (0, 100):
        tiny_connectome_gpt(it).save_pretrained(train / "checkpoints" / f"iter_{it:06d}")
    if done:
        tiny_connectome_gpt(200).save_pretrained(train / "model")
        (train / "done.json").write_text(json.dumps({"init": init, "seed": seed, "fingerprint": fp}))
    (train / "run.json").write_text(json.dumps({"init": init, "seed": seed, "iterations": 200}))
    return train


def _fake_task(calls: list):
    def run_task(name, model, ctx):
        calls.append(name)
        res = TaskResult(name, metadata={"note": "fake"})
        res.add("acc", 0.5, 10)
        if name == "futrell2018":
            res.table = pd.DataFrame({"word": [f"w{i}" for i in range(200)], "surprisal": np.arange(200.0)})
        return res
    return run_task


def test_eval_rows_with_other_options_are_never_mixed(tmp_path, monkeypatch):
    _train_folder(tmp_path, "connectome_s1", "connectome", 1)
    cfg = EvalConfig(tasks=["perplexity", "hellaswag"], limit=3, progress=False)
    df = evaluate_run(tmp_path, cfg, val_tokens=VAL)
    meta = json.loads((tmp_path / "evals" / "meta" / "connectome_s1_iter000200_hellaswag.json").read_text())
    assert meta["fingerprint"] == fingerprint(meta["settings"]) and meta["settings"]["options"]["limit"] == 3

    with pytest.raises(StaleResultError) as e:
        evaluate_run(tmp_path, cfg.replace(limit=2), val_tokens=VAL)
    assert "limit: 3 -> 2" in str(e.value) and "--fresh" in str(e.value) and "\n" not in str(e.value)
    calls = []
    real = runner.run_task
    monkeypatch.setattr(runner, "run_task", lambda *a: calls.append(a[0]) or real(*a))
    again = evaluate_run(tmp_path, cfg.replace(limit=2), val_tokens=VAL, fresh=True)
    assert sorted(set(calls)) == ["hellaswag", "perplexity"] and len(calls) == 6
    assert len(again) == len(df)  # replaced, not appended
    assert not again.duplicated(["model", "iteration", "task", "metric"]).any()
    stored = pd.read_csv(tmp_path / "evals" / "results.csv")
    assert (stored[(stored.task == "hellaswag") & (stored.metric == "acc")]["n"] == 2).all()  # all rows at limit 2

    # an option of one task leaves the other task's rows alone
    calls.clear()
    with pytest.raises(StaleResultError, match="perplexity_context"):
        evaluate_run(tmp_path, cfg.replace(limit=2, perplexity_context=8), val_tokens=VAL)
    evaluate_run(tmp_path, cfg.replace(limit=2, perplexity_context=8), val_tokens=VAL, fresh=True)
    assert calls == ["perplexity"] * 3

    # a retrained model (another done.json fingerprint) makes its rows stale
    done = tmp_path / "develop" / "connectome_s1" / "done.json"
    done.write_text(json.dumps({"init": "connectome", "seed": 1, "fingerprint": "model-fp-2"}))
    with pytest.raises(StaleResultError, match="model"):
        evaluate_run(tmp_path, cfg.replace(limit=2, perplexity_context=8), val_tokens=VAL)


def test_evaluate_run_checks_models_against_the_profile(tmp_path, monkeypatch):
    _train_folder(tmp_path, "connectome_s1", "connectome", 1)
    unfinished = _train_folder(tmp_path, "random_s1", "random", 1, done=False)
    ckpts = tmp_path / "develop" / "connectome_s1" / "checkpoints"
    tiny_connectome_gpt(3).save_pretrained(ckpts / "iter_000300.tmp")  # a save cut off before its rename
    (ckpts / "iter_12").mkdir()
    (ckpts / "notes").mkdir()
    assert [i for i, _ in layout.list_checkpoints(ckpts.parent)] == [0, 100]
    calls = []
    monkeypatch.setattr(runner, "run_task", _fake_task(calls))
    cfg = EvalConfig(tasks=["hellaswag"], progress=False)
    expected = [("connectome", 1), ("random", 1), ("dense", 1)]
    with pytest.warns(UserWarning) as record:
        df = evaluate_run(tmp_path, cfg, expected=expected)
    messages = " | ".join(str(w.message) for w in record)
    assert "dense_s1" in messages and "missing" in messages
    assert "random_s1" in messages and "unfinished" in messages
    assert set(df["model"]) == {"connectome_s1"} and sorted(df["iteration"]) == [0, 100, 200]
    with pytest.raises(FileNotFoundError, match="dense_s1"):
        evaluate_run(tmp_path, cfg, expected=expected, strict=True)
    with pytest.raises(FileNotFoundError, match="not finished"):
        evaluate(unfinished, cfg)
    # without expected, the unfinished folder is still skipped (never averaged in as final)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        df = evaluate_run(tmp_path, cfg)
    assert set(df["model"]) == {"connectome_s1"} and any("random_s1" in str(w.message) for w in record)


def test_failed_table_write_leaves_no_partial_table_and_no_row(tmp_path, monkeypatch):
    train = _train_folder(tmp_path, "connectome_s1", "connectome", 1)
    calls = []
    monkeypatch.setattr(runner, "run_task", _fake_task(calls))
    cfg = EvalConfig(tasks=["futrell2018"], checkpoints="final", progress=False)
    real_to_csv = pd.DataFrame.to_csv

    def disk_full(self, path=None, *a, **k):
        if path is not None and "tables" in str(path):
            with open(path, "w") as f:
                f.write("word,surprisal\nw0,0.0\nw1,")  # cut off mid-row
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_to_csv(self, path, *a, **k)

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(OSError, match="No space left"):
        evaluate(train, cfg)
    evals = tmp_path / "evals"
    assert not (evals / "tables").exists() or list((evals / "tables").iterdir()) == []
    rows = pd.read_csv(evals / "results.csv") if (evals / "results.csv").exists() else pd.DataFrame(columns=["task"])
    assert "futrell2018" not in set(rows["task"])
    assert not (evals / "meta" / "connectome_s1_iter000200_futrell2018.json").exists()

    monkeypatch.setattr(pd.DataFrame, "to_csv", real_to_csv)
    df = evaluate(train, cfg)
    assert set(df["task"]) == {"futrell2018"}
    table = pd.read_csv(evals / "tables" / "connectome_s1_iter000200_futrell2018.csv")
    assert len(table) == 200 and table["surprisal"].iloc[-1] == 199.0


def test_write_csv_atomic_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    layout.write_csv_atomic(pd.DataFrame({"a": [1, 2]}), path)
    real = pd.DataFrame.to_csv

    def fail(self, p, *a, **k):
        Path(p).write_text("a\n9")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError):
        layout.write_csv_atomic(pd.DataFrame({"a": [3]}), path)
    monkeypatch.setattr(pd.DataFrame, "to_csv", real)
    assert pd.read_csv(path)["a"].tolist() == [1, 2] and os.listdir(tmp_path) == ["t.csv"]


# -------------------------------------------------------------------------------- connectome file
_SAVE = textwrap.dedent("""
    import sys, torch
    from connectome_lib.connectome import Connectome
    g = torch.Generator().manual_seed(3)
    masks = {f"t{i}.weight": torch.rand(17, 9, generator=g) < 0.6 for i in range(5)}
    signs = {n: torch.randn(17, 9, generator=g) for n in masks}
    meta = {"kind": "connectome", "z": 1, "a": [1, 2], "m": {"y": 1, "b": 2}}
    Connectome(masks, signs, {"n_layer": 1, "vocab_size": 9}, meta).save(sys.argv[1])
""")


def test_saving_the_same_connectome_gives_identical_bytes(tmp_path):
    for name in ("a.cmask", "b.cmask"):
        subprocess.run([sys.executable, "-c", _SAVE, str(tmp_path / name)], cwd=REPO, check=True, timeout=300)
    exec(compile(_SAVE.replace("sys.argv[1]", repr(str(tmp_path / "c.cmask"))), "<save>", "exec"), {})
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.cmask", "b.cmask", "c.cmask"))
    assert a == b == c
    loaded = Connectome.load(tmp_path / "a.cmask")
    loaded.save(tmp_path / "d.cmask")
    assert (tmp_path / "d.cmask").read_bytes() == a  # load -> save round trip is byte-identical
    from safetensors import safe_open  # still a valid safetensors file

    with safe_open(str(tmp_path / "a.cmask"), framework="numpy") as f:
        assert set(f.metadata()) == {"connectome", "sha256"}
        assert json.loads(f.metadata()["connectome"])["format_version"] == "2"


# -------------------------------------------------------------------------------------- sign(0)
def _connectome_with_zero_survivors():
    torch.manual_seed(0)
    model = ConnectomeGPTForCausalLM(ConnectomeGPTConfig(vocab_size=97, n_layer=1, n_head=2, n_embd=16, block_size=16))
    params = prunable_parameters(model)
    masks = magnitude_prune({n: p.detach() for n, p in params.items()}, full_masks(params), 0.2, 1)
    name = "transformer.h.0.attn.c_attn.weight"
    survivors = masks[name].nonzero()[:5]
    with torch.no_grad():
        for i, j in survivors.tolist():
            dict(model.named_parameters())[name][i, j] = 0.0  # a survivor that ended exactly at 0
    return model, Connectome.from_model(model, masks), name, survivors


def test_exactly_zero_survivors_get_sign_zero_and_restart_at_zero(tmp_path):
    model, c, name, survivors = _connectome_with_zero_survivors()
    s = c.signs[name]
    assert s.dtype == torch.int8 and set(torch.unique(s).tolist()) <= {-1, 0, 1}
    assert all(int(s[i, j]) == 0 and bool(c.masks[name][i, j]) for i, j in survivors.tolist())
    assert torch.all(s[~c.masks[name]] == 0)
    d = Connectome.load(c.save(tmp_path / "c.cmask"))
    assert d == c and all(int(d.signs[name][i, j]) == 0 for i, j in survivors.tolist())
    fresh = ConnectomeGPTForCausalLM(model.config)
    c.init_model(fresh, 0.02)
    w = dict(fresh.named_parameters())[name].detach()
    assert all(float(w[i, j]) == 0.0 for i, j in survivors.tolist())  # not -0.02
    m = c.masks[name]
    assert torch.equal(w[m] != 0, s[m] != 0) and torch.all(w[m][s[m] != 0].abs() == torch.tensor(0.02))
    # positive share counts +1 only; zero-signed survivors are kept but not positive
    row = c.density_table().set_index("tensor").loc[name]
    assert row["positive_fraction"] == pytest.approx(int((s > 0).sum()) / int(m.sum()))
    assert int(row["kept"]) == int(m.sum())
    # sign agreement is over three values: a zero and a -1 disagree
    other = Connectome({n: v.clone() for n, v in c.masks.items()}, {n: v.clone() for n, v in c.signs.items()})
    i, j = survivors[0].tolist()
    other.signs[name][i, j] = -1
    agree = c.jaccard(other).set_index("tensor").loc[name, "sign_agreement"]
    assert agree == pytest.approx(1 - 1 / int(m.sum()))
    assert c.jaccard(c)["sign_agreement"].eq(1.0).all()
    # the random control draws +-1 signs, never 0
    r = c.random_control(4)
    assert all(torch.all(r.signs[n][r.masks[n]] != 0) for n in r.masks)


def test_format_1_files_still_load(tmp_path):
    """A version-1 file (signs as one bit per survivor) loads with signs +-1."""
    from safetensors.numpy import save_file

    _, c, _, _ = _connectome_with_zero_survivors()
    arrays = {}
    for n in sorted(c.masks):
        m = c.masks[n].numpy().reshape(-1)
        arrays[f"mask::{n}"] = np.packbits(m)
        arrays[f"sign::{n}"] = np.packbits(c.signs[n].numpy().reshape(-1)[m] > 0)
    header = json.dumps({"format_version": "1", "shapes": {n: list(c.masks[n].shape) for n in sorted(c.masks)},
                         "model_config": c.model_config, "meta": {"kind": "connectome"}}, sort_keys=True)
    save_file(arrays, str(tmp_path / "v1.cmask"),
              metadata={"connectome": header, "sha256": Connectome._checksum(arrays, header)})
    old = Connectome.load(tmp_path / "v1.cmask")
    for n in c.masks:
        assert torch.equal(old.masks[n], c.masks[n])
        assert torch.equal(old.signs[n][c.masks[n]], torch.where(c.signs[n][c.masks[n]] > 0, 1, -1).to(torch.int8))


# ------------------------------------------------------------------------------------------- CLI
def test_fresh_flags():
    parser = build_parser()
    for argv in (["evolve"], ["develop"], ["evaluate", "somewhere"]):
        assert parser.parse_args(argv + ["--fresh"]).fresh is True
        assert parser.parse_args(argv).fresh is False
