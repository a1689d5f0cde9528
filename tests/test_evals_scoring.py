"""The shared log-likelihood scorer, sliding-window surprisal and hidden-state features."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from evals_helpers import BigramLM, direct_loglik, random_table, tiny_connectome_gpt, tiny_gpt2, tokenizer

from connectome_lib.evals import scoring
from connectome_lib.evals.perplexity import summed_cross_entropy
from connectome_lib.evals.scoring import (
    LoglikRequest,
    accepts_logits_to_keep,
    context_window,
    encode_request,
    score_requests,
    sentence_features,
    sliding_windows,
    token_surprisals,
)


def test_context_window_reads_every_config_name():
    for name in ("n_positions", "max_position_embeddings", "block_size"):
        m = torch.nn.Module()
        m.config = SimpleNamespace(**{name: 33})
        assert context_window(m) == 33
    m = torch.nn.Module()
    m.config = SimpleNamespace()
    with pytest.raises(ValueError, match="context window"):
        context_window(m)
    assert context_window(tiny_connectome_gpt(block_size=64)) == 64


def test_bigram_loglik_by_hand():
    lm = BigramLM(random_table())
    reqs = [
        LoglikRequest((1, 2), (3,), 1),
        LoglikRequest((4,), (5, 6, 0), 3),
        LoglikRequest((1, 2), (4,), 1),  # shares its model input with the first request
        LoglikRequest((0, 1, 2, 3, 4, 5), (6, 6), 2),
    ]
    res = score_requests(lm, reqs, batch_size=2, progress=False)
    by_hand = [
        lm.logprob(2, 3),
        lm.logprob(4, 5) + lm.logprob(5, 6) + lm.logprob(6, 0),
        lm.logprob(2, 4),
        lm.logprob(5, 6) + lm.logprob(6, 6),
    ]
    np.testing.assert_allclose([r.loglik for r in res], by_hand, rtol=1e-6)
    assert [r.n_tokens for r in res] == [1, 3, 1, 2]
    assert [r.n_chars for r in res] == [1, 3, 1, 2]


def test_batch_size_and_order_do_not_change_scores():
    model = tiny_gpt2()
    rng = np.random.default_rng(0)
    reqs = [LoglikRequest(tuple(rng.integers(0, 50000, rng.integers(1, 20))),
                          tuple(rng.integers(0, 50000, rng.integers(1, 6))), 1)
            for _ in range(13)]
    a = [r.loglik for r in score_requests(model, reqs, batch_size=1, progress=False)]
    b = [r.loglik for r in score_requests(model, reqs, batch_size=5, progress=False)]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for r, ll in zip(reqs, a):
        assert ll == pytest.approx(direct_loglik(model, r.context_ids, r.continuation_ids), rel=1e-4, abs=1e-4)


def test_context_is_left_truncated_to_the_window():
    model = tiny_gpt2(n_positions=16)
    ctx, cont = tuple(range(100, 130)), (7, 8, 9)
    (res,) = score_requests(model, [LoglikRequest(ctx, cont, 3)], progress=False)
    full = ctx + cont
    kept = full[-17:]  # window + 1 tokens; the last one is only a target
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([kept[:-1]])).logits[0], -1)
    by_hand = sum(logp[13 + i, c].item() for i, c in enumerate(cont))  # positions 13..15 predict 14..16
    assert res.loglik == pytest.approx(by_hand, rel=1e-5)


def test_continuation_longer_than_the_window_uses_a_sliding_window():
    model = tiny_gpt2(n_positions=16)
    ctx, cont = tuple(range(100, 130)), tuple(range(200, 240))  # 40 continuation tokens, window 16
    short = LoglikRequest((5, 6), (7, 8), 2)
    long_res, short_res = score_requests(model, [LoglikRequest(ctx, cont, 40), short], progress=False)
    full = ctx[-16:] + cont
    expected = -scoring.token_surprisals(model, full)[-len(cont):].sum()
    assert long_res.loglik == pytest.approx(expected, rel=1e-5) and long_res.n_tokens == 40
    # each continuation token was scored with at least half a window of left context
    assert short_res.loglik == pytest.approx(direct_loglik(model, short.context_ids, short.continuation_ids), rel=1e-4)


def test_our_gpt_scores_like_its_own_loss():
    model = tiny_connectome_gpt()
    reqs = [LoglikRequest((5, 6, 7), (8, 9), 2), LoglikRequest((1,), (2, 3, 4, 5), 4)]
    res = score_requests(model, reqs, batch_size=2, progress=False)
    for r, q in zip(res, reqs):
        assert r.loglik == pytest.approx(direct_loglik(model, q.context_ids, q.continuation_ids), rel=1e-4)


def test_encode_request_follows_the_harness():
    tok = tokenizer()
    r = encode_request(tok, "The cat ", "sat down.")
    assert tok.decode(list(r.context_ids)) == "The cat"
    assert tok.decode(list(r.continuation_ids)) == " sat down."
    assert r.n_chars == len("sat down.")  # the continuation as given, before the space moved
    assert encode_request(tok, "", "Hi").context_ids == (tok.eos_token_id,)


def test_sliding_windows_score_every_target_once_with_enough_context():
    for n, w, s in [(5, 8, 4), (100, 16, 8), (101, 16, 5), (17, 16, 15)]:
        spans = sliding_windows(n, w, s)
        scored = [t for (a, e, f) in spans for t in range(f, e)]
        assert scored == list(range(1, n))
        for a, e, f in spans[1:]:
            assert e - a == w and f - a >= w - s
    with pytest.raises(ValueError):
        sliding_windows(10, 8, 8)


def test_sliding_window_matches_full_pass_when_it_fits_and_bigram_always():
    ids = list(np.random.default_rng(1).integers(0, 7, 50))
    lm = BigramLM(random_table(), window=8)
    s = token_surprisals(lm, ids, stride=3)
    np.testing.assert_allclose(s, [-lm.logprob(a, b) for a, b in zip(ids[:-1], ids[1:])], rtol=1e-6)
    model = tiny_gpt2(n_positions=64)
    ids = list(np.random.default_rng(2).integers(0, 50000, 60))
    full = token_surprisals(model, ids)
    windowed = token_surprisals(model, ids, window=32, stride=16)
    np.testing.assert_allclose(windowed[:31], full[:31], rtol=1e-4, atol=1e-5)  # first window identical
    assert token_surprisals(model, ids, window=64, stride=5) == pytest.approx(full, rel=1e-4, abs=1e-5)


class IdFeatureLM(torch.nn.Module):
    """Fake LM whose layer-0 state is the token id and layer-1 state the position + 1."""

    config = SimpleNamespace(n_positions=32)

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False, **kw):
        ids = input_ids.float()[..., None]
        pos = torch.ones_like(ids).cumsum(1)
        return SimpleNamespace(logits=None, hidden_states=(ids, pos))


def test_sentence_features_last_and_mean_tokens():
    lm, tok = IdFeatureLM(), tokenizer()
    sents = ["Hello there, world.", "A", "Two words"]
    last = sentence_features(lm, tok, sents, "last", batch_size=2, progress=False)
    mean = sentence_features(lm, tok, sents, "mean", batch_size=2, progress=False)
    for i, s in enumerate(sents):
        ids = tok(s)["input_ids"]
        assert last[0][i, 0] == ids[-1]
        assert last[1][i, 0] == len(ids)
        assert mean[0][i, 0] == pytest.approx(np.mean(ids))
    with pytest.raises(ValueError, match="pool"):
        sentence_features(lm, tok, sents, "max", progress=False)


# --------------------------------------------------------------------------------------------
# logits_to_keep: the reduced-logits path must equal the full-logits path


class FullLogitsOnly(torch.nn.Module):
    """Wraps a causal LM behind a ``forward`` without ``logits_to_keep`` (the fallback path)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids, attention_mask=None, **kw):
        assert "logits_to_keep" not in kw
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


def reference_score(model, requests, batch_size):
    """The scorer before logits_to_keep: full logits, one log-softmax per row (batched, padded)."""
    window = context_window(model)
    inputs = {}
    for i, r in enumerate(requests):
        inputs.setdefault((r.context_ids + r.continuation_ids)[-(window + 1):][:-1], []).append(i)
    order = sorted(inputs, key=lambda s: (-len(s), s))
    out = [None] * len(requests)
    for start in range(0, len(order), batch_size):
        seqs = order[start : start + batch_size]
        ids = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s)
            mask[b, : len(s)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        for b, s in enumerate(seqs):
            logp = torch.log_softmax(logits[b, : len(s)].float(), -1)
            for i in inputs[s]:
                cont = requests[i].continuation_ids
                out[i] = sum(logp[len(s) - len(cont) + k, c].item() for k, c in enumerate(cont))
    return out


def random_requests(seed, n, window):
    """Varied context/continuation lengths, some longer than the window (left truncation), some
    sharing their model input (MMLU-style one-token answers), duplicates included."""
    rng = np.random.default_rng(seed)
    reqs = []
    for _ in range(n):
        ctx = tuple(int(t) for t in rng.integers(0, 50000, rng.integers(1, window + 20)))
        cont = tuple(int(t) for t in rng.integers(0, 50000, rng.integers(1, min(window, 12))))
        reqs.append(LoglikRequest(ctx, cont, len(cont)))
    ctx = tuple(int(t) for t in rng.integers(0, 50000, 9))
    reqs += [LoglikRequest(ctx, (int(a),), 1) for a in rng.integers(0, 50000, 4)]
    reqs += [reqs[0], reqs[-1]]
    return reqs


@pytest.mark.parametrize("make", [lambda: tiny_gpt2(n_positions=32), lambda: tiny_connectome_gpt(block_size=32)],
                         ids=["gpt2", "connectome_gpt"])
@pytest.mark.parametrize("batch_size", [1, 6])
def test_kept_logits_equal_full_logits(make, batch_size, monkeypatch):
    model = make()
    assert accepts_logits_to_keep(model) and not accepts_logits_to_keep(FullLogitsOnly(model))
    assert not accepts_logits_to_keep(BigramLM(random_table()))  # **kw alone does not count
    reqs = random_requests(batch_size, 16, window=32)
    ref = reference_score(model, reqs, batch_size)
    kept = [r.loglik for r in score_requests(model, reqs, batch_size=batch_size, progress=False)]
    full = [r.loglik for r in score_requests(FullLogitsOnly(model), reqs, batch_size=batch_size, progress=False)]
    np.testing.assert_allclose(kept, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(full, ref, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(scoring, "LOGPROB_BLOCK", 3)  # many small normalisation blocks
    small = [r.loglik for r in score_requests(model, reqs, batch_size=batch_size, progress=False)]
    np.testing.assert_allclose(small, ref, rtol=1e-5, atol=1e-5)


def test_logits_at_passes_positions_only_when_supported():
    seen = []

    class Spy(torch.nn.Module):
        config = SimpleNamespace(n_positions=8)

        def forward(self, input_ids, attention_mask=None, logits_to_keep=0):
            seen.append(logits_to_keep)
            keep = logits_to_keep if torch.is_tensor(logits_to_keep) else slice(None)
            return SimpleNamespace(logits=torch.randn(*input_ids.shape, 5)[:, keep])

    ids = torch.zeros(2, 6, dtype=torch.long)
    assert scoring.logits_at(Spy(), ids, torch.tensor([2, 3, 5])).shape == (2, 3, 5)
    assert seen[-1].tolist() == [2, 3, 5]
    assert scoring.logits_at(Spy(), ids, torch.arange(6)).shape == (2, 6, 5)  # all: nothing passed
    assert seen[-1] == 0


@pytest.mark.parametrize("make", [lambda: tiny_gpt2(n_positions=32), lambda: tiny_connectome_gpt(block_size=32)],
                         ids=["gpt2", "connectome_gpt"])
def test_sliding_window_kept_logits_equal_full_logits(make):
    model = make()
    ids = [int(t) for t in np.random.default_rng(3).integers(0, 50000, 150)]
    ref = np.zeros(len(ids) - 1)
    for s, e, first in sliding_windows(len(ids), 32, 12):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids[s:e]])).logits[0].float(), -1)
        for t in range(first, e):
            ref[t - 1] = -logp[t - s - 1, ids[t]].item()
    for bs in (1, 3):
        for m in (model, FullLogitsOnly(model)):
            np.testing.assert_allclose(token_surprisals(m, ids, stride=12, batch_size=bs), ref, rtol=1e-5, atol=1e-5)
    short = ids[:20]  # a single, short window
    np.testing.assert_allclose(token_surprisals(model, short), token_surprisals(FullLogitsOnly(model), short),
                               rtol=1e-5, atol=1e-5)


def test_blocked_cross_entropy_equals_one_cross_entropy():
    logits = torch.randn(300, 1000) * 3
    y = torch.randint(0, 1000, (300,))
    direct = torch.nn.functional.cross_entropy(logits.double(), y, reduction="sum").item()
    assert summed_cross_entropy(logits, y) == pytest.approx(direct, rel=1e-6)
