"""The dry run (`connectome estimate`): tokens, FLOPs, time, memory and disk per stage."""

import pytest

from connectome_lib import estimate as est
from connectome_lib.cli import main
from connectome_lib.config import load_profile
from connectome_lib.settings import ConfigError
from connectome_lib.training import checkpoint_iterations


def _stage(rows, name):
    return next(r for r in rows if r.stage == name)


def test_outer_loop_tokens_are_generations_lineages_iters_batch(tiny_profile):
    p = tiny_profile
    t = p.evolve.train
    rows = est.estimate(p, gpu="h100")
    want = (p.evolve.generations * p.evolve.lineages * t.iters * t.batch_size * t.grad_accum
            * p.model.block_size)
    outer = _stage(rows, "outer loop")
    assert outer.tokens == want
    assert outer.models == p.evolve.generations * p.evolve.lineages
    inner = _stage(rows, "inner loop")
    d = p.develop.train
    assert inner.models == len(p.develop.models())
    assert inner.tokens == len(p.develop.models()) * d.iters * d.batch_size * d.grad_accum * p.model.block_size
    assert [r.stage for r in rows] == ["outer loop", "inner loop", "ablations", "evaluations", "total"]
    total = rows[-1]
    assert total.flops == pytest.approx(sum(r.flops for r in rows[:-1]))
    assert total.seconds == pytest.approx(sum(r.seconds for r in rows[:-1]))


def test_parameter_count_matches_the_model(tiny_model, tiny_config):
    from connectome_lib.config import ModelSize

    size = ModelSize(n_layer=tiny_config.n_layer, n_head=tiny_config.n_head, n_embd=tiny_config.n_embd,
                     block_size=tiny_config.block_size, vocab_size=tiny_config.vocab_size)
    shapes = est.parameter_shapes(size)
    assert shapes == {n: tuple(p.shape) for n, p in tiny_model.named_parameters()}
    assert est.matmul_params(size) == sum(p.numel() for n, p in tiny_model.named_parameters() if "wte" not in n)


def test_doubling_gpus_halves_training_seconds():
    one = est.estimate("paper", gpus=1, gpu="h100")
    two = est.estimate("paper", gpus=2, gpu="h100")
    for stage in ("outer loop", "inner loop", "ablations"):
        assert _stage(two, stage).seconds == pytest.approx(_stage(one, stage).seconds / 2)
        assert _stage(two, stage).tokens == _stage(one, stage).tokens
        assert _stage(two, stage).gpus == 2
    assert _stage(two, "outer loop").per_gpu == "32 x 8"  # grad_accum 16 split over 2 GPUs


def test_paper_flops_in_a_sane_range():
    p = load_profile("paper")
    m = p.model
    n_all = 2 * m.vocab_size * m.n_embd + 12 * m.n_layer * m.n_embd ** 2  # ~162M
    assert 1.6e8 < n_all < 1.65e8
    t, d = p.evolve.train, p.develop.train
    outer_tokens = p.evolve.lineages * p.evolve.generations * t.iters * t.batch_size * t.grad_accum * m.block_size
    inner_tokens = len(p.develop.models()) * d.iters * d.batch_size * d.grad_accum * m.block_size
    rows = est.estimate(p, gpu="h100")
    for stage, tokens in (("outer loop", outer_tokens), ("inner loop", inner_tokens)):
        flops = _stage(rows, stage).flops
        # 6 N_all per token overcounts the embedding lookup, and ignores attention: within 30 %
        assert 0.7 * 6 * n_all * tokens < flops < 1.2 * 6 * n_all * tokens
    outer = _stage(rows, "outer loop").flops
    assert 1e19 < outer < 3e19  # ~22B tokens x ~0.85 GFLOP/token
    # one H100 at 40 %: outer loop alone ~ half a day
    assert 8 * 3600 < _stage(rows, "outer loop").seconds < 24 * 3600


def test_cpu_rate_is_the_measured_one():
    rows = est.estimate("cpu", gpu="cpu")
    outer = _stage(rows, "outer loop")
    assert outer.seconds == pytest.approx(outer.tokens / est.CPU_TRAIN_TOKENS_PER_S)
    assert outer.mfu is None
    # the default accelerator of a CPU profile is the CPU
    assert est.estimate("cpu")[0].gpu == "cpu" and est.estimate("paper")[0].gpu == "h100"


def test_cpu_rate_agrees_with_the_committed_run():
    """The CPU rate is the committed cpu run's: tokens per inner model over their median time."""
    import json

    from connectome_lib.paths import project_root

    results = project_root() / "results" / "cpu"
    timings = json.loads((results / "timings.json").read_text())
    config = json.loads((results / "provenance.json").read_text())["config"]
    t, block = config["develop"]["train"], config["model"]["block_size"]
    tokens = est.training_tokens(t["iters"], t["batch_size"], t["grad_accum"], block)
    measured = tokens / timings["step_seconds"]["inner-loop models"]["seconds_median"]
    assert est.CPU_TRAIN_TOKENS_PER_S == pytest.approx(measured, rel=0.1)


def test_memory_and_disk_are_positive_and_plausible():
    rows = est.estimate("paper", gpu="h100")
    outer = _stage(rows, "outer loop")
    assert 10e9 < outer.peak_memory_bytes < 80e9  # fits an 80 GB H100
    inner = _stage(rows, "inner loop")
    # 16 models x (final + 22 checkpoints) x 162M x 4 bytes
    assert inner.kept_disk_bytes == 16 * 23 * 4 * (2 * 50304 * 768 + 12 * 12 * 768 ** 2)
    assert inner.disk_bytes > inner.kept_disk_bytes


def test_ablation_models_keep_no_checkpoints_unless_asked():
    """The ablation stage evaluates final models only: by default they keep ``model/`` alone."""
    p = load_profile("paper")
    params = est.parameter_count(p.model)
    lean = _stage(est.estimate(p, gpu="h100"), "ablations")
    assert lean.kept_disk_bytes == lean.models * 4 * params
    p.ablations.keep_checkpoints = True
    full = _stage(est.estimate(p, gpu="h100"), "ablations")
    assert full.kept_disk_bytes == lean.kept_disk_bytes * (1 + len(checkpoint_iterations(p.develop.train)))


@pytest.mark.parametrize("kwargs, option", [
    (dict(gpu="x100"), "--gpu"),
    (dict(gpus=0), "--gpus"),
    (dict(mfu=0.0), "--mfu"),
    (dict(mfu=1.5), "--mfu"),
    (dict(gpu="cpu", gpus=2), "--gpus"),
])
def test_bad_options_raise_a_clear_error(kwargs, option):
    with pytest.raises(ConfigError, match=f"^{option} "):
        est.estimate("smoke", **kwargs)


def test_bad_option_on_the_command_line_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["estimate", "--profile", "gpu", "--gpu", "x100"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--gpu" in err and "h100" in err


@pytest.mark.parametrize("argv", [["--profile", "gpu", "--gpus", "1", "--gpu", "h100"],
                                  ["--profile", "paper", "--gpus", "8"]])
def test_cli_prints_a_table(argv, capsys):
    assert main(["estimate", *argv]) == 0
    out = capsys.readouterr().out
    for word in ("outer loop", "inner loop", "ablations", "evaluations", "total", "FLOPs", "6 N + 12"):
        assert word in out
    if "8" in argv:
        assert "8 x h100" in out and "32 x 2" in out


def test_markdown_has_human_units():
    md = est.estimate_markdown("paper", gpus=8, notes=True)
    lines = md.splitlines()
    assert lines[0].startswith("| stage |") and lines[1].startswith("|---")
    assert sum(line.startswith("| ") for line in lines) == 6  # header + 4 stages + total
    assert "**total**" in md and "B |" in md and " GB |" in md and (" h |" in md or " min |" in md)
    assert est.human_count(3_280_000) == "3.28M" and est.human_bytes(53e9) == "53 GB"
    assert est.human_seconds(4320) == "1.2 h" and est.human_seconds(80) == "80 s"
    assert est.human_flops(3.4e19) == "3.4e19"
