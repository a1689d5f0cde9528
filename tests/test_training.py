"""The trainer: fixed connectome, optimisers, schedule, checkpoints, resume, failure."""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from connectome_lib.connectome import Connectome
from connectome_lib.layout import list_checkpoints
from connectome_lib.model import ConnectomeGPTForCausalLM
from connectome_lib.pruning import full_masks, magnitude_prune, prunable_parameters
from connectome_lib.training import NonFiniteLossError, Trainer, build_optimizers, checkpoint_iterations, lr_factor


def _masked_model(config, seed=0):
    torch.manual_seed(seed)
    model = ConnectomeGPTForCausalLM(config)
    params = prunable_parameters(model)
    masks = magnitude_prune({n: p.detach() for n, p in params.items()}, full_masks(params), 0.2, 3)
    c = Connectome.from_model(model, masks)
    c.init_model(model)
    return model, c


@pytest.mark.parametrize("optimizer", ["adamw", "muon_adamw"])
def test_pruned_weights_stay_exactly_zero_at_every_step(tiny_config, tiny_train_cfg, token_stream, tmp_path, optimizer):
    model, c = _masked_model(tiny_config)
    cfg = dataclasses.replace(tiny_train_cfg, optimizer=optimizer)
    seen = []

    def check(it, m):
        params = dict(m.named_parameters())
        for n, mask in c.masks.items():
            assert torch.all(params[n].detach()[~mask] == 0), (it, n)
        seen.append(it)

    trainer = Trainer(model, cfg, token_stream, token_stream, tmp_path, masks=c.masks, on_iteration=[check],
                      progress=False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trained = trainer.fit()
    assert seen == list(range(1, cfg.iters + 1))
    # the survivors did learn
    params = dict(trained.named_parameters())
    assert any(not torch.equal(before[n][c.masks[n]], params[n].detach()[c.masks[n]]) for n in c.masks)


def test_training_reduces_loss(tiny_config, tiny_train_cfg, token_stream, tmp_path):
    torch.manual_seed(0)
    cfg = dataclasses.replace(tiny_train_cfg, iters=40, val_every=20, decay_iters=10, save_state_every=0)
    trainer = Trainer(ConnectomeGPTForCausalLM(tiny_config), cfg, token_stream, token_stream, tmp_path, progress=False)
    trainer.fit()
    assert trainer.curve[-1]["val_loss"] < trainer.curve[0]["val_loss"] - 0.5
    assert (tmp_path / "curve.csv").read_text().startswith("iteration,tokens,train_loss,val_loss")


@pytest.mark.parametrize("optimizer", ["adamw", "muon_adamw"])
def test_resume_after_kill_equals_uninterrupted(tiny_config, tiny_train_cfg, token_stream, tmp_path, optimizer):
    cfg = dataclasses.replace(tiny_train_cfg, optimizer=optimizer)

    def run(folder, kill_at=None):
        model, c = _masked_model(tiny_config)

        def killer(it, m):
            if kill_at is not None and it == kill_at:
                raise KeyboardInterrupt("killed")

        t = Trainer(model, cfg, token_stream, token_stream, folder, masks=c.masks, on_iteration=[killer],
                    progress=False)
        return t.fit(), t

    def train_losses(t):
        return [None if r["train_loss"] != r["train_loss"] else r["train_loss"] for r in t.curve]

    reference, ref_trainer = run(tmp_path / "a")
    # killed at 8: last saved state at iteration 6 (a log point); killed at 5: at iteration 3,
    # between log points (every 2), so the losses not yet logged are resumed from the state
    for kill_at, folder in ((8, tmp_path / "b"), (5, tmp_path / "c")):
        with pytest.raises(KeyboardInterrupt):
            run(folder, kill_at=kill_at)
        resumed, res_trainer = run(folder)
        for (n, p), (_, q) in zip(reference.named_parameters(), resumed.named_parameters()):
            assert torch.equal(p, q), n
        assert [r["val_loss"] for r in ref_trainer.curve] == [r["val_loss"] for r in res_trainer.curve]
        assert train_losses(ref_trainer) == train_losses(res_trainer), kill_at


def test_non_finite_loss_stops_and_keeps_last_good_state(tiny_config, tiny_train_cfg, token_stream, tmp_path):
    torch.manual_seed(0)
    model = ConnectomeGPTForCausalLM(tiny_config)

    def poison(it, m):
        if it == 4:  # after the state of iteration 3 was saved
            with torch.no_grad():
                m.transformer.wte.weight.fill_(float("nan"))

    cfg = dataclasses.replace(tiny_train_cfg, log_every=1)
    trainer = Trainer(model, cfg, token_stream, token_stream, tmp_path, on_iteration=[poison], progress=False)
    with pytest.raises(NonFiniteLossError, match="iteration 5"):
        trainer.fit()
    state = tmp_path / "state"
    assert (state / "trainer.json").exists()
    saved = load_file(str(state / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in saved.values())


def test_schedule_warmup_hold_decay(tiny_train_cfg):
    cfg = dataclasses.replace(tiny_train_cfg, iters=100, warmup_iters=10, decay_iters=20)
    f = [lr_factor(i, cfg) for i in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0
    assert all(x == 1.0 for x in f[10:80])
    assert f[80] == 1.0 and f[99] == pytest.approx(1 / 20)
    assert all(a >= b for a, b in zip(f[80:], f[81:]))


def test_muon_and_adamw_have_their_own_learning_rates(tiny_model, tiny_train_cfg):
    cfg = dataclasses.replace(tiny_train_cfg, optimizer="muon_adamw", lr=1e-3, muon_lr=0.05)
    muon, adamw = build_optimizers(tiny_model, cfg)
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    assert muon.param_groups[0]["lr"] == 0.05 and adamw.param_groups[0]["lr"] == 1e-3
    muon_ids = {id(p) for p in muon.param_groups[0]["params"]}
    names = {n for n, p in tiny_model.named_parameters() if id(p) in muon_ids}
    assert names == {n for n, p in tiny_model.named_parameters() if ".h." in n}


def test_checkpoints_for_learning_curves(tiny_config, tiny_train_cfg, token_stream, tmp_path):
    cfg = dataclasses.replace(tiny_train_cfg, checkpoint_every=5, checkpoint_iters=[3])
    assert checkpoint_iterations(cfg) == {0, 3, 5, 10, 12}
    torch.manual_seed(0)
    Trainer(ConnectomeGPTForCausalLM(tiny_config), cfg, token_stream, token_stream, tmp_path, progress=False).fit()
    assert [i for i, _ in list_checkpoints(tmp_path)] == [0, 3, 5, 10, 12]


def test_curve_starts_at_iteration_zero_and_data_offset_reads_on(tiny_config, tiny_train_cfg, token_stream, tmp_path):
    import math

    torch.manual_seed(0)
    cfg = dataclasses.replace(tiny_train_cfg, sampling="sequential", save_state_every=0)
    trainer = Trainer(ConnectomeGPTForCausalLM(tiny_config), cfg, token_stream, token_stream, tmp_path / "a",
                      progress=False)
    trainer.fit()
    first = trainer.curve[0]
    assert first["iteration"] == 0 and first["tokens"] == 0 and math.isnan(first["train_loss"])
    assert abs(first["val_loss"] - math.log(tiny_config.vocab_size)) < 0.5  # an untrained model is near uniform
    cov = trainer.data_coverage()
    assert cov["target_tokens"] == cfg.iters * cfg.grad_accum * cfg.batch_size * tiny_config.block_size
    # a second run with data_offset = iters reads the windows right after the first run's
    later = Trainer(ConnectomeGPTForCausalLM(tiny_config), cfg, token_stream, token_stream, tmp_path / "b",
                    progress=False, data_offset=cfg.iters)
    a = {int(o) for it in range(cfg.iters) for m in range(cfg.grad_accum) for o in trainer.sampler.starts(it, m)}
    b = {int(o) for it in range(cfg.iters) for m in range(cfg.grad_accum) for o in later.sampler.starts(it, m)}
    assert not a & b and min(b) == max(a) + tiny_config.block_size
