"""The model connectome: for each pruned tensor, a binary mask and the signs of its survivors.

A :class:`Connectome` is what the outer loop hands to the inner loop. It is an explicit object
(as open_lth's masks are), saved compactly — masks bit-packed, signs bit-packed for surviving
positions only — in a ``safetensors`` file together with the model config it belongs to and a
SHA-256 checksum of its payload. A paper-size connectome takes about 26 MB on disk against
~650 MB for the official fp32 checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

FORMAT_VERSION = "1"


class ConnectomeError(ValueError):
    """A connectome file is corrupt, or a connectome does not fit the model it is applied to."""


def _layer_of(name: str) -> str:
    """Group a parameter name into a layer: ``embedding``, ``block_<i>`` or ``head``."""
    m = re.search(r"\.h\.(\d+)\.", name)
    if m:
        return f"block_{int(m.group(1)):02d}"
    if "wte" in name or "embed" in name:
        return "embedding"
    if "lm_head" in name:
        return "head"
    return "other"


def _kind_of(name: str) -> str:
    for kind in ("c_attn", "attn.c_proj", "c_fc", "mlp.c_proj", "wte", "lm_head"):
        if kind in name:
            return kind
    return name.rsplit(".", 2)[-2] if "." in name else name


@dataclass
class Connectome:
    """Masks (``True`` = connection kept) and signs (``True`` = positive) per tensor name.

    ``signs`` are only meaningful where ``masks`` is ``True``; elsewhere they are ``False``.
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
            self.signs[n] = (self.signs[n].to(torch.bool) & self.masks[n]).cpu()

    # ---------------------------------------------------------------------------------- build
    @classmethod
    def from_model(cls, model: torch.nn.Module, masks: dict[str, torch.Tensor], meta: dict | None = None) -> "Connectome":
        """Take the signs of ``model``'s weights at the positions kept by ``masks``."""
        params = dict(model.named_parameters())
        missing = [n for n in masks if n not in params]
        if missing:
            raise ConnectomeError(f"model has no parameters named {missing[:3]}")
        signs = {n: (params[n].detach().cpu() > 0) for n in masks}
        config = model.config.to_dict() if hasattr(model, "config") else {}
        return cls({n: m.detach().cpu() for n, m in masks.items()}, signs, _config_fingerprint_dict(config), dict(meta or {}))

    def random_control(self, seed: int) -> "Connectome":
        """The RandomConnectome control: in every tensor the same number of kept connections,
        at uniformly random positions, with random signs (seeded, reproducible)."""
        g = torch.Generator().manual_seed(int(seed))
        masks, signs = {}, {}
        for n in sorted(self.masks):
            m = self.masks[n]
            k = int(m.sum())
            flat = torch.zeros(m.numel(), dtype=torch.bool)
            flat[torch.randperm(m.numel(), generator=g)[:k]] = True
            masks[n] = flat.view(m.shape)
            signs[n] = (torch.rand(m.shape, generator=g) < 0.5) & masks[n]
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
        """Initialise ``model`` in place from the connectome: ``sign * value`` on the mask and
        exactly 0 elsewhere, for every tensor the connectome covers (others keep their init)."""
        self.check_compatible(model)
        params = dict(model.named_parameters())
        for n, m in self.masks.items():
            p = params[n]
            w = torch.where(self.signs[n], value, -value) * m
            p.copy_(w.to(device=p.device, dtype=p.dtype))
        return model

    # ------------------------------------------------------------------------------ reports
    def density_table(self) -> pd.DataFrame:
        """One row per tensor: name, layer, kind, shape, numel, kept, density, positive share."""
        rows = []
        for n in self.masks:
            m = self.masks[n]
            kept = int(m.sum())
            rows.append(
                dict(
                    tensor=n,
                    layer=_layer_of(n),
                    kind=_kind_of(n),
                    shape="x".join(map(str, m.shape)),
                    numel=m.numel(),
                    kept=kept,
                    density=kept / m.numel(),
                    positive_fraction=(int(self.signs[n].sum()) / kept) if kept else float("nan"),
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
        ``sign_agreement``: the share of shared positions whose signs agree."""
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
            rows.append(dict(tensor=n, layer=_layer_of(n), intersection=inter, union=union,
                             jaccard=inter / union if union else float("nan"),
                             sign_agreement=agree / inter if inter else float("nan")))
        return pd.DataFrame(rows)

    def overall_jaccard(self, other: "Connectome") -> float:
        t = self.jaccard(other)
        return float(t["intersection"].sum() / t["union"].sum())

    # --------------------------------------------------------------------------------- I/O
    def _payload(self) -> dict[str, np.ndarray]:
        arrays = {}
        for n in sorted(self.masks):
            m = self.masks[n].numpy().reshape(-1)
            arrays[f"mask::{n}"] = np.packbits(m)
            arrays[f"sign::{n}"] = np.packbits(self.signs[n].numpy().reshape(-1)[m])
        return arrays

    @staticmethod
    def _checksum(arrays: dict[str, np.ndarray], header: str) -> str:
        h = hashlib.sha256(header.encode())
        for k in sorted(arrays):
            h.update(k.encode())
            h.update(arrays[k].tobytes())
        return h.hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        """Save atomically (temporary file, then rename) as bit-packed safetensors."""
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
        tmp = path.with_name(path.name + ".tmp")
        save_file(arrays, str(tmp), metadata={"connectome": header, "sha256": self._checksum(arrays, header)})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Connectome":
        """Load and verify a connectome; a corrupt or foreign file raises :class:`ConnectomeError`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no connectome at {path}; run the 'evolve' stage first")
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as f:
                md = f.metadata() or {}
            arrays = load_file(str(path))
        except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
            raise ConnectomeError(f"{path} is not a readable connectome file: {e}") from e
        if "connectome" not in md or "sha256" not in md:
            raise ConnectomeError(f"{path} is a safetensors file but not a connectome (no connectome metadata)")
        header = md["connectome"]
        if cls._checksum(arrays, header) != md["sha256"]:
            raise ConnectomeError(f"{path} is corrupt: its checksum does not match its contents")
        info = json.loads(header)
        if info.get("format_version") != FORMAT_VERSION:
            raise ConnectomeError(f"{path}: unsupported connectome format {info.get('format_version')!r}")
        masks, signs = {}, {}
        for n, shape in info["shapes"].items():
            numel = int(np.prod(shape))
            m = np.unpackbits(arrays[f"mask::{n}"], count=numel).astype(bool)
            s = np.zeros(numel, dtype=bool)
            s[m] = np.unpackbits(arrays[f"sign::{n}"], count=int(m.sum())).astype(bool)
            masks[n] = torch.from_numpy(m.reshape(shape))
            signs[n] = torch.from_numpy(s.reshape(shape))
        return cls(masks, signs, info["model_config"], info["meta"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Connectome) or set(self.masks) != set(other.masks):
            return False
        return all(torch.equal(self.masks[n], other.masks[n]) and torch.equal(self.signs[n], other.signs[n]) for n in self.masks)


#: config keys that decide whether a connectome fits a model (the shape-relevant ones)
_SHAPE_KEYS = ("model_type", "vocab_size", "n_layer", "n_head", "n_embd", "block_size")


def _config_fingerprint_dict(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in _SHAPE_KEYS if k in config}
