"""End to end: evolve 3 generations, then the three inner-loop models (tiny, real data subsets)."""

import subprocess
import sys

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM

from connectome_lib import layout, stages
from connectome_lib.connectome import Connectome


@pytest.mark.slow
def test_evolve_then_develop(tiny_profile):
    p = tiny_profile
    connectome, = stages.evolve(p, progress=False)  # one lineage
    root = p.run_root
    for g in range(3):
        gdir = layout.generation_dir(root, g)
        assert layout.is_done(gdir) and (gdir / "model" / "model.safetensors").exists()
        dens = pd.read_csv(gdir / "density.csv")
        assert ((dens["kept"] - dens["numel"] * 0.8 ** (g + 1)).abs() <= 1).all()
        assert pd.read_csv(gdir / "curve.csv")["iteration"].tolist() == [0, 3, 6]  # validation at iteration 0 too
        assert not (gdir / "state").exists()
    assert connectome == Connectome.load(layout.final_connectome_path(root))
    assert connectome.density() == pytest.approx(0.512, abs=1e-3)

    # signs of the final connectome are the signs of generation 2's trained survivors
    trained = AutoModelForCausalLM.from_pretrained(layout.generation_dir(root, 2) / "model")
    params = dict(trained.named_parameters())
    for n, m in connectome.masks.items():
        assert torch.equal(connectome.signs[n][m], torch.sign(params[n].detach()[m]).to(torch.int8))

    # a second run is a no-op: nothing is retrained
    before = (layout.generation_dir(root, 1) / "done.json").stat().st_mtime_ns
    stages.evolve(p, progress=False)
    assert (layout.generation_dir(root, 1) / "done.json").stat().st_mtime_ns == before

    folders = stages.develop(p, progress=False)
    assert [f.name for f in folders] == ["connectome_s0", "random_s0", "rowmatched_s0", "dense_s0"]
    for f in folders:
        assert layout.is_done(f)
        assert [i for i, _ in layout.list_checkpoints(f)] == [0, 3, 6]
        run = layout.read_json(f / "run.json")
        model0 = AutoModelForCausalLM.from_pretrained(f / "checkpoints" / "iter_000000")
        final = AutoModelForCausalLM.from_pretrained(f / "model")
        w0 = dict(model0.named_parameters())
        wf = dict(final.named_parameters())
        if run["init"] == "dense":
            assert run["density"] is None
            assert (wf["lm_head.weight"] != 0).all()
            continue
        expected = stages.control_connectome(connectome, run["init"], 0)
        assert run["lineage"] == 0
        assert run["density"] == pytest.approx(connectome.density())
        for n, m in expected.masks.items():
            assert torch.all(w0[n].detach()[m].abs() == torch.tensor(0.02))
            assert torch.equal(torch.sign(w0[n].detach()[m]).to(torch.int8), expected.signs[n][m])
            assert torch.all(wf[n].detach()[~m] == 0)  # the mask stayed fixed through training


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tmp_path):
    """`accelerate launch` runs the outer loop with 2 processes (gloo, CPU)."""
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "connectome_lib.cli", "evolve",
        "--profile", "smoke", "--runs-dir", str(tmp_path / "runs"), "--no-progress",
        "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", "data.outer_max_tokens=30000",
        "--set", "data.val_max_tokens=5000", "--set", "model.n_layer=1", "--set", "model.n_embd=16",
        "--set", "model.block_size=16", "--set", "evolve.generations=2", "--set", "evolve.train.iters=4",
        "--set", "evolve.train.warmup_iters=1", "--set", "evolve.train.decay_iters=1",
        "--set", "evolve.train.val_every=2", "--set", "evolve.train.save_state_every=2",
        "--set", "evolve.seeds=[1110]",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    c = Connectome.load(layout.final_connectome_path(tmp_path / "runs" / "smoke", 0))
    assert c.density() == pytest.approx(0.64, abs=1e-3)


@pytest.mark.slow
def test_lottery_ticket_rewind(tiny_profile):
    """reset=rewind: generation g > 0 starts from generation 0's weights at rewind_iter, masked."""
    import dataclasses

    from safetensors.torch import load_file

    p = dataclasses.replace(tiny_profile, evolve=dataclasses.replace(
        tiny_profile.evolve, generations=2, reset="rewind", rewind_iter=2,
        train=dataclasses.replace(tiny_profile.evolve.train, checkpoint_iters=[0, 2])))
    stages.evolve(p, progress=False)
    root = p.run_root
    rewind = load_file(str(layout.lineage_dir(root, 0) / "rewind.safetensors"))
    at2 = dict(AutoModelForCausalLM.from_pretrained(
        layout.checkpoint_dir(layout.generation_dir(root, 0), 2)).named_parameters())
    start1 = dict(AutoModelForCausalLM.from_pretrained(
        layout.checkpoint_dir(layout.generation_dir(root, 1), 0)).named_parameters())
    masks = Connectome.load(layout.generation_dir(root, 0) / "connectome.cmask").masks
    for n, w in rewind.items():
        assert torch.equal(w, at2[n].detach())
        expected = w * masks[n] if n in masks else w
        assert torch.equal(start1[n].detach(), expected)
