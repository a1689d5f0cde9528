"""Magnitude pruning of the *remaining* weights, per tensor or globally.

Two rules decide which weights go (``ties``):

* ``"official"`` -- the official ``prune_bottom_pct_of_weights``: each round computes
  ``k = int(fraction * remaining)``, takes the k-th smallest remaining |w| as a threshold and
  prunes the remaining weights *strictly below* it. Tied values at the threshold (e.g. embedding
  rows that never received a gradient, still exactly +-0.02) are never pruned, so a round can
  remove fewer than ``k`` weights.
* ``"random"`` -- round ``g`` (1-based count of pruning rounds) keeps exactly
  ``round(n * (1 - fraction) ** g)`` weights of an ``n``-element tensor (per tensor) or of all
  covered weights together (global); rounding never accumulates, so every tensor's density is
  ``(1 - fraction) ** g`` to within one element. Ties in |w| are broken by a seeded random
  order (not by position, which would prune tied rows in token-id order).

Which tensors are pruned follows the official code by default: every 2-D weight, the token
embedding and the head included. ``include``/``exclude`` regular expressions change that.
"""

from __future__ import annotations

import re

import torch


def prunable_parameters(
    model: torch.nn.Module, include: str = ".*", exclude: str | None = None
) -> dict[str, torch.nn.Parameter]:
    """The 2-D weight tensors whose names match ``include`` and not ``exclude``."""
    inc, exc = re.compile(include), re.compile(exclude) if exclude else None
    out = {
        n: p
        for n, p in model.named_parameters()
        if p.ndim == 2 and inc.search(n) and not (exc and exc.search(n))
    }
    if not out:
        raise ValueError(f"no 2-D parameters match include={include!r} exclude={exclude!r}")
    return out


def full_masks(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """All-True masks (a dense network) for the given tensors."""
    return {n: torch.ones_like(p, dtype=torch.bool, device="cpu") for n, p in params.items()}


def _keep_count(n: int, fraction: float, rounds: int) -> int:
    return int(round(n * (1.0 - fraction) ** rounds))


def _top_k_mask(scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Mask of the ``k`` largest scores; ties broken by a random order drawn from ``generator``."""
    flat = scores.reshape(-1)
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        shuffle = torch.randperm(flat.numel(), generator=generator)
        order = shuffle[torch.sort(flat[shuffle], descending=True, stable=True).indices]
        mask[order[:k]] = True
    return mask.view(scores.shape)


def _official_mask(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """One round of the official rule on ``scores`` (|w| of kept weights, -1 where pruned)."""
    kept = scores >= 0
    remaining = scores[kept]
    k = int(fraction * remaining.numel())
    if k < 1:
        return kept
    threshold = torch.topk(remaining, k, largest=False).values[-1]
    return kept & ~(scores < threshold)


@torch.no_grad()
def magnitude_prune(
    weights: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    fraction: float,
    rounds: int,
    scope: str = "per_tensor",
    ties: str = "random",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """New masks after pruning round ``rounds`` (1 = the first pruning), by the rule ``ties``
    (see the module docstring; ``seed`` orders ties under ``"random"``).

    Only currently kept weights can survive; among them the largest |w| are kept.
    """
    if ties not in ("official", "random"):
        raise ValueError(f"ties must be 'official' or 'random', got {ties!r}")
    if not 0 < fraction < 1:
        raise ValueError("fraction must be in (0, 1)")
    if rounds < 1:
        raise ValueError("rounds counts pruning rounds and starts at 1")
    if set(weights) != set(masks):
        raise ValueError("weights and masks must name the same tensors")
    # pruned positions score -1 so they are never chosen (|w| >= 0 for kept ones)
    scores = {n: torch.where(masks[n], weights[n].detach().float().abs().cpu(), torch.tensor(-1.0)) for n in weights}
    if scope not in ("per_tensor", "global"):
        raise ValueError(f"scope must be 'per_tensor' or 'global', got {scope!r}")
    gen = torch.Generator().manual_seed(int(seed))
    if scope == "per_tensor":
        if ties == "official":
            return {n: _official_mask(s, fraction) for n, s in scores.items()}
        return {n: _top_k_mask(s, min(_keep_count(s.numel(), fraction, rounds), int(masks[n].sum())), gen)
                for n, s in sorted(scores.items())}
    if scope == "global":
        names = sorted(scores)
        flat = torch.cat([scores[n].reshape(-1) for n in names])
        total = sum(s.numel() for s in scores.values())
        keep = min(_keep_count(total, fraction, rounds), int(sum(int(m.sum()) for m in masks.values())))
        kept = _official_mask(flat, fraction) if ties == "official" else _top_k_mask(flat, keep, gen)
        out, i = {}, 0
        for n in names:
            k = scores[n].numel()
            out[n] = kept[i : i + k].view(scores[n].shape)
            i += k
        return out


@torch.no_grad()
def rewind_survivors(
    model: torch.nn.Module, masks: dict[str, torch.Tensor], rewind_state: dict[str, torch.Tensor]
) -> None:
    """Lottery-ticket rewind: survivors take their values from an early iteration of the first
    generation (``rewind_state``), pruned weights are 0; tensors outside ``masks`` are rewound too."""
    params = dict(model.named_parameters())
    for n, p in params.items():
        if n in rewind_state:
            w = rewind_state[n].to(p.device, p.dtype)
            p.copy_(w * masks[n].to(p.device, p.dtype) if n in masks else w)
