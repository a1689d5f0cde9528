"""End to end: evolve 3 generations, then the three inner-loop models (tiny, real data subsets)."""

import os
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


#: a 2-generation outer loop of a 1-layer model, small enough for two CPU processes in a minute
_TINY_EVOLVE = [
    "--set", "data.outer_max_tokens=30000", "--set", "data.val_max_tokens=5000", "--set", "model.n_layer=1",
    "--set", "model.n_embd=16", "--set", "model.block_size=16", "--set", "evolve.generations=2",
    "--set", "evolve.train.iters=4", "--set", "evolve.train.warmup_iters=1", "--set", "evolve.train.decay_iters=1",
    "--set", "evolve.train.val_every=2", "--set", "evolve.train.save_state_every=2", "--set", "evolve.seeds=[1110]",
]


def _evolve_args(tmp_path) -> list[str]:
    return ["-m", "connectome_lib.cli", "evolve", "--profile", "smoke", "--runs-dir", str(tmp_path / "runs"),
            "--no-progress", "--set", f"data.cache_dir={tmp_path / 'cache'}", *_TINY_EVOLVE]


def _launch(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run a launcher on the CPU (no GPU visible, whatever the machine) in a clean environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ACCELERATE_USE_CPU", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def _assert_two_processes_ran(tmp_path) -> None:
    """Every generation finished, trained by 2 processes: the curve counts the tokens of all of
    them (iteration x batch_size x grad_accum x block_size x processes), and so does done.json."""
    from connectome_lib.config import load_profile

    train = load_profile("smoke").evolve.train
    per_process = 4 * train.batch_size * train.grad_accum * 16  # iters x windows x block_size
    root = tmp_path / "runs" / "smoke"
    for g in range(2):
        gdir = layout.generation_dir(root, g)
        assert layout.is_done(gdir) and (gdir / "model" / "model.safetensors").exists()
        assert not (gdir / "state").exists()
        curve = pd.read_csv(gdir / "curve.csv")
        assert curve["iteration"].tolist() == [0, 2, 4]
        assert curve["tokens"].iloc[-1] == 2 * per_process  # world size 2
        assert layout.read_json(gdir / "done.json")["data"]["target_tokens"] == 2 * per_process
    c = Connectome.load(layout.final_connectome_path(root, 0))
    assert c.density() == pytest.approx(0.64, abs=1e-3)
    assert c == Connectome.load(layout.generation_dir(root, 1) / "connectome.cmask")


def test_single_process_cpu_launch_is_refused(monkeypatch):
    """`accelerate launch --cpu --num_processes 2` starts one process (it sets only
    ACCELERATE_USE_CPU and MASTER_ADDR): refused, naming the launchers that work."""
    from connectome_lib.processes import LaunchError, _check_launch

    for k in ("WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    _check_launch()  # accelerate launch --cpu with one process
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(LaunchError, match="torchrun --nproc_per_node N"):
        _check_launch()
    monkeypatch.setenv("WORLD_SIZE", "2")  # every process started (MPI, torchrun)
    _check_launch()


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on a machine without GPU runs the outer
    loop with 2 processes (torchrun, gloo); `--cpu --num_processes 2`, which would start one, is
    refused before anything is trained."""
    def accelerate_launch(*how: str) -> subprocess.CompletedProcess:
        return _launch([sys.executable, "-m", "accelerate.commands.launch", *how, "--num_processes", "2",
                        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                        *_evolve_args(tmp_path)])

    out = accelerate_launch("--cpu")
    assert out.returncode != 0 and "starts one process, not N" in out.stderr, out.stderr[-3000:]
    assert not layout.is_done(layout.generation_dir(tmp_path / "runs" / "smoke", 0))

    out = accelerate_launch("--multi_gpu", "--main_process_port", "0")  # 0: a free port
    assert out.returncode == 0, out.stderr[-3000:]
    _assert_two_processes_ran(tmp_path)


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    """`torchrun --nproc_per_node 2` runs the outer loop with 2 processes: only rank 0 takes the
    step locks and writes; with a step locked by another worker, both ranks stop at once."""
    from connectome_lib.locking import step_lock

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    out = _launch([*torchrun, *_evolve_args(tmp_path)])
    assert out.returncode == 0, out.stderr[-3000:]
    _assert_two_processes_ran(tmp_path)
    assert not list((tmp_path / "runs" / "smoke" / ".locks").glob("*.owner.json"))  # every lock released

    with step_lock(tmp_path / "runs" / "smoke", "evolve/c0/gen_00"):  # another worker holds generation 0
        out = _launch([*torchrun, *_evolve_args(tmp_path)])
    assert out.returncode != 0 and "is in use by" in out.stdout + out.stderr, out.stderr[-3000:]


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
