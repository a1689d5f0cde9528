"""Model-agnostic scoring primitives shared by every evaluation.

Works with any transformers causal LM (``model(input_ids=..., attention_mask=...)`` returning
``.logits`` and, with ``output_hidden_states=True``, ``.hidden_states``), on CPU or GPU.

* :func:`score_requests` -- summed log-likelihood of continuations given contexts, the
  lm-evaluation-harness ``loglikelihood`` request: batched, right-padded (harmless for causal
  attention), context left-truncated to the model's window, requests sorted by length for
  batching, requests with identical model inputs computed once (MMLU's four one-token answers
  share one forward pass), results in input order.
* :func:`token_surprisals` -- per-token surprisal of a long token sequence with a sliding window.
* :func:`sentence_features` -- per-layer hidden states of sentences (last token or mean).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

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


def encode_request(tokenizer, context: str, continuation: str, n_chars: int | None = None) -> LoglikRequest:
    """Tokenise a (context, continuation) pair the lm-evaluation-harness way.

    Trailing spaces of the context move to the continuation; the pair is tokenised as one
    string and split after the context's tokens (so that BPE merges match the joint text); an
    empty context becomes the end-of-text token.
    """
    n_chars = len(continuation) if n_chars is None else n_chars
    if context == "":
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        return LoglikRequest((tokenizer.eos_token_id,), tuple(cont), n_chars)
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
    tokens (the harness's left truncation); the continuation must fit in the window. Inputs are
    deduplicated, sorted longest first, right-padded into batches and run under
    ``inference_mode``; log-probabilities are computed in float32. Results come back in input
    order.
    """
    if not requests:
        return []
    window = context_window(model)
    device = model_device(model)
    # one model input per distinct token sequence
    inputs: dict[tuple[int, ...], list[int]] = {}
    for i, r in enumerate(requests):
        if len(r.continuation_ids) == 0 or len(r.context_ids) == 0:
            raise ValueError(f"request {i} has an empty context or continuation (use the EOS token as context)")
        if len(r.continuation_ids) > window:
            raise ValueError(f"request {i}: continuation of {len(r.continuation_ids)} tokens exceeds the window ({window})")
        full = r.context_ids + r.continuation_ids
        inp = full[-(window + 1) :][:-1]
        inputs.setdefault(inp, []).append(i)
    order = sorted(inputs, key=lambda s: (-len(s), s))
    out: list[LoglikResult | None] = [None] * len(requests)
    for rows in tqdm(list(batches(len(order), batch_size)), desc=desc, disable=not progress, leave=False):
        seqs = [order[j] for j in rows]
        ids, mask = pad_batch(seqs, pad_id, device)
        logits = forward(model, ids, mask, dtype=dtype).logits
        for b, seq in enumerate(seqs):
            reqs = inputs[seq]
            first = len(seq) - max(len(requests[i].continuation_ids) for i in reqs)
            logp = F.log_softmax(logits[b, first : len(seq)].float(), dim=-1)
            for i in reqs:
                cont = requests[i].continuation_ids
                rows_lp = logp[len(seq) - len(cont) - first :]
                target = torch.as_tensor(cont, device=logp.device)
                ll = rows_lp.gather(1, target[:, None]).sum().item()
                out[i] = LoglikResult(ll, len(cont), requests[i].n_chars)
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
    """
    window = window or context_window(model)
    stride = stride or max(1, window // 2)
    device = model_device(model)
    ids_t = torch.as_tensor(list(ids), dtype=torch.long)
    spans = sliding_windows(len(ids_t), window, stride)
    out = np.full(len(ids_t) - 1, np.nan)
    for rows in batches(len(spans), batch_size):
        chunk = [spans[j] for j in rows]
        seqs = [ids_t[s:e].tolist() for s, e, _ in chunk]
        x, mask = pad_batch(seqs, 0, device)
        logits = forward(model, x, mask, dtype=dtype).logits
        for b, (s, e, first) in enumerate(chunk):
            pos = torch.arange(first - s - 1, e - s - 1, device=logits.device)  # predicting positions
            lp = F.log_softmax(logits[b, pos].float(), dim=-1)
            tgt = x[b, pos + 1]
            out[first - 1 : e - 1] = (-lp.gather(1, tgt[:, None])[:, 0]).cpu().numpy()
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
