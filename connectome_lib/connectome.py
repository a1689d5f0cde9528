"""The model connectome: for each pruned tensor, a binary mask and the signs of its survivors.

A :class:`Connectome` is what the outer loop hands to the inner loop. It is an explicit object
(as open_lth's masks are), saved compactly — masks bit-packed, signs bit-packed for surviving
positions only — in a ``safetensors`` file together with the model config it belongs to and a
SHA-256 checksum of its payload. A paper-size connectome takes about 31 MB on disk against
~650 MB for the official fp32 checkpoint.

Signs are three-valued (``int8`` -1/0/+1), as ``torch.sign`` in the official code: a surviving
weight that is exactly 0 at the end of a generation has sign 0 and restarts at 0, not at
``-reset_value``. File format 2 stores, per tensor, the mask bits, one "positive" bit and one
"zero" bit per survivor; format-1 files (no zero bits: every survivor is ±1) still load.

Saving is byte-deterministic: the same connectome always gives the same file (the safetensors
header is written here, with sorted keys, because the ``safetensors`` library writes its
metadata in a random order), so a file's SHA-256 identifies the connectome it holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file

from .layout import atomic_file
from .params import kind_of, layer_of

FORMAT_VERSION = "2"
#: formats :meth:`Connectome.load` reads: "1" (signs ±1 only) and "2" (signs -1/0/+1)
READABLE_VERSIONS = ("1", "2")


class ConnectomeError(ValueError):
    """A connectome file is corrupt, or a connectome does not fit the model it is applied to."""


@dataclass
class Connectome:
    """Masks (``True`` = connection kept) and signs (``int8``: +1, -1, or 0 for a survivor that
    was exactly zero) per tensor name.

    ``signs`` are 0 wherever ``masks`` is ``False``. Boolean signs are accepted for convenience
    (``True`` = +1, ``False`` = -1 on the mask); numeric ones are reduced to their sign.
    ``model_config`` is the ``to_dict()`` of the model config the connectome was taken from.
    """

    masks: dict[str, torch.Tensor]
    signs: dict[str, torch.Tensor]
    model_config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.masks) != set(self.signs):
            raise ConnectomeError("masks and signs must name the same tensors")
        for n in self.masks:
            if self.masks[n].shape != self.signs[n].shape:
                raise ConnectomeError(f"mask and sign of {n} differ in shape")
            self.masks[n] = self.masks[n].to(torch.bool).cpu()
            s = self.signs[n].cpu()
            s = torch.where(s, 1, -1) if s.dtype == torch.bool else torch.sign(s)
            self.signs[n] = (s.to(torch.int8) * self.masks[n]).to(torch.int8)

    # ---------------------------------------------------------------------------------- build
    @classmethod
    def from_model(
        cls, model: torch.nn.Module, masks: dict[str, torch.Tensor], meta: dict | None = None
    ) -> "Connectome":
        """Take the signs of ``model``'s weights at the positions kept by ``masks``."""
        params = dict(model.named_parameters())
        missing = [n for n in masks if n not in params]
        if missing:
            raise ConnectomeError(f"model has no parameters named {missing[:3]}")
        signs = {n: torch.sign(params[n].detach().cpu()).to(torch.int8) for n in masks}
        config = model.config.to_dict() if hasattr(model, "config") else {}
        return cls({n: m.detach().cpu() for n, m in masks.items()}, signs, _config_fingerprint_dict(config),
                   dict(meta or {}))

    def random_control(self, seed: int) -> "Connectome":
        """The RandomConnectome control: in every tensor the same number of kept connections,
        at uniformly random positions, with random signs ±1 (never 0; seeded, reproducible)."""
        g = torch.Generator().manual_seed(int(seed))
        masks, signs = {}, {}
        for n in sorted(self.masks):
            m = self.masks[n]
            k = int(m.sum())
            flat = torch.zeros(m.numel(), dtype=torch.bool)
            flat[torch.randperm(m.numel(), generator=g)[:k]] = True
            masks[n] = flat.view(m.shape)
            signs[n] = torch.where(torch.rand(m.shape, generator=g) < 0.5, 1, -1).to(torch.int8) * masks[n]
        meta = {"kind": "random_control", "seed": int(seed), "matched_to": self.meta.get("kind", "connectome")}
        return Connectome(masks, signs, dict(self.model_config), meta)

    def row_matched_control(self, seed: int, rounds: int = 12) -> "Connectome":
        """The RowMatchedRandom control: in every matrix, exactly the evolved mask's kept count in
        *every row and every column*, with the positions otherwise random, and random signs ±1
        (never 0); a 1-D tensor keeps its count at uniformly random positions. For ``wte`` and
        ``lm_head`` a row is a token, so the token-frequency prior the pruning leaves (embedding
        row density tracks token frequency) is kept while the wiring within rows is random. It
        separates what the connectome's density profile does from what its wiring does.

        Both margins are kept exactly in every matrix, the paper-size ``wte``/``lm_head``
        (50304 x 768) included -- no per-row-only fallback is needed (about 5 s of CPU time per
        such matrix, 0.04 s for a 1024 x 64 one; ~50 s for a whole paper-size connectome). The
        positions are randomised by :func:`_margin_preserving_shuffle`, ``rounds`` passes of the
        "curveball" Markov chain, a batched form of checkerboard swaps (each pair trade is a set
        of swaps at once; 12 passes change as many cells as ~2.2 x kept accepted swaps). They
        bring the overlap with the evolved mask to within ~0.001 of what an independent random
        matrix with the same margins gives (``survivor_overlap(...)["expected_margins"]``), e.g.
        0.261 at density 0.26 with even rows. Seeded and reproducible (for a given NumPy)."""
        rng = np.random.default_rng(int(seed))
        masks, signs = {}, {}
        for n in sorted(self.masks):
            m = self.masks[n].numpy()
            if m.ndim == 2:
                new = _margin_preserving_shuffle(m, rng, rounds)
            else:
                flat = np.zeros(m.size, dtype=bool)
                flat[rng.permutation(m.size)[: int(m.sum())]] = True
                new = flat.reshape(m.shape)
            masks[n] = torch.from_numpy(new)
            sign = np.where(rng.random(m.shape) < 0.5, 1, -1).astype(np.int8) * new
            signs[n] = torch.from_numpy(sign.astype(np.int8))
        meta = {"kind": "row_matched_control", "seed": int(seed), "rounds": int(rounds),
                "matched_to": self.meta.get("kind", "connectome")}
        return Connectome(masks, signs, dict(self.model_config), meta)

    # -------------------------------------------------------------------------------- apply
    def check_compatible(self, model: torch.nn.Module) -> None:
        """Raise :class:`ConnectomeError` unless every tensor exists in ``model`` with the same
        shape and the model's config matches the one the connectome was taken from."""
        params = dict(model.named_parameters())
        for n, m in self.masks.items():
            if n not in params:
                raise ConnectomeError(f"connectome tensor {n!r} does not exist in the model")
            if tuple(params[n].shape) != tuple(m.shape):
                raise ConnectomeError(
                    f"connectome tensor {n!r} has shape {tuple(m.shape)} but the model's has {tuple(params[n].shape)}"
                )
        if self.model_config and hasattr(model, "config"):
            mine, theirs = self.model_config, _config_fingerprint_dict(model.config.to_dict())
            diff = {k: (mine.get(k), theirs.get(k)) for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)}
            if diff:
                raise ConnectomeError(f"connectome belongs to another model config: {diff} (connectome, model)")

    @torch.no_grad()
    def init_model(self, model: torch.nn.Module, value: float = 0.02) -> torch.nn.Module:
        """Initialise ``model`` in place from the connectome: ``sign * value`` on the mask (so 0
        where the sign is 0) and exactly 0 elsewhere, for every tensor the connectome covers
        (others keep their init)."""
        self.check_compatible(model)
        params = dict(model.named_parameters())
        for n, _m in self.masks.items():
            p = params[n]
            w = self.signs[n].to(torch.float32) * value
            p.copy_(w.to(device=p.device, dtype=p.dtype))
        return model

    # ------------------------------------------------------------------------------ reports
    def density_table(self) -> pd.DataFrame:
        """One row per tensor: name, layer, kind, shape, numel, kept, density, positive share
        (survivors with sign +1 over all survivors)."""
        rows = []
        for n in self.masks:
            m = self.masks[n]
            kept = int(m.sum())
            rows.append(
                dict(
                    tensor=n,
                    layer=layer_of(n),
                    kind=kind_of(n),
                    shape="x".join(map(str, m.shape)),
                    numel=m.numel(),
                    kept=kept,
                    density=kept / m.numel(),
                    positive_fraction=(int((self.signs[n] > 0).sum()) / kept) if kept else float("nan"),
                )
            )
        return pd.DataFrame(rows)

    def density_by_layer(self) -> pd.DataFrame:
        t = self.density_table().groupby("layer", sort=True)[["numel", "kept"]].sum()
        t["density"] = t["kept"] / t["numel"]
        return t.reset_index()

    def density(self) -> float:
        """Overall density: kept connections / connections in the covered tensors."""
        kept = sum(int(m.sum()) for m in self.masks.values())
        total = sum(m.numel() for m in self.masks.values())
        return kept / total if total else float("nan")

    def jaccard(self, other: "Connectome") -> pd.DataFrame:
        """Overlap (Jaccard index of kept positions) per tensor with another connectome, plus
        ``sign_agreement``: the share of shared positions whose signs (-1/0/+1) are equal."""
        rows = []
        for n, a, b in _paired_masks(self, other, self.masks):
            inter, union = int((a & b).sum()), int((a | b).sum())
            both = a & b
            agree = int(((self.signs[n] == other.signs[n]) & both).sum())
            rows.append(dict(tensor=n, layer=layer_of(n), intersection=inter, union=union,
                             jaccard=inter / union if union else float("nan"),
                             sign_agreement=agree / inter if inter else float("nan")))
        return pd.DataFrame(rows)

    def overall_jaccard(self, other: "Connectome") -> float:
        t = self.jaccard(other)
        return float(t["intersection"].sum() / t["union"].sum())

    # --------------------------------------------------------------------------------- I/O
    def _payload(self) -> dict[str, np.ndarray]:
        """Format 2: mask bits; per survivor, a "positive" bit and a "zero" bit."""
        arrays = {}
        for n in sorted(self.masks):
            m = self.masks[n].numpy().reshape(-1)
            s = self.signs[n].numpy().reshape(-1)[m]
            arrays[f"mask::{n}"] = np.packbits(m)
            arrays[f"sign::{n}"] = np.packbits(s > 0)
            arrays[f"zero::{n}"] = np.packbits(s == 0)
        return arrays

    @staticmethod
    def _checksum(arrays: dict[str, np.ndarray], header: str) -> str:
        h = hashlib.sha256(header.encode())
        for k in sorted(arrays):
            h.update(k.encode())
            h.update(arrays[k].tobytes())
        return h.hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        """Save atomically (temporary file, then rename) as bit-packed safetensors; the same
        connectome always gives the same bytes."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = self._payload()
        header = json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "shapes": {n: list(self.masks[n].shape) for n in sorted(self.masks)},
                "model_config": self.model_config,
                "meta": self.meta,
            },
            sort_keys=True,
        )
        metadata = {"connectome": header, "sha256": self._checksum(arrays, header)}
        with atomic_file(path) as tmp, open(tmp, "wb") as f:
            _write_safetensors(f, arrays, metadata)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Connectome":
        """Load and verify a connectome; a corrupt or foreign file raises :class:`ConnectomeError`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no connectome at {path}; run the 'evolve' stage first")
        hint = (f"delete {path.parent} and run `connectome evolve` again to recompute that generation"
                if path.parent.name.startswith("gen_") else "delete it and run `connectome evolve` again to rewrite it")
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as f:
                md = f.metadata() or {}
            arrays = load_file(str(path))
        except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
            detail = " ".join(str(e).split())
            raise ConnectomeError(f"{path} is not a readable connectome file ({detail}); {hint}") from e
        if "connectome" not in md or "sha256" not in md:
            raise ConnectomeError(f"{path} is a safetensors file but not a connectome (no connectome metadata); {hint}")
        header = md["connectome"]
        if cls._checksum(arrays, header) != md["sha256"]:
            raise ConnectomeError(f"{path} is corrupt: its checksum does not match its contents; {hint}")
        info = json.loads(header)
        version = info.get("format_version")
        if version not in READABLE_VERSIONS:
            raise ConnectomeError(
                f"{path}: unsupported connectome format {version!r} (this version reads {', '.join(READABLE_VERSIONS)})"
            )
        masks, signs = {}, {}
        for n, shape in info["shapes"].items():
            numel = int(np.prod(shape))
            m = np.unpackbits(arrays[f"mask::{n}"], count=numel).astype(bool)
            kept = int(m.sum())
            positive = np.unpackbits(arrays[f"sign::{n}"], count=kept).astype(bool)
            survivors = np.where(positive, 1, -1).astype(np.int8)
            if version != "1":  # format 1 has no zero bits: every survivor is +1 or -1
                survivors[np.unpackbits(arrays[f"zero::{n}"], count=kept).astype(bool)] = 0
            s = np.zeros(numel, dtype=np.int8)
            s[m] = survivors
            masks[n] = torch.from_numpy(m.reshape(shape))
            signs[n] = torch.from_numpy(s.reshape(shape))
        return cls(masks, signs, info["model_config"], info["meta"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Connectome) or set(self.masks) != set(other.masks):
            return False
        return all(torch.equal(self.masks[n], other.masks[n]) and torch.equal(self.signs[n], other.signs[n])
                   for n in self.masks)


def _deal(lengths: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For consecutive segments of ``lengths`` slots, a boolean array over all the slots with a
    uniformly random ``k[q]``-subset of segment ``q``'s slots set (every subset equally likely).

    Many short segments: a partial Fisher-Yates shuffle of each segment's slot numbers, one step
    for all segments at once (``max(k)`` steps). Few long ones: each segment's labels (k "dealt",
    the rest not, padding after) shuffled whole with ``Generator.permuted``; dropping the padding
    leaves a uniformly random order of the labels."""
    nseg = lengths.size
    total = int(lengths.sum())
    kmax = int(k.max()) if nseg else 0
    out = np.zeros(total, dtype=bool)
    if kmax == 0:
        return out
    width = int(lengths.max())
    if kmax * 700 + 1.8 * float(k.sum()) > nseg * width:  # cost model, in units of one shuffled slot
        slot = np.arange(width)
        labels = (slot < lengths[:, None]).astype(np.int8) + (slot < k[:, None]) - 1  # -1 pad, 0, 1 dealt
        labels = rng.permuted(labels, axis=1)
        return labels[labels >= 0] == 1
    order = np.argsort(-k, kind="stable")  # segments by k, descending: those still dealing are a prefix
    ks, ls = k[order], lengths[order].astype(np.float32)
    active = nseg - np.cumsum(np.bincount(ks, minlength=kmax + 1))[:-1]  # segments with k > j
    slots = np.empty((nseg, width), dtype=np.int16 if width < 2**15 else np.int32)
    slots[:] = np.arange(width)
    flat, base = slots.reshape(-1), np.arange(nseg) * width
    u = np.empty(nseg, dtype=np.float32)
    for j in range(kmax):
        a = int(active[j])
        rng.random(out=u[:a], dtype=np.float32)
        here = base[:a] + j
        there = here + np.minimum(u[:a] * (ls[:a] - j), ls[:a] - j - 1).astype(np.intp)  # uniform in [j, length)
        first = flat[here]
        flat[here] = flat[there]
        flat[there] = first
    keep = np.arange(kmax)[None, :] < ks[:, None]
    starts = (np.cumsum(lengths) - lengths)[order]
    out[(starts[:, None] + slots[:, :kmax])[keep]] = True
    return out


def _curveball_pass(m: np.ndarray, rng: np.random.Generator) -> None:
    """One pass of the global curveball chain (Strona et al. 2014; Carstens 2016), in place: the
    rows of ``m`` are paired at random, and each pair's differing cells (columns where exactly
    one of the two rows is kept) are re-dealt uniformly at random between the two rows, each row
    keeping its count. A column holds exactly one survivor of the pair before and after, so no
    row or column count changes; each trade is equivalent to a set of checkerboard swaps, and
    the chain's stationary distribution is uniform over the matrices with these margins."""
    half = m.shape[0] // 2
    if half == 0:
        return
    perm = rng.permutation(m.shape[0])
    ia, ib = perm[:half], perm[half: 2 * half]
    a, b = m[ia], m[ib]
    x = a ^ b
    nx = x.sum(1)
    if not nx.any():
        return
    na = (a & x).sum(1)
    a_smaller = na <= nx - na  # deal the smaller side's cells; the other row takes the rest
    dealt = np.zeros_like(x)
    dealt[x] = _deal(nx, np.where(a_smaller, na, nx - na), rng)
    dealt ^= ~a_smaller[:, None]
    dealt &= x  # a's cells among the differing ones
    both = a & b
    m[ia] = both | dealt
    m[ib] = both | (x & ~dealt)


def _margin_preserving_shuffle(mask: np.ndarray, rng: np.random.Generator, rounds: int) -> np.ndarray:
    """A random binary matrix with exactly the row and column sums of ``mask``: ``rounds`` passes
    of :func:`_curveball_pass`, alternating between pairing rows and pairing columns (both keep
    both margins; alternating mixes faster than either alone)."""
    m = np.array(mask, dtype=bool, copy=True)
    for r in range(int(rounds)):
        if r % 2 == 0:
            _curveball_pass(m, rng)
        else:
            t = np.ascontiguousarray(m.T)
            _curveball_pass(t, rng)
            m = np.ascontiguousarray(t.T)
    return m


def _paired_masks(a: Connectome, b: Connectome, names):
    """``(name, a's mask, b's mask)`` for every tensor in ``names`` (an ordering of ``a``'s);
    :class:`ConnectomeError` unless both cover the same tensors with the same shapes."""
    if set(a.masks) != set(b.masks):
        raise ConnectomeError("connectomes cover different tensors")
    for n in names:
        if a.masks[n].shape != b.masks[n].shape:
            raise ConnectomeError(f"tensor {n} differs in shape")
        yield n, a.masks[n], b.masks[n]


def survivor_overlap(a: Connectome, b: Connectome) -> pd.DataFrame:
    """How many of ``a``'s survivors are also ``b``'s, per tensor and over all (``tensor = all``),
    against chance -- e.g. for two connectomes evolved from different outer-loop seeds.

    Columns: ``tensor, layer, kind, numel, kept_a, kept_b, shared``; ``observed`` (shared /
    kept_a); ``expected``: the share if b's survivors were placed uniformly at random at b's
    density (= kept_b / numel, b's density; for ``all`` the kept_a-weighted mean of the
    per-tensor values); ``ratio`` (observed / expected; 1 = chance); ``chance_sd``: the SD of
    ``observed`` under that chance (hypergeometric, ~ sqrt(d (1 - d) / kept_a)); and
    ``expected_margins``: the chance share if b's survivors were random but kept b's row and
    column counts (what :meth:`Connectome.row_matched_control` gives), approximated by
    P(cell i, j kept) = min(1, r_i c_j / kept_b) -- above ``expected`` when rows differ in
    density, as the token rows do. For two independently evolved connectomes a ratio above 1
    is structure that evolution finds again; ``observed`` above ``expected_margins`` is more
    than their shared density profile explains."""
    rows = []
    for n, ma, mb in _paired_masks(a, b, sorted(a.masks)):
        numel, ka, kb, shared = ma.numel(), int(ma.sum()), int(mb.sum()), int((ma & mb).sum())
        d = kb / numel if numel else float("nan")
        var = ka * d * (1 - d) * (numel - ka) / (numel - 1) if numel > 1 else 0.0  # hypergeometric
        if ma.ndim == 2 and kb:
            r, c = mb.sum(1, dtype=torch.float64), mb.sum(0, dtype=torch.float64) / kb
            margins_shared = sum(float((torch.clamp(r[i: i + 4096, None] * c, max=1.0) * ma[i: i + 4096]).sum())
                                 for i in range(0, len(r), 4096))  # in row blocks: bounded memory
        else:
            margins_shared = ka * d
        rows.append({"tensor": n, "layer": layer_of(n), "kind": kind_of(n), "numel": numel, "kept_a": ka,
                     "kept_b": kb, "shared": shared, "_exp": ka * d, "_var": var, "_marg": margins_shared})
    t = pd.DataFrame(rows)
    total = t[["numel", "kept_a", "kept_b", "shared", "_exp", "_var", "_marg"]].sum()
    t = pd.concat([t, pd.DataFrame([{"tensor": "all", "layer": "all", "kind": "all", **total.to_dict()}])],
                  ignore_index=True)
    ka = t["kept_a"].where(t["kept_a"] > 0)
    t["observed"] = t["shared"] / ka
    t["expected"] = (t["kept_b"] / t["numel"]).where(t["tensor"] != "all", t["_exp"] / ka)
    t["ratio"] = t["observed"] / t["expected"]
    t["chance_sd"] = np.sqrt(t["_var"].astype(float)) / ka
    t["expected_margins"] = t["_marg"] / ka
    for col in ("numel", "kept_a", "kept_b", "shared"):
        t[col] = t[col].astype(int)
    return t.drop(columns=["_exp", "_var", "_marg"])


def _write_safetensors(f, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write ``uint8`` arrays and string metadata to the open binary file ``f`` in the
    safetensors format (8-byte little-endian header length, JSON header padded with spaces to a
    multiple of 8, then the tensors' bytes), with sorted keys so the bytes are deterministic."""
    header: dict[str, Any] = {"__metadata__": {k: str(metadata[k]) for k in sorted(metadata)}}
    offset, blobs = 0, []
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        if a.dtype != np.uint8:
            raise TypeError(f"connectome payload {k} must be uint8, got {a.dtype}")
        blob = a.tobytes()
        header[k] = {"dtype": "U8", "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for blob in blobs:
        f.write(blob)


#: config keys that decide whether a connectome fits a model (the shape-relevant ones)
_SHAPE_KEYS = ("model_type", "vocab_size", "n_layer", "n_head", "n_embd", "block_size")


def _config_fingerprint_dict(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in _SHAPE_KEYS if k in config}
