"""Shared fixtures: tiny models and synthetic token streams, so unit tests run in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from connectome_lib.config import TrainConfig, load_profile
from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM

TINY = dict(vocab_size=97, n_layer=2, n_head=2, n_embd=16, block_size=16)


@pytest.fixture
def tiny_config() -> ConnectomeGPTConfig:
    return ConnectomeGPTConfig(**TINY)


@pytest.fixture
def tiny_model(tiny_config) -> ConnectomeGPTForCausalLM:
    torch.manual_seed(0)
    return ConnectomeGPTForCausalLM(tiny_config)


@pytest.fixture
def token_stream() -> np.ndarray:
    """A learnable synthetic stream: a noisy repeating pattern over the tiny vocabulary."""
    rng = np.random.default_rng(0)
    base = np.tile(np.arange(0, 90, 3), 400)
    noise = rng.integers(0, TINY["vocab_size"], size=base.size)
    return np.where(rng.random(base.size) < 0.1, noise, base).astype(np.uint16)


@pytest.fixture
def tiny_train_cfg() -> TrainConfig:
    return TrainConfig(
        iters=12, batch_size=4, grad_accum=2, optimizer="adamw", lr=3e-3, muon_lr=0.02,
        warmup_iters=2, decay_iters=4, val_every=4, val_batches=2, log_every=2,
        save_state_every=3, checkpoint_every=0, seed=7, mixed_precision="no",
    )


@pytest.fixture
def tiny_profile(tmp_path):
    """The smoke profile shrunk to a tiny model and writing under tmp_path."""
    return load_profile(
        "smoke",
        {
            "runs_dir": str(tmp_path / "runs"),
            "data.cache_dir": str(tmp_path / "cache"),
            "data.outer_max_tokens": 40000,
            "data.inner_max_tokens": 20000,
            "data.val_max_tokens": 5000,
            "model.n_layer": 1,
            "model.n_embd": 16,
            "model.block_size": 16,
            "evolve.generations": 3,
            "evolve.seeds": [1110],
            "evolve.train.iters": 6,
            "evolve.train.warmup_iters": 1,
            "evolve.train.decay_iters": 2,
            "evolve.train.val_every": 3,
            "evolve.train.save_state_every": 3,
            "develop.seeds": [0],
            "develop.train.iters": 6,
            "develop.train.warmup_iters": 1,
            "develop.train.decay_iters": 2,
            "develop.train.val_every": 3,
            "develop.train.checkpoint_every": 3,
            "develop.train.save_state_every": 3,
        },
    )
