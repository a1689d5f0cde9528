"""The paper's released checkpoints, loaded safely into our model; conversion; their connectome.

Kotar & Tuckute released ``TuKoResearch/{Connectome,RandomConnectome,NoConnectome}GPT100M`` on
the Hugging Face hub: a ``config.json`` (``architectures ["GPT"]``, ``model_type``
``"ConnectomeGPT100M.GPT"``, GitHub's copy ``"GenerationalPruning.GPT"``, an ``auto_map`` to
their own ``config.py``/``model.py``), the weights, and no tokenizer. Their code cannot be used
as it is: its forward returns a plain dict (lm-eval's ``hf`` model reads ``.logits``), and on
transformers 5 ``trust_remote_code`` fails (absolute ``from config import``, no ``post_init()``).
Running a checkpoint's code is also a risk we do not need to take: the weights carry the same
names as :class:`~connectome_lib.model.ConnectomeGPTForCausalLM`, a faithful re-implementation.

So :func:`load_released` reads ``config.json`` *as data* and **never imports the checkpoint's
code**; it checks the fields (``bias`` false, ``pos_init`` null, a known architecture), reads
the weights without pickle (safetensors, or ``torch.load(weights_only=True)`` for ``.bin`` /
``.pt``, ``model_state_dict`` inside a training ``.pt``), strips ``module.`` / ``_orig_mod.``
prefixes, checks each persistent ``attn.rotary.inv_freq`` buffer against the frequencies our
model computes (``1 / 10000 ** (arange(0, hd, 2) / hd)``; ours keeps no such buffer, so the
checked buffers are dropped) and loads the rest *strictly* (no missing or unexpected key). The
tokenizer is GPT-2's (:func:`connectome_lib.tokenizer.load_tokenizer`).

:func:`convert` writes a standard model folder (our ``model.py`` + ``auto_map``, weights,
config, GPT-2's tokenizer, a model card) that ``AutoModelForCausalLM``/``AutoTokenizer``
(``trust_remote_code=True``) and ``lm_eval --model hf`` load. :func:`extract_mask` reads the
released connectome (exact zeros = pruned) and :func:`density_comparison` sets it beside ours.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch

from .connectome import Connectome
from .model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM

#: the paper's three checkpoints on the hub, by model type (the ``label`` of our results)
HUB_IDS: dict[str, str] = {
    "Connectome": "TuKoResearch/ConnectomeGPT100M",
    "RandomConnectome": "TuKoResearch/RandomConnectomeGPT100M",
    "NoConnectome": "TuKoResearch/NoConnectomeGPT100M",
}
#: ``model_type`` values of the official config (the hub's, and GitHub's copy)
KNOWN_MODEL_TYPES: tuple[str, ...] = ("ConnectomeGPT100M.GPT", "GenerationalPruning.GPT")
KNOWN_ARCHITECTURES: tuple[str, ...] = ("GPT",)
#: weight files looked for, in this order (then ``*.pt`` / ``*.pth``)
WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")
WEIGHTS_HINT = "no weights file (model.safetensors, pytorch_model.bin or *.pt)"
#: what a hub download fetches: data only, never the checkpoint's code
HUB_PATTERNS: tuple[str, ...] = ("*.json", "*.safetensors", "*.bin", "*.pt", "*.pth", "README.md")
ROPE_BASE = 10000.0
_PREFIXES = ("module.", "_orig_mod.")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ReleasedCheckpointError(ValueError):
    """A folder is not a released checkpoint this loader can read (the message says why)."""


class HubUnavailableError(OSError):
    """The Hugging Face hub cannot be reached (offline, no network, ``HF_HUB_OFFLINE=1``)."""


# ------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class ReleasedConfig:
    """The fields of a released ``config.json`` that shape the model, checked on reading."""

    vocab_size: int
    n_embd: int
    n_layer: int
    n_head: int
    block_size: int
    model_type: str
    architectures: tuple[str, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "config.json") -> "ReleasedConfig":
        archs = tuple(d.get("architectures") or ())
        mtype = str(d.get("model_type", ""))
        if mtype not in KNOWN_MODEL_TYPES and not set(archs) & set(KNOWN_ARCHITECTURES):
            raise ReleasedCheckpointError(
                f"{where}: unknown architecture (architectures {list(archs)}, model_type {mtype!r}); this loader "
                f"reads the paper's GPT only (architectures {list(KNOWN_ARCHITECTURES)}, model_type one of "
                f"{', '.join(KNOWN_MODEL_TYPES)})")
        missing = [k for k in ("vocab_size", "n_embd", "n_layer", "n_head", "block_size") if k not in d]
        if missing:
            raise ReleasedCheckpointError(f"{where}: missing field(s) {', '.join(missing)}")
        if d.get("bias", False) not in (False, None):
            raise ReleasedCheckpointError(f"{where}: bias is {d['bias']!r}; the paper's GPT has no biases (false)")
        if d.get("pos_init") is not None:
            raise ReleasedCheckpointError(f"{where}: pos_init is {d['pos_init']!r}; the paper's GPT uses rotary "
                                          "positions only (null)")
        try:
            return cls(int(d["vocab_size"]), int(d["n_embd"]), int(d["n_layer"]), int(d["n_head"]),
                       int(d["block_size"]), mtype, archs)
        except (TypeError, ValueError) as e:
            raise ReleasedCheckpointError(f"{where}: a size field is not an integer ({e})") from None

    def to_model_config(self) -> ConnectomeGPTConfig:
        return ConnectomeGPTConfig(vocab_size=self.vocab_size, n_layer=self.n_layer, n_head=self.n_head,
                                   n_embd=self.n_embd, block_size=self.block_size, rope_base=ROPE_BASE)


def _read_config_json(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise ReleasedCheckpointError(f"{folder} is not a model folder: no config.json")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReleasedCheckpointError(f"{path} is corrupt: not a JSON file ({' '.join(str(e).split())})") from None
    if not isinstance(d, dict):
        raise ReleasedCheckpointError(f"{path} is corrupt: a JSON {type(d).__name__}, not an object")
    return d


def is_released_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder in the paper's released layout (its ``config.json`` names
    the official ``model_type`` or ``architectures ["GPT"]``); never raises."""
    try:
        d = _read_config_json(Path(path))
    except (ReleasedCheckpointError, OSError):
        return False
    archs = d.get("architectures") or []
    return d.get("model_type") in KNOWN_MODEL_TYPES or (isinstance(archs, list) and archs == ["GPT"])


def read_released_config(folder: str | os.PathLike) -> ReleasedConfig:
    """The checked :class:`ReleasedConfig` of a folder (its code is never looked at)."""
    folder = Path(folder)
    return ReleasedConfig.from_dict(_read_config_json(folder), str(folder / "config.json"))


# ----------------------------------------------------------------------------------- weights
def weights_file(folder: str | os.PathLike) -> Path:
    """The weights file of a released folder: ``model.safetensors``, ``pytorch_model.bin``, or
    the one ``*.pt``/``*.pth``; ``ReleasedCheckpointError`` if there is none (or several .pt)."""
    folder = Path(folder)
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    pts = sorted(p for p in folder.iterdir() if p.suffix in (".pt", ".pth") and p.is_file())
    if len(pts) == 1:
        return pts[0]
    if len(pts) > 1:
        raise ReleasedCheckpointError(f"{folder}: several training checkpoints ({', '.join(p.name for p in pts)}); "
                                      "keep one, or point at a folder holding only the one to load")
    what = "a released-model folder (config.json)" if (folder / "config.json").exists() else "a folder"
    raise ReleasedCheckpointError(f"{folder} is {what} but has {WEIGHTS_HINT}")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, without pickle: safetensors, or ``torch.load(weights_only=True)``
    (a training checkpoint's ``model_state_dict``/``state_dict``/``model`` entry)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as e:
            raise ReleasedCheckpointError(f"{path} is corrupt: not a readable safetensors file "
                                          f"({' '.join(str(e).split())[:200]})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ReleasedCheckpointError(
            f"{path} holds Python objects other than tensors; refusing to unpickle them (that could run code): "
            f"re-save only its state dict ({' '.join(str(e).split())[:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        detail = " ".join(str(e).split())[:200]
        raise ReleasedCheckpointError(f"{path} is corrupt: torch.load failed ({detail})") from None
    if isinstance(obj, Mapping):
        for key in ("model_state_dict", "state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, Mapping) else {}
    if not tensors:
        keys = list(obj)[:6] if isinstance(obj, Mapping) else type(obj).__name__
        raise ReleasedCheckpointError(f"{path} holds no state dict of tensors (found {keys}; expected the tensors, or "
                                      "a model_state_dict entry)")
    return tensors


def strip_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys without the ``module.`` (DDP) and ``_orig_mod.`` (``torch.compile``) prefixes."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key
        while name.startswith(_PREFIXES):
            name = name[len(next(p for p in _PREFIXES if name.startswith(p))):]
        if name in out:
            raise ReleasedCheckpointError(f"weights name {name!r} twice (with and without a prefix)")
        out[name] = value
    return out


def rotary_frequencies(head_dim: int, base: float = ROPE_BASE) -> torch.Tensor:
    """The rotary inverse frequencies ``1 / base ** (arange(0, head_dim, 2) / head_dim)``."""
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))


def check_rotary(state: dict[str, torch.Tensor], cfg: ReleasedConfig, keep: set[str] = frozenset()) -> dict:
    """Check every ``*.rotary.inv_freq`` buffer against :func:`rotary_frequencies`; drop those
    not in ``keep`` (our model computes the frequencies and stores none)."""
    expected = rotary_frequencies(cfg.n_embd // cfg.n_head)
    out = {}
    for key, value in state.items():
        if key.endswith("rotary.inv_freq"):
            ref = expected.to(value.dtype).float()
            if tuple(value.shape) != tuple(ref.shape) or not torch.allclose(value.float(), ref, rtol=1e-5, atol=0):
                raise ReleasedCheckpointError(
                    f"{key}: rotary frequencies are not those of base {ROPE_BASE:g} and head dim "
                    f"{cfg.n_embd // cfg.n_head} (shape {tuple(value.shape)}); our model cannot use them")
            if key not in keep:
                continue
        out[key] = value
    return out


def _load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    ours = model.state_dict()
    missing, unexpected = sorted(set(ours) - set(state)), sorted(set(state) - set(ours))
    if missing or unexpected:
        parts = [f"{what} {', '.join(keys[:4])}" + (" ..." if len(keys) > 4 else "")
                 for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise ReleasedCheckpointError(f"{where}: weights do not match the paper's GPT: {'; '.join(parts)}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(ours[k].shape):
            raise ReleasedCheckpointError(f"{where}: {k} has shape {tuple(v.shape)}, config.json implies "
                                          f"{tuple(ours[k].shape)}")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)


# -------------------------------------------------------------------------------- the loader
def local_folder(source: str | os.PathLike, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """A local folder for ``source``: the folder itself, or a hub id (``owner/name``, not an
    existing path) downloaded with ``huggingface_hub.snapshot_download`` (data files only)."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ReleasedCheckpointError(f"{path} is a file; give the model folder that holds it and config.json")
        return path
    if not _HUB_ID.match(str(source)):
        raise FileNotFoundError(f"{source}: no such folder, and not a hub id (owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(str(source), revision=revision, cache_dir=cache_dir,
                                      allow_patterns=list(HUB_PATTERNS)))
    except (RepositoryNotFoundError, GatedRepoError) as e:
        raise FileNotFoundError(f"{source}: no such folder, nor a public repository on the Hugging Face hub "
                                f"({type(e).__name__})") from None
    except Exception as e:  # noqa: BLE001 - offline, DNS, HTTP: reported as one line below
        if not is_network_error(e):
            raise
        detail = " ".join(str(e).split())[:160]
        raise HubUnavailableError(
            f"{source}: no such folder, and as a hub id it cannot be downloaded ({type(e).__name__}: {detail}); "
            f"without a network, fetch it elsewhere (huggingface-cli download {source} --local-dir DIR) "
            "and give DIR instead") from None


def is_network_error(e: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    if isinstance(e, (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, ConnectionError, TimeoutError,
                      OSError)):
        return True
    return type(e).__module__.split(".")[0] in ("httpx", "httpcore", "requests", "urllib3")


def load_released(source: str | os.PathLike, device: str | torch.device = "cpu", data_dir: str | None = None,
                  revision: str | None = None) -> tuple[ConnectomeGPTForCausalLM, Any]:
    """Load a released checkpoint (folder or hub id) into our model: ``(model, tokenizer)``,
    float32, in eval mode, on ``device``; see the module docstring for every check."""
    from .tokenizer import load_tokenizer

    folder = local_folder(source, revision)
    cfg = read_released_config(folder)
    wfile = weights_file(folder)
    model = ConnectomeGPTForCausalLM(cfg.to_model_config())
    state = check_rotary(strip_prefixes(read_state_dict(wfile)), cfg, keep=set(model.state_dict()))
    _load_strict(model, state, str(wfile))
    return model.to(device).eval(), load_tokenizer(None, data_dir)


def model_label(source: str | os.PathLike) -> str | None:
    """The paper's model type a hub id or folder name names (``RandomConnectomeGPT100M`` ->
    ``RandomConnectome``), else ``None``."""
    name = Path(str(source)).name if not _HUB_ID.match(str(source)) else str(source).split("/")[1]
    for label in sorted(HUB_IDS, key=len, reverse=True):  # "RandomConnectome" before "Connectome"
        if name.lower().startswith(label.lower()):
            return label
    return None


def model_name(source: str | os.PathLike) -> str:
    """A results ``model`` name for a source: the hub repository's name, or the folder's."""
    return str(source).split("/")[1] if _HUB_ID.match(str(source)) and not Path(source).exists() else Path(source).name


def evaluation_source(source: str | os.PathLike) -> tuple[Path, str]:
    """What ``connectome evaluate --model SOURCE`` evaluates: the local folder (a hub id is
    downloaded) and the ``model`` name its results rows carry (the repository's or folder's)."""
    return local_folder(source), model_name(source)


# ------------------------------------------------------------------------------- conversion
def convert(src: str | os.PathLike, out_dir: str | os.PathLike, data_dir: str | None = None) -> Path:
    """Write ``src`` (a released folder or hub id) as a standard model folder at ``out_dir``:
    our ``model.py`` + ``auto_map``, ``model.safetensors``, ``config.json``, GPT-2's tokenizer,
    a model card (``README.md``) and ``conversion.json`` (source, SHA-256 of its weights).

    The folder is what :func:`connectome_lib.training.save_model` writes (``save_pretrained`` of
    the model -- code and ``auto_map`` included, see :mod:`connectome_lib.model` -- and of the
    tokenizer), plus the card, all in a temporary folder renamed into place at the end. It is
    written here rather than by calling ``save_model``: the evaluation runner imports this module,
    and ``training`` imports the configuration, which imports the evaluations (an import cycle).
    """
    from .fingerprint import file_sha256
    from .layout import atomic_folder, write_json_atomic
    from .model_card import released_card

    folder = local_folder(src)
    model, tok = load_released(folder, "cpu", data_dir)
    wfile = weights_file(folder)
    label = model_label(src)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar (as save_model)
    try:
        with atomic_folder(out_dir) as tmp:
            model.save_pretrained(str(tmp))
            tok.save_pretrained(str(tmp))
            released_card(tmp, label, source=str(src), density=extract_mask(model).density(),
                          base_model=HUB_IDS.get(label or ""))
            write_json_atomic(tmp / "conversion.json", {
                "source": str(src), "weights_file": wfile.name, "weights_sha256": file_sha256(wfile),
                "label": label, "converted_by": "connectome_lib.released.convert"})
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return Path(out_dir)


# ---------------------------------------------------------------------------- the connectome
def extract_mask(model_or_state: torch.nn.Module | Mapping[str, torch.Tensor] | str | os.PathLike) -> Connectome:
    """The connectome a model's weights encode: every 2-D weight, mask = not exactly zero,
    sign = sign of the weight.

    For ConnectomeGPT100M the zeros are where the inherited connectome pruned (the mask was held
    fixed in the inner loop). The signs are the **trained** inner-loop signs, not the inherited
    ones: the inherited ``sign x 0.02`` values moved during training and some crossed zero. For
    the two controls the result says little (RandomConnectome: its random mask; NoConnectome:
    dense). Accepts a model, a state dict, or a released folder / hub id.
    """
    if isinstance(model_or_state, (str, os.PathLike)):
        model_or_state = load_released(model_or_state)[0]
    if isinstance(model_or_state, torch.nn.Module):
        params = {n: p.detach() for n, p in model_or_state.named_parameters() if p.ndim == 2}
        return Connectome.from_model(model_or_state, {n: p != 0 for n, p in params.items()},
                                     meta={"kind": "released", "signs": "trained (inner loop)"})
    state = strip_prefixes(model_or_state)
    weights = {n: t.detach().cpu() for n, t in state.items() if t.ndim == 2}
    return Connectome({n: w != 0 for n, w in weights.items()}, {n: torch.sign(w) for n, w in weights.items()},
                      meta={"kind": "released", "signs": "trained (inner loop)"})


def expected_density(generations: int = 6, prune_fraction: float = 0.2) -> float:
    """The density per tensor after ``generations`` rounds of pruning: ``(1 - f) ** g`` (0.262)."""
    return (1.0 - prune_fraction) ** generations


def density_comparison(released: Connectome, ours: Connectome | None = None, generations: int = 6,
                       prune_fraction: float = 0.2) -> pd.DataFrame:
    """Density per layer and matrix kind of the released connectome, beside one of ours (if
    given) and the expected ``(1 - f) ** g``; a last row ``all`` for each whole connectome."""

    def per_kind(c: Connectome, col: str) -> pd.DataFrame:
        t = c.density_table().groupby(["layer", "kind"], sort=True)[["numel", "kept"]].sum()
        return (t["kept"] / t["numel"]).rename(col).to_frame()

    table = per_kind(released, "density_released")
    if ours is not None:
        table = table.join(per_kind(ours, "density_ours"), how="outer")
    table = table.reset_index()
    total = {"layer": "all", "kind": "all", "density_released": released.density()}
    if ours is not None:
        total["density_ours"] = ours.density()
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["expected"] = expected_density(generations, prune_fraction)
    return table


def row_density(connectome: Connectome, token_counts_outer, token_counts_inner,
                random_connectome: Connectome | None = None, seed: int = 0):
    """Embedding/head row density against token frequency
    (:func:`connectome_lib.analysis.row_density_vs_frequency`) for a released connectome, beside
    ``random_connectome`` (e.g. ``extract_mask`` of RandomConnectomeGPT100M) or, by default, a
    seeded random control of matched density."""
    from .analysis import row_density_vs_frequency

    random_connectome = random_connectome if random_connectome is not None else connectome.random_control(seed)
    return row_density_vs_frequency(connectome, random_connectome, token_counts_outer, token_counts_inner)


# -------------------------------------------------------------------------------- command line
def add_parsers(subparsers) -> None:
    """Register ``connectome convert SRC OUT`` on an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "convert", help="convert a released checkpoint of the paper into a standard model folder",
        description="Load one of the paper's released checkpoints (a folder, or a hub id such as "
        f"{HUB_IDS['Connectome']}) without running its code, and write a model folder that "
        "AutoModelForCausalLM/AutoTokenizer (trust_remote_code=True) and lm_eval --model hf load: our "
        "model.py, weights, config, GPT-2's tokenizer and a model card.")
    p.add_argument("src", help="released model folder, or hub id owner/name")
    p.add_argument("out", help="output folder (replaced if it exists)")
    p.add_argument("--data-dir", help="data directory holding GPT-2's tokenizer (default: $CONNECTOME_DATA_DIR, "
                   "else ../shared/data)")
    p.set_defaults(func=_cmd_convert)


def _cmd_convert(args) -> int:
    out = convert(args.src, args.out, data_dir=args.data_dir)
    print(f"converted {args.src} -> {out}")
    return 0
