"""Paths a GPU user hits, run on a CPU (issue 18): torch.compile through an evolve, fingerprints
that leave out what shapes no result, the number of processes in the resumable state, the
paper's outer corpus and its streamed document ranges. (fp16 with Muon + AdamW: test_config.)"""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from evals_helpers import tiny_run_overrides

from connectome_lib import stages
from connectome_lib.config import load_profile
from connectome_lib.data import BatchSampler
from connectome_lib.fingerprint import settings_diff, train_settings
from connectome_lib.model import ConnectomeGPTForCausalLM
from connectome_lib.sources import HubSource, hub_dataset, parse_hub_split, resolve_source
from connectome_lib.training import ResumeMismatchError, Trainer


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One token and tokenizer cache for the tiny runs of this module."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def eager_compile(monkeypatch):
    """torch.compile with the ``eager`` backend: the same ``OptimizedModule`` wrapper (whose
    parameters are named ``_orig_mod.*``, the cause of the crash) without inductor's minutes of
    C++ compilation on a CPU; the types of the models compiled are recorded."""
    compile_ = torch.compile
    compiled = []

    def fake(model, *args, **kwargs):
        compiled.append(type(model).__name__)
        return compile_(model, backend="eager")

    monkeypatch.setattr(torch, "compile", fake)
    return compiled


# ------------------------------------------------------------------------------ 1. compile
def test_compile_through_a_whole_evolve(tmp_path, cache, eager_compile):
    """``evolve.train.compile=true``: every generation after the first runs (it stopped after
    generation 0: "weights and masks must name the same tensors")."""
    p = load_profile("smoke", tiny_run_overrides(tmp_path / "runs", cache, **{"evolve.train.compile": True}))
    final, = stages.evolve(p, progress=False)
    assert eager_compile == ["ConnectomeGPTForCausalLM"] * 2  # both generations compiled
    assert [s.status() for s in stages.generation_steps(p)] == ["done", "done"]
    assert abs(final.density() - 0.8 ** 2) < 1e-3
    assert final.masks and not any(n.startswith("_orig_mod") for n in final.masks)


def test_compiled_trainer_returns_the_bare_model_and_its_state_resumes_uncompiled(
        tiny_config, tiny_train_cfg, token_stream, tmp_path, eager_compile):
    """``fit`` returns the model itself (its own parameter names), and a state saved with
    ``compile`` on resumes with it off: ``compile`` is no setting of the fingerprint, so the
    state must not depend on it."""
    def model():
        torch.manual_seed(0)
        return ConnectomeGPTForCausalLM(tiny_config)

    names = [n for n, _ in model().named_parameters()]
    cfg = dataclasses.replace(tiny_train_cfg, compile=True)
    reference = Trainer(model(), cfg, token_stream, token_stream, tmp_path / "a", progress=False).fit()
    assert [n for n, _ in reference.named_parameters()] == names
    assert not hasattr(reference, "_orig_mod")

    def kill(it, m):
        if it == 5:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):  # the state of iteration 3 is saved, compiled
        Trainer(model(), cfg, token_stream, token_stream, tmp_path / "b", on_iteration=[kill], progress=False).fit()
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a discarded, unreadable state warns
        resumed = Trainer(model(), dataclasses.replace(cfg, compile=False), token_stream, token_stream,
                          tmp_path / "b", on_iteration=[lambda it, m: seen.append(it)], progress=False).fit()
    assert seen[0] == 4  # resumed from iteration 3, not restarted
    for (n, p), (_, q) in zip(reference.named_parameters(), resumed.named_parameters()):
        assert torch.equal(p, q), n


# ------------------------------------------------------------------------------ 2. fingerprints
def _finished(p):
    """Generation 0 and the dense inner model of profile ``p``, written as finished."""
    steps = [stages.generation_steps(p)[0], stages.develop_step(p, "dense", 0)]
    for s in steps:
        s.folder.mkdir(parents=True, exist_ok=True)
        s.finish({})
    return steps


def _statuses(p):
    return [stages.generation_steps(p)[0].status(), stages.develop_step(p, "dense", 0).status()]


@pytest.mark.parametrize("change", [
    {"log_every": 7},
    {"save_state_every": 0},
    {"compile": True},
    {"batch_size": 16, "grad_accum": 2},  # the same 32 sequences per iteration, split in two
])
def test_settings_that_shape_no_result_keep_finished_steps_current(tmp_path, change):
    base = {"runs_dir": str(tmp_path / "runs")}
    _finished(load_profile("smoke", base))
    both = {f"{loop}.train.{k}": v for loop in ("evolve", "develop") for k, v in change.items()}
    assert _statuses(load_profile("smoke", {**base, **both})) == ["done", "done"]


@pytest.mark.parametrize("change, diff", [
    ({"lr": 0.001}, "lr: 0.006 -> 0.001"),
    ({"batch_size": 16}, "batch_sequences: 32 -> 16"),  # half the batch: another run
    ({"val_batches": 2}, "val_batches: 4 -> 2"),  # another validation set: other curves
    ({"checkpoint_every": 40}, "checkpoint_every"),  # evaluations read the checkpoints
])
def test_settings_that_shape_results_make_finished_steps_stale(tmp_path, change, diff):
    base = {"runs_dir": str(tmp_path / "runs")}
    gen0, dense = _finished(load_profile("smoke", base))
    q = load_profile("smoke", {**base, **{f"{loop}.train.{k}": v for loop in ("evolve", "develop")
                                          for k, v in change.items()}})
    assert _statuses(q) == ["stale", "stale"]
    new = stages.develop_step(q, "dense", 0).settings
    assert any(diff in d for d in settings_diff(dense.settings, new)), settings_diff(dense.settings, new)


def test_batch_split_fingerprint_and_data_are_the_same():
    """32 x 1 and 16 x 2 sequences per iteration: one fingerprint, the same windows per
    iteration, and (random sampling, drawn per micro-batch) two fingerprints."""
    t = load_profile("smoke").develop.train
    split = dataclasses.replace(t, batch_size=16, grad_accum=2)
    assert train_settings(t) == train_settings(split) and "batch_size" not in train_settings(t)
    rnd = dataclasses.replace(t, sampling="random")
    assert train_settings(rnd) != train_settings(dataclasses.replace(split, sampling="random"))
    tokens = np.arange(5000, dtype=np.uint16)
    for mode in ("sequential", "shuffled"):
        whole = BatchSampler(tokens, 16, 32, seed=3, mode=mode, offset=2, grad_accum=1)
        halves = BatchSampler(tokens, 16, 16, seed=3, mode=mode, offset=2, grad_accum=2)
        for it in range(12):  # past the end of a pass (9 windows x 32 > 312 windows)
            a = sorted(whole.starts(it, 0))
            b = sorted(np.concatenate([halves.starts(it, m) for m in range(2)]))
            assert a == b, (mode, it)


def test_batch_split_trains_the_same_model(tiny_config, tiny_train_cfg, token_stream, tmp_path):
    """8 x 1 and 4 x 2 train the same weights and curve, to rounding (the validation set is
    ``val_batches`` batches of ``batch_size * grad_accum`` windows in both)."""
    def train(bs, ga, folder):
        torch.manual_seed(0)
        t = Trainer(ConnectomeGPTForCausalLM(tiny_config), dataclasses.replace(tiny_train_cfg, batch_size=bs,
                    grad_accum=ga), token_stream, token_stream, folder, progress=False)
        return t.fit(), t

    (a, ta), (b, tb) = train(8, 1, tmp_path / "a"), train(4, 2, tmp_path / "b")
    assert sum(len(v) for v in ta.val) == sum(len(v) for v in tb.val) == 16
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(p, q, atol=1e-4), n
    assert np.allclose([r["val_loss"] for r in ta.curve], [r["val_loss"] for r in tb.curve], atol=1e-4)


# ------------------------------------------------------------------------------ 3. processes
def test_resume_with_another_number_of_processes_is_refused(tiny_config, tiny_train_cfg, token_stream, tmp_path,
                                                            monkeypatch):
    """A state saved by one process resumed by two would read other batches: refused, naming
    the state folder, both numbers and what to do."""
    def kill(it, m):
        if it == 5:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        Trainer(ConnectomeGPTForCausalLM(tiny_config), tiny_train_cfg, token_stream, token_stream, tmp_path,
                on_iteration=[kill], progress=False).fit()
    state = tmp_path / "state"
    assert json.loads((state / "trainer.json").read_text())["world_size"] == 1
    from accelerate import Accelerator

    monkeypatch.setattr(Accelerator, "num_processes", property(lambda self: 2))
    t = Trainer(ConnectomeGPTForCausalLM(tiny_config), tiny_train_cfg, token_stream, token_stream, tmp_path,
                desc="develop dense s0", progress=False)
    with pytest.raises(ResumeMismatchError) as e:
        t.fit()
    msg = str(e.value)
    assert str(state) in msg and "1 process(es), this run has 2" in msg and "--num_processes 1" in msg
    assert "\n" not in msg and msg.startswith("develop dense s0:")
    assert (state / "trainer.json").exists()  # refused, not discarded


# ------------------------------------------------------------------------------ 6. the outer corpus
def test_paper_outer_loop_needs_22b_tokens_and_sample_10bt_falls_short():
    """The paper profile: 6 x 7,001 x 512 windows of 1,024 tokens. Its old outer corpus
    (sample-10BT#train[2%:], ~9.8B tokens) re-read data from generation 2.7; the new one does not."""
    p = load_profile("paper")
    args = (p.model.block_size, p.evolve.train, p.evolve.generations)
    old = stages.outer_reread_message(9_800_000_000, *args)
    assert old is not None and "from generation 2.7 on" in old and "22,023,241,729 tokens" in old
    assert stages.outer_reread_message(p.data.outer_max_tokens, *args) is None
    assert stages.outer_reread_message(22_023_241_729, *args) is None  # exactly enough
    assert stages.outer_reread_message(22_023_241_728, *args) is not None
    # two processes with the same grad_accum read twice as many windows
    assert "from generation 3.0 on" in stages.outer_reread_message(22_023_241_729, *args, world_size=2)
    # random windows overlap anyway: nothing to say
    rnd = dataclasses.replace(p.evolve.train, sampling="random")
    assert stages.outer_reread_message(1000, p.model.block_size, rnd, 6) is None


def test_outer_loop_warns_when_it_will_reread(tmp_path, cache):
    """A tiny evolve whose outer corpus (3,000 tokens: 187 windows of 17) is shorter than its 2
    generations read (2 x 4 x 32 windows) warns, with the numbers; one that fits does not."""
    short = load_profile("smoke", tiny_run_overrides(tmp_path / "a", cache, **{"data.outer_max_tokens": 3000}))
    with pytest.warns(RuntimeWarning, match=r"holds 187 training windows but 2 generations read 256 .*"
                                            r"from generation 1\.5 on the outer loop re-reads data"):
        stages.run_generation(short, 0, progress=False)
    fits = load_profile("smoke", tiny_run_overrides(tmp_path / "b", cache))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        stages.run_generation(fits, 0, progress=False)


def test_hub_document_ranges_are_parsed_and_streamed():
    """``train[START:STOP]`` is streamed with skip/take; a % slice is materialised, with a warning."""
    assert parse_hub_split("train[600000:]") == ("train", 600000, None)
    assert parse_hub_split("train[:500000]") == ("train", 0, 500000)
    assert parse_hub_split("train[2%:]") == ("train[2%:]", 0, None)
    src = resolve_source("hub:HuggingFaceFW/fineweb@sample-100BT#train[500000:600000]")
    assert (src.split, src.start, src.stop, src.streamed) == ("train", 500000, 600000, True)
    assert src.describe() == "hub:HuggingFaceFW/fineweb@sample-100BT#train[500000:600000]"
    assert resolve_source(src.describe()) == src
    assert resolve_source("hub:x@y#train[2%:]").describe() == "hub:x@y#train[2%:]"  # cache keys kept
    with pytest.raises(ValueError, match="START < STOP"):
        resolve_source("hub:x#train[5:5]")

    calls = []

    class Stream(list):
        def skip(self, n):
            return Stream(self[n:])

        def take(self, n):
            return Stream(self[:n])

    def load_dataset(name, config, split, streaming):
        calls.append((name, config, split, streaming))
        return Stream(range(100))

    assert list(hub_dataset(HubSource("x", "c", "train", 10, 25), load_dataset)) == list(range(10, 25))
    assert list(hub_dataset(HubSource("x", "c", "train", 90), load_dataset)) == list(range(90, 100))
    assert calls == [("x", "c", "train", True)] * 2
    with pytest.warns(RuntimeWarning, match="download the whole split"):
        hub_dataset(resolve_source("hub:x@c#train[2%:]"), load_dataset)
    assert calls[-1] == ("x", "c", "train[2%:]", False)


# ------------------------------------------------------------------------------ 7. checkpoints
def test_a_step_can_train_without_keeping_checkpoints(tiny_config, tiny_train_cfg, token_stream, tmp_path):
    """``TrainingSpec.keep_checkpoints=False`` (models whose evaluations read only the final
    model): no ``checkpoints/`` folder, and the same final model as with checkpoints."""
    from safetensors.torch import load_file

    from connectome_lib.step import Step, TrainingSpec, run_training_step

    cfg = dataclasses.replace(tiny_train_cfg, checkpoint_every=4)

    def train(name, keep):
        folder = tmp_path / "runs" / "ablations" / name
        step = Step("ablation", name, folder, tmp_path / "runs", {"variant": name})

        def build():
            torch.manual_seed(0)
            return TrainingSpec(ConnectomeGPTForCausalLM(tiny_config), cfg, token_stream, token_stream, None,
                                desc=name, keep_checkpoints=keep)

        assert run_training_step(step, build, progress=False) is False
        return folder

    kept, dropped = train("kept_s0", True), train("dropped_s0", False)
    assert sorted(p.name for p in (kept / "checkpoints").iterdir()) == [
        "iter_000000", "iter_000004", "iter_000008", "iter_000012"]
    assert not (dropped / "checkpoints").exists() and (dropped / "done.json").exists()
    a, b = (load_file(str(f / "model" / "model.safetensors")) for f in (kept, dropped))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
