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
        if set(self.masks) != set(other.masks):
            raise ConnectomeError("connectomes cover different tensors")
        rows = []
        for n in self.masks:
            a, b = self.masks[n], other.masks[n]
            if a.shape != b.shape:
                raise ConnectomeError(f"tensor {n} differs in shape")
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
