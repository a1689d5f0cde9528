"""Shared helpers for the evaluation tests (imported by tests/test_evals_*.py).

* :class:`BigramLM` -- a parameter-free fake causal LM whose next-token log-probabilities are a
  fixed table indexed by the current token, so every score can be computed by hand.
* :func:`tiny_gpt2` -- a seeded ``GPT2LMHeadModel(n_layer=2, n_embd=64, n_head=2)``.
* :func:`tiny_connectome_gpt` -- the paper's GPT at the same tiny size.
* :func:`tiny_run_overrides` -- the smoke profile shrunk to seconds, for tests that run stages.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from connectome_lib.model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM
from connectome_lib.tokenizer import load_tokenizer


class BigramLM(nn.Module):
    """``logits[t] = table[input_ids[t]]``; hidden states are one-hot and cumulative counts."""

    def __init__(self, table: np.ndarray, window: int = 16):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))
        self.config = SimpleNamespace(n_positions=window)

    def logprob(self, prev: int, nxt: int) -> float:
        return float(F.log_softmax(self.table[prev], -1)[nxt])

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False, **kw):
        logits = self.table[input_ids]
        hs = None
        if output_hidden_states:
            onehot = F.one_hot(input_ids, self.table.shape[0]).float()
            hs = (onehot, onehot.cumsum(1))
        return SimpleNamespace(logits=logits, hidden_states=hs)


def random_table(vocab: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(vocab, vocab)) * 2


_TOKENIZER = None


def tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = load_tokenizer()
    return _TOKENIZER


def tiny_gpt2(seed: int = 0, n_positions: int = 128) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=n_positions)).eval()


def tiny_connectome_gpt(seed: int = 0, block_size: int = 256) -> ConnectomeGPTForCausalLM:
    torch.manual_seed(seed)
    cfg = ConnectomeGPTConfig(n_layer=2, n_embd=64, n_head=2, block_size=block_size)
    return ConnectomeGPTForCausalLM(cfg).eval()


def direct_loglik(model, context_ids, continuation_ids) -> float:
    """Summed log-likelihood of a continuation from one unbatched ``model(labels=...)`` call."""
    ids = torch.tensor([list(context_ids) + list(continuation_ids)])
    labels = ids.clone()
    labels[0, : len(context_ids)] = -100
    with torch.no_grad():
        loss = model(input_ids=ids, labels=labels).loss
    return -loss.item() * len(continuation_ids)


def tiny_run_overrides(runs, cache, **extra) -> dict:
    """Overrides that shrink the smoke profile to seconds: 2 generations of a 1-layer, 16-wide
    model on a few thousand tokens, one lineage, one inner seed; ``extra`` adds or replaces keys."""
    o = {
        "runs_dir": str(runs), "data.cache_dir": str(cache),
        "data.outer_max_tokens": 20000, "data.inner_max_tokens": 10000, "data.val_max_tokens": 3000,
        "model.n_layer": 1, "model.n_embd": 16, "model.block_size": 16,
        "evolve.generations": 2, "evolve.seeds": [1110], "evolve.train.iters": 4, "evolve.train.warmup_iters": 1,
        "evolve.train.decay_iters": 1, "evolve.train.val_every": 2, "evolve.train.save_state_every": 2,
        "develop.seeds": [0], "develop.train.iters": 4, "develop.train.warmup_iters": 1,
        "develop.train.decay_iters": 1, "develop.train.val_every": 2, "develop.train.checkpoint_every": 2,
        "develop.train.save_state_every": 2,
    }
    o.update(extra)
    return o
