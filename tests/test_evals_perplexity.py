"""Validation loss / perplexity on a token array."""

import math

import numpy as np
import pytest
import torch
from evals_helpers import BigramLM, random_table, tiny_gpt2

from connectome_lib.evals.perplexity import evaluate_perplexity


def test_bigram_loss_by_hand():
    lm = BigramLM(random_table(), window=4)
    tokens = np.random.default_rng(0).integers(0, 7, 14)  # 3 windows of 4 (+1), 1 token left over
    res = evaluate_perplexity(lm, tokens, batch_size=2, progress=False)
    pairs = list(zip(tokens[:12], tokens[1:13]))
    loss = -np.mean([lm.logprob(a, b) for a, b in pairs])
    assert res.value("loss") == pytest.approx(loss, rel=1e-6)
    assert res.value("ppl") == pytest.approx(math.exp(loss), rel=1e-6)
    assert res.metrics[0].n == 12
    assert evaluate_perplexity(lm, tokens, limit=1, progress=False).metrics[0].n == 4


def test_equals_the_models_own_loss():
    model = tiny_gpt2(n_positions=32)
    tokens = np.random.default_rng(1).integers(0, 50257, 65).astype(np.uint16)
    res = evaluate_perplexity(model, tokens, progress=False)
    x = torch.from_numpy(tokens.astype(np.int64))
    with torch.no_grad():
        losses = [
            torch.nn.functional.cross_entropy(
                model(input_ids=x[i * 32:(i + 1) * 32][None]).logits[0], x[i * 32 + 1:(i + 1) * 32 + 1]
            ).item()
            for i in range(2)
        ]
    assert res.value("loss") == pytest.approx(np.mean(losses), rel=1e-5)


def test_bad_inputs():
    lm = BigramLM(random_table(), window=4)
    with pytest.raises(ValueError, match="1-D"):
        evaluate_perplexity(lm, np.zeros((2, 5), dtype=int), progress=False)
    with pytest.raises(ValueError, match="too few"):
        evaluate_perplexity(lm, np.zeros(3, dtype=int), progress=False)
