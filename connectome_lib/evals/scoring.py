"""Model-agnostic scoring primitives shared by every evaluation.

Works with any transformers causal LM (``model(input_ids=..., attention_mask=...)`` returning
``.logits`` and, with ``output_hidden_states=True``, ``.hidden_states``), on CPU or GPU.

* :func:`score_requests` -- summed log-likelihood of continuations given contexts, the
  lm-evaluation-harness ``loglikelihood`` request: batched, right-padded (harmless for causal
  attention), context left-truncated to the model's window, requests sorted by length for
  batching, requests with identical model inputs computed once (MMLU's four one-token answers
  share one forward pass), results in input order.
* :func:`token_surprisals` -- per-token surprisal of a long token sequence with a sliding window.

Both compute the LM head only at the positions they score (``logits_to_keep``, when the model's
``forward`` has it; see :func:`logits_at`): for a small model with GPT-2's 50k vocabulary the
head and the log-softmax over the vocabulary are most of the cost of a forward pass.
* :func:`sentence_features` -- per-layer hidden states of sentences (last token or mean).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import weakref
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

# --------------------------------------------------------------------------------------------
# model plumbing


def context_window(model: torch.nn.Module) -> int:
    """The model's maximum sequence length, read from its config.

    Looks for ``n_positions`` (GPT-2), ``max_position_embeddings`` (most models, ours too) and
    ``block_size`` (nanoGPT style), in that order.
    """
    cfg = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "block_size"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(
        "cannot tell the model's context window: its config has none of n_positions, "
        "max_position_embeddings, block_size"
    )


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/``None`` -> CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast(device: torch.device, dtype: str = "float32") -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked for; float32 (no autocast) otherwise, and always on CPU."""
    if dtype == "bfloat16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # a parameter-free fake model
        return torch.device("cpu")


_KEEPS_LOGITS: "weakref.WeakKeyDictionary[torch.nn.Module, bool]" = weakref.WeakKeyDictionary()


def accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether ``model.forward`` has a ``logits_to_keep`` parameter (transformers v5 causal LMs
    and ours do); inspected once per model and cached.

    A bare ``**kwargs`` does not count: a model that silently swallowed the argument would
    return every position's logits.
    """
    try:
        return _KEEPS_LOGITS[model]
    except (KeyError, TypeError):
        pass
    try:
        ok = "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # no introspectable signature
        ok = False
    try:
        _KEEPS_LOGITS[model] = ok
    except TypeError:  # not weak-referenceable: just do not cache
        pass
    return ok


def forward(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    hidden_states: bool = False,
    dtype: str = "float32",
):
    """One inference-mode forward pass; returns the model output."""
    device = input_ids.device
    kwargs = {"input_ids": input_ids}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask
    if hidden_states:
        kwargs["output_hidden_states"] = True
    with torch.inference_mode(), autocast(device, dtype):
        return model(**kwargs)


def logits_at(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    positions: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    dtype: str = "float32",
) -> torch.Tensor:
    """Logits at the sequence ``positions`` (1-D, sorted, the same for every row) only:
    ``(batch, len(positions), vocab)``.

    With a small model and GPT-2's 50k vocabulary the LM head (``T x C x V``) dominates the cost
    of a forward pass, so the head is computed only where needed by passing the positions as
    ``logits_to_keep`` when the model supports it; otherwise (or if the model ignored it) the
    full logits are computed and indexed, with the same result.
    """
    device = input_ids.device
    positions = positions.to(device)
    kwargs = {"input_ids": input_ids}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask
    if accepts_logits_to_keep(model) and len(positions) < input_ids.shape[1]:
        kwargs["logits_to_keep"] = positions
    with torch.inference_mode(), autocast(device, dtype):
        logits = model(**kwargs).logits
        if logits.shape[1] != len(positions):  # full logits (no support, or nothing to drop)
            logits = logits[:, positions]
    return logits


LOGPROB_BLOCK = 64
"""Rows of logits normalised together by :func:`token_logprobs` (64 x 50k float32 = 13 MB)."""


def token_logprobs(logits: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits[rows[m]])[targets[m]]`` for every ``m``, in float32.

    ``logits`` is ``(N, V)``; ``rows`` and ``targets`` are 1-D of the same length ``M`` (a row
    may appear several times, e.g. MMLU's four one-token answers after one context: it is
    normalised once). The rows are normalised in consecutive blocks of :data:`LOGPROB_BLOCK`
    (views, no copy), skipping blocks that hold no requested row: one vocabulary-sized
    log-softmax over a whole batch allocates hundreds of MB per call, which on CPU costs ~3x
    more than reusing a small, cache-resident block (measured for 4,096 x 50,304).
    """
    device = logits.device
    rows, targets = rows.to(device), targets.to(device)
    order = torch.argsort(rows)
    sorted_rows = rows[order]
    starts = torch.arange(0, logits.shape[0] + LOGPROB_BLOCK, LOGPROB_BLOCK, device=device)
    bounds = torch.searchsorted(sorted_rows, starts).tolist()  # requests of block k: bounds[k:k+2]
    out = torch.empty(len(rows), dtype=torch.float32, device=device)
    for k, start in enumerate(range(0, logits.shape[0], LOGPROB_BLOCK)):
        if bounds[k] == bounds[k + 1]:
            continue
        lp = F.log_softmax(logits[start : start + LOGPROB_BLOCK].float(), dim=-1)
        sel = order[bounds[k] : bounds[k + 1]]
        out[sel] = lp[rows[sel] - start, targets[sel]]
    return out


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists into ``(input_ids, attention_mask)``."""
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def batches(n: int, batch_size: int) -> Iterator[range]:
    for start in range(0, n, batch_size):
        yield range(start, min(start + batch_size, n))


# --------------------------------------------------------------------------------------------
# log-likelihood of continuations


@dataclass(frozen=True)
class LoglikRequest:
    """A continuation to score after a context, as token ids.

    ``n_chars`` is the character length used for character normalisation (for the harness: the
    choice text *without* the leading space that separates it from the context).
    """

    context_ids: tuple[int, ...]
    continuation_ids: tuple[int, ...]
    n_chars: int


@dataclass(frozen=True)
class LoglikResult:
    """Summed log-likelihood (nats) of a continuation, its token count and character count."""

    loglik: float
    n_tokens: int
    n_chars: int


def prefix_token_id(tokenizer) -> int:
    """The token an empty context becomes: the tokenizer's BOS token, else its EOS token.

    This is lm-evaluation-harness's ``HFLM.prefix_token_id``. For GPT-2 both are
    ``<|endoftext|>`` (50256); for a byte-level BPE trained here ``<|endoftext|>`` is id 0. The
    id is always read from the tokenizer, never assumed.
    """
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise ValueError("the tokenizer has neither a BOS nor an EOS token: an empty context cannot be scored")


def encode_request(tokenizer, context: str, continuation: str, n_chars: int | None = None) -> LoglikRequest:
    """Tokenise a (context, continuation) pair the lm-evaluation-harness way.

    Trailing spaces of the context move to the continuation; the pair is tokenised as one
    string and split after the context's tokens (so that BPE merges match the joint text); an
    empty context becomes :func:`prefix_token_id` (when the continuation itself starts with
    that token, its first token is the context instead, as in the harness).
    """
    n_chars = len(continuation) if n_chars is None else n_chars
    if context == "":
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        prefix = prefix_token_id(tokenizer)
        if cont and cont[0] == prefix:
            return LoglikRequest((prefix,), tuple(cont[1:]), n_chars)
        return LoglikRequest((prefix,), tuple(cont), n_chars)
    stripped = context.rstrip(" ")
    if len(stripped) != len(context):
        continuation = context[len(stripped) :] + continuation
        context = stripped
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    return LoglikRequest(tuple(ctx), tuple(whole[len(ctx) :]), n_chars)


def score_requests(
    model: torch.nn.Module,
    requests: Sequence[LoglikRequest],
    batch_size: int = 16,
    dtype: str = "float32",
    pad_id: int = 0,
    progress: bool = True,
    desc: str = "loglikelihood",
) -> list[LoglikResult]:
    """Summed log-likelihood of every request's continuation given its context.

    The model input is ``(context + continuation)[-(W + 1):][:-1]`` for a window of ``W``
    tokens (the harness's left truncation). A continuation longer than the window (possible
    with the small models of the CPU profiles, e.g. a 72-token HellaSwag ending against a
    64-token window) is scored with the sliding window of :func:`token_surprisals` over the
    last ``W`` context tokens plus the continuation, so that each of its tokens still sees at
    least half a window of left context. Inputs are
    deduplicated, sorted longest first, right-padded into batches and run under
    ``inference_mode``; log-probabilities are computed in float32. Results come back in input
    order.

    Only the positions that predict a continuation token matter, so per batch the union of
    those positions is passed to the model as ``logits_to_keep`` (see :func:`logits_at`; models
    without it get full logits, indexed afterwards), and the log-softmax is computed once per
    needed position for all requests of the batch together, in float32
    (:func:`token_logprobs`).
    """
    if not requests:
        return []
    window = context_window(model)
    device = model_device(model)
    # one model input per distinct token sequence
    inputs: dict[tuple[int, ...], list[int]] = {}
    out: list[LoglikResult | None] = [None] * len(requests)
    for i, r in enumerate(requests):
        if len(r.continuation_ids) == 0 or len(r.context_ids) == 0:
            raise ValueError(f"request {i} has an empty context or continuation (use the EOS token as context)")
        if len(r.continuation_ids) > window:
            full = r.context_ids[-window:] + r.continuation_ids
            surprisal = token_surprisals(model, full, batch_size=batch_size, dtype=dtype, window=window)
            out[i] = LoglikResult(-float(surprisal[-len(r.continuation_ids):].sum()), len(r.continuation_ids),
                                  r.n_chars)
            continue
        full = r.context_ids + r.continuation_ids
        inp = full[-(window + 1) :][:-1]
        inputs.setdefault(inp, []).append(i)
    order = sorted(inputs, key=lambda s: (-len(s), s))
    for rows in tqdm(list(batches(len(order), batch_size)), desc=desc, disable=not progress, leave=False):
        seqs = [order[j] for j in rows]
        ids, mask = pad_batch(seqs, pad_id, device)
        reqs = [(b, i) for b, seq in enumerate(seqs) for i in inputs[seq]]
        # continuation token k of a request with L tokens is predicted at position len(seq) - L + k
        needed = torch.zeros(ids.shape[1], dtype=torch.bool)
        for b, i in reqs:
            needed[len(seqs[b]) - len(requests[i].continuation_ids) : len(seqs[b])] = True
        keep = needed.nonzero()[:, 0]
        slot = needed.long().cumsum(0) - 1  # sequence position -> index among the kept ones
        logits = logits_at(model, ids, keep, mask, dtype)  # (B, K, V)
        # flatten every (request, continuation token) of the batch, then score them all at once
        owner, row, pos, tgt = [], [], [], []
        for r, (b, i) in enumerate(reqs):
            cont = requests[i].continuation_ids
            owner += [r] * len(cont)
            row += [b] * len(cont)
            pos += range(len(seqs[b]) - len(cont), len(seqs[b]))
            tgt += cont
        flat_rows = torch.tensor(row) * len(keep) + slot[torch.tensor(pos)]  # rows of (B*K, V)
        lp = token_logprobs(logits.reshape(-1, logits.shape[-1]), flat_rows, torch.tensor(tgt))
        sums = torch.zeros(len(reqs), dtype=torch.float64, device=lp.device)
        sums.index_add_(0, torch.tensor(owner, device=lp.device), lp.double())
        for (_b, i), ll in zip(reqs, sums.tolist()):
            out[i] = LoglikResult(ll, len(requests[i].continuation_ids), requests[i].n_chars)
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# surprisal of long sequences


def sliding_windows(n: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """``(start, end, first_scored)`` windows over a sequence of ``n`` tokens.

    The first window is ``[0, min(n, window))`` and scores targets ``1 .. end-1``. Each next
    window starts ``stride`` tokens later -- except the last, which is moved back to end exactly
    at ``n`` so that it is full -- and scores only the targets not scored yet (those at or after
    the previous window's end). A newly scored target therefore always sees at least
    ``window - stride`` tokens of left context (``window / 2`` for the default stride).
    """
    if window < 2:
        raise ValueError("window must be >= 2")
    if not 1 <= stride <= window - 1:
        raise ValueError(f"stride must lie in [1, window-1] = [1, {window - 1}], got {stride}")
    out = [(0, min(n, window), 1)]
    while out[-1][1] < n:
        prev_start, prev_end, _ = out[-1]
        start = min(prev_start + stride, n - window)
        out.append((start, start + window, prev_end))
    return out


def token_surprisals(
    model: torch.nn.Module,
    ids: Sequence[int],
    stride: int | None = None,
    batch_size: int = 8,
    dtype: str = "float32",
    window: int | None = None,
) -> np.ndarray:
    """Surprisal (nats) of ``ids[t]`` given ``ids[:t]`` for ``t = 1 .. len(ids)-1``.

    Sequences longer than the model's window are scored with :func:`sliding_windows`
    (``stride`` defaults to half the window). Returns an array of ``len(ids) - 1`` floats.

    Only the positions predicting a window's newly scored targets are needed, so they are
    passed as ``logits_to_keep`` (see :func:`logits_at`); the first window, which scores nearly
    every position, is batched alone so that it does not widen the kept range of the others.
    """
    window = window or context_window(model)
    stride = stride or max(1, window // 2)
    device = model_device(model)
    ids_t = torch.as_tensor(list(ids), dtype=torch.long)
    spans = sliding_windows(len(ids_t), window, stride)
    out = np.full(len(ids_t) - 1, np.nan)
    # The first window scores (almost) all its positions, the later ones only their last
    # ``stride`` or so targets; keeping the first window in a batch of its own lets every other
    # batch compute the LM head on the newly scored positions only.
    groups = [[0]] + [[j + 1 for j in rows] for rows in batches(len(spans) - 1, batch_size)]
    for group in groups:
        chunk = [spans[j] for j in group]
        seqs = [ids_t[s:e].tolist() for s, e, _ in chunk]
        x, mask = pad_batch(seqs, 0, device)
        # window-relative positions predicting the new targets: first-s-1 .. e-s-2 for each window
        lo = min(first - s - 1 for s, _, first in chunk)
        hi = max(e - s - 1 for s, e, _ in chunk)
        keep = torch.arange(lo, hi)
        logits = logits_at(model, x, keep, mask, dtype)  # (B, hi - lo, V)
        # logits row b * K + k predicts x[b, lo + k + 1]; score only each window's new targets
        K = hi - lo
        new = [(b, first - s - 1 - lo, e - s - 1 - lo) for b, (s, e, first) in enumerate(chunk)]
        rows = torch.cat([torch.arange(b * K + a, b * K + z) for b, a, z in new])
        tgt = x[:, lo + 1 : hi + 1].reshape(-1)[rows.to(x.device)]  # hi <= longest window - 1
        surprisal = (-token_logprobs(logits.reshape(-1, logits.shape[-1]), rows, tgt)).cpu().numpy()
        done = 0
        for (_b, a, z), (_s, e, first) in zip(new, chunk):
            out[first - 1 : e - 1] = surprisal[done : done + z - a]
            done += z - a
    assert not np.isnan(out).any()
    return out


# --------------------------------------------------------------------------------------------
# hidden states


def sentence_features(
    model: torch.nn.Module,
    tokenizer,
    sentences: Sequence[str],
    pool: str = "last",
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
    desc: str = "hidden states",
) -> list[np.ndarray]:
    """Per-layer sentence representations: a list of ``n_layer + 1`` arrays ``(n_sentences, d)``.

    Layer 0 is the embedding output, layer ``k`` the residual stream after block ``k`` (the
    transformers convention; the last one has the final normalisation applied). ``pool`` is
    ``"last"`` (hidden state of the sentence's last token, position ``length - 1`` in a
    right-padded batch) or ``"mean"`` (mean over the sentence's tokens). Sentences are tokenised
    without any prefix; sentences longer than the window keep their last tokens. Returned in
    input order, float32.
    """
    if pool not in ("last", "mean"):
        raise ValueError(f"pool must be 'last' or 'mean', got {pool!r}")
    window = context_window(model)
    device = model_device(model)
    enc = [tokenizer(s, add_special_tokens=False)["input_ids"][-window:] for s in sentences]
    if any(len(e) == 0 for e in enc):
        raise ValueError("a sentence tokenises to nothing")
    order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
    layers: list[np.ndarray] | None = None
    for rows in tqdm(list(batches(len(order), batch_size)), desc=desc, disable=not progress, leave=False):
        idx = [order[j] for j in rows]
        ids, mask = pad_batch([enc[i] for i in idx], 0, device)
        hs = forward(model, ids, mask, hidden_states=True, dtype=dtype).hidden_states
        if layers is None:
            layers = [np.zeros((len(enc), h.shape[-1]), dtype=np.float32) for h in hs]
        lengths = mask.sum(1)
        for k, h in enumerate(hs):
            h = h.float()
            if pool == "last":
                vec = h[torch.arange(h.shape[0], device=h.device), lengths - 1]
            else:
                m = mask[:, :, None].to(h.dtype)
                vec = (h * m).sum(1) / m.sum(1)
            layers[k][idx] = vec.cpu().numpy()
    assert layers is not None
    return layers


def nats_to_bits(x):
    return x / math.log(2)
