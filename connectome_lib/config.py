"""Configuration as dataclasses, profiles as YAML files, overrides by dotted name.

The dataclass defaults are the paper's configuration (``../shared/PAPER.md``); a *profile*
(``connectome_lib/profiles/<name>.yaml``, or any YAML file path) overrides some of them, and
``key=value`` overrides (command line, papermill parameters) override the profile:

>>> p = load_profile("smoke", overrides={"evolve.generations": 2})
>>> p.evolve.generations
2

A misspelt key anywhere — in a profile file or an override — is a :class:`ConfigError` that
names the closest valid key; values are type-checked.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from .evals.config import EvalConfig
from .model import ConnectomeGPTConfig

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


class ConfigError(ValueError):
    """A profile or override is invalid (unknown key, wrong type, bad value)."""


def _require(ok: bool, key: str, value: Any, rule: str) -> None:
    """Raise :class:`ConfigError` ``"<key> must be <rule>, got <value>"`` unless ``ok``.

    The ``validate`` methods use it so that a value torch would reject only deep inside a run
    (a negative learning rate, a model with no layers) is refused up front, by its dotted key.
    """
    if not ok:
        raise ConfigError(f"{key} must be {rule}, got {value!r}")


@dataclass
class ModelSize:
    """Shape of the GPT (the paper's "100M" model by default)."""

    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 1024
    vocab_size: int = 50304

    def to_hf_config(self) -> ConnectomeGPTConfig:
        return ConnectomeGPTConfig(**dataclasses.asdict(self))

    def validate(self, where: str = "model") -> None:
        for name in ("n_layer", "n_head", "n_embd"):
            _require(getattr(self, name) >= 1, f"{where}.{name}", getattr(self, name), ">= 1")
        for name in ("block_size", "vocab_size"):
            _require(getattr(self, name) >= 2, f"{where}.{name}", getattr(self, name), ">= 2")
        _require(self.n_embd % self.n_head == 0, f"{where}.n_embd", self.n_embd,
                 f"divisible by {where}.n_head ({self.n_head})")


@dataclass
class DataConfig:
    """Where corpora come from and where their tokenised copies are cached.

    A corpus *source* is one of: a data-set key of :mod:`connectome_lib.paths`
    (``corpus_outer``, ``corpus_inner``, ``corpus_val``); a path to a JSON-lines file
    (``.jsonl``, ``.jsonl.xz``, ``.jsonl.gz``) with a text field; or ``hub:NAME[@CONFIG][#SPLIT]``
    for a Hugging Face hub data set (e.g. ``hub:HuggingFaceFW/fineweb@sample-10BT#train``).
    """

    data_dir: str | None = None
    cache_dir: str = ".cache/tokens"
    #: ``None`` = GPT-2's tokenizer (the paper's), a tokenizer folder or hub name, or ``"bpe"``:
    #: a byte-level BPE of ``bpe_vocab_size`` tokens trained on the outer corpus (cached)
    tokenizer: str | None = None
    outer: str = "hub:HuggingFaceFW/fineweb@sample-10BT#train[2%:]"
    inner: str = "hub:HuggingFaceFW/fineweb@sample-10BT#train[:1%]"
    val: str = "hub:HuggingFaceFW/fineweb@sample-10BT#train[1%:2%]"
    text_field: str = "text"
    outer_max_tokens: int | None = None
    inner_max_tokens: int | None = 100_000_000
    val_max_tokens: int | None = 10_000_000
    #: with ``tokenizer: bpe``: vocabulary size of the byte-level BPE trained on the outer corpus,
    #: and how many characters of that corpus (documents in file order) it is trained on
    bpe_vocab_size: int = 4096
    bpe_train_chars: int = 20_000_000

    def validate(self, where: str = "data") -> None:
        for split in ("outer", "inner", "val"):
            key = f"{split}_max_tokens"
            value = getattr(self, key)
            _require(value is None or value >= 1, f"{where}.{key}", value, "a positive number of tokens or null")
            _require(bool(getattr(self, split)), f"{where}.{split}", getattr(self, split), "a corpus (not empty)")
        _require(bool(self.text_field), f"{where}.text_field", self.text_field, "a field name (not empty)")
        _require(bool(self.cache_dir), f"{where}.cache_dir", self.cache_dir, "a folder (not empty)")


@dataclass
class TrainConfig:
    """One training run (a generation of the outer loop, or an inner-loop model).

    The learning rate follows warm-up (linear, ``warmup_iters``) / hold / linear decay to 0 over
    the last ``decay_iters`` iterations. With ``optimizer="muon_adamw"``, the 2-D block matrices
    are trained by ``torch.optim.Muon`` at ``muon_lr`` and the embeddings and head by AdamW at
    ``lr`` (each its own learning rate; the official code's overwrite bug does not recur).

    ``sampling`` is the order in which training windows of ``block_size + 1`` tokens are read
    (see :class:`connectome_lib.data.BatchSampler`): ``"sequential"`` reads the corpus forward in
    consecutive windows, as the official llm.c-style loader does; ``"shuffled"`` reads the same
    non-overlapping windows in a seeded random order per pass (decorrelates small batches);
    ``"random"`` draws windows at independent random offsets. In every mode a batch is a pure
    function of its iteration, and a run that starts at ``offset`` iterations into the stream
    (the outer loop's generation g starts where generation g - 1 stopped) sees new data.
    """

    iters: int = 2001
    batch_size: int = 32
    grad_accum: int = 16
    optimizer: str = "adamw"
    lr: float = 0.0018
    muon_lr: float = 0.0018
    muon_momentum: float = 0.95
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 0.01
    warmup_iters: int = 250
    decay_iters: int = 1750
    grad_clip: float = 1.0
    mixed_precision: str = "auto"
    compile: bool = False
    seed: int = 1110
    val_every: int = 100
    val_batches: int = 20
    log_every: int = 10
    checkpoint_every: int = 0
    checkpoint_iters: list[int] = field(default_factory=list)
    save_state_every: int = 100
    sampling: str = "sequential"

    def validate(self, where: str) -> None:
        if self.sampling not in ("sequential", "shuffled", "random"):
            raise ConfigError(f"{where}.sampling must be 'sequential', 'shuffled' or 'random', got {self.sampling!r}")
        if self.optimizer not in ("adamw", "muon_adamw"):
            raise ConfigError(f"{where}.optimizer must be 'adamw' or 'muon_adamw', got {self.optimizer!r}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(f"{where}.mixed_precision must be auto, no, bf16 or fp16")
        for name in ("iters", "batch_size", "grad_accum", "val_batches", "log_every"):
            _require(getattr(self, name) >= 1, f"{where}.{name}", getattr(self, name), ">= 1")
        for name in ("lr", "muon_lr"):
            _require(getattr(self, name) > 0, f"{where}.{name}", getattr(self, name), "> 0")
        for name in ("weight_decay", "grad_clip", "warmup_iters", "decay_iters", "val_every",
                     "save_state_every", "checkpoint_every"):
            _require(getattr(self, name) >= 0, f"{where}.{name}", getattr(self, name), ">= 0")
        _require(0 <= self.muon_momentum < 1, f"{where}.muon_momentum", self.muon_momentum, "in [0, 1)")
        for i, it in enumerate(self.checkpoint_iters):
            _require(it >= 0, f"{where}.checkpoint_iters[{i}]", it, ">= 0")
        if self.warmup_iters + self.decay_iters > self.iters + 1:
            raise ConfigError(
                f"{where}: warmup_iters + decay_iters ({self.warmup_iters} + {self.decay_iters}) "
                f"exceed iters ({self.iters})"
            )
        if len(self.betas) != 2:
            raise ConfigError(f"{where}.betas must have two values, got {self.betas!r}")
        for i, b in enumerate(self.betas):
            _require(0 <= b < 1, f"{where}.betas[{i}]", b, "in [0, 1)")


@dataclass
class EvolveConfig:
    """The outer loop: ``generations`` rounds of train -> prune -> reset."""

    generations: int = 6
    prune_fraction: float = 0.2
    prune_scope: str = "per_tensor"
    prune_include: str = ".*"
    prune_exclude: str | None = None
    #: "official": the official rule (per round, prune int(fraction * remaining) -> values strictly
    #: below the k-th smallest |w|, so tied values are never pruned); "random": exactly
    #: round(n * (1 - fraction) ** g) kept per tensor, ties broken by a seeded random order
    prune_ties: str = "official"
    reset: str = "sign"
    reset_value: float = 0.02
    rewind_iter: int = 0
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            iters=7001, optimizer="muon_adamw", warmup_iters=250, decay_iters=1800, seed=1110, weight_decay=0.0
        )
    )

    def validate(self) -> None:
        _require(self.generations >= 1, "evolve.generations", self.generations, ">= 1")
        _require(0.0 < self.prune_fraction < 1.0, "evolve.prune_fraction", self.prune_fraction, "in (0, 1)")
        _require(self.reset_value > 0, "evolve.reset_value", self.reset_value, "> 0")
        if self.prune_ties not in ("official", "random"):
            raise ConfigError("evolve.prune_ties must be 'official' or 'random'")
        if self.prune_scope not in ("per_tensor", "global"):
            raise ConfigError("evolve.prune_scope must be 'per_tensor' or 'global'")
        if self.reset not in ("sign", "rewind"):
            raise ConfigError("evolve.reset must be 'sign' or 'rewind'")
        if self.reset == "rewind" and not 0 <= self.rewind_iter <= self.train.iters:
            raise ConfigError("evolve.rewind_iter must lie within the first generation's iterations")
        self.train.validate("evolve.train")


@dataclass
class DevelopConfig:
    """The inner loop: fresh models with ``init`` in {connectome, random, dense}, several seeds."""

    inits: list[str] = field(default_factory=lambda: ["connectome", "random", "dense"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    init_value: float = 0.02
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            iters=2001, optimizer="adamw", warmup_iters=250, decay_iters=1750, checkpoint_every=100
        )
    )

    def validate(self) -> None:
        from .registry import INITS

        bad = [i for i in self.inits if i not in INITS]
        if bad:
            raise ConfigError(f"develop.inits: unknown {bad}; choose from {list(INITS)}")
        if not self.seeds:
            raise ConfigError("develop.seeds must not be empty")
        _require(self.init_value > 0, "develop.init_value", self.init_value, "> 0")
        self.train.validate("develop.train")


@dataclass
class AblationConfig:
    """The per-component ablation stage (:mod:`connectome_lib.ablation`): Connectome models whose
    mask and signs in some components come from the random control. ``seeds`` ``None`` = the
    inner loop's seeds; ``variants`` ``None`` = all six."""

    seeds: list[int] | None = None
    variants: list[str] | None = None

    def validate(self) -> None:
        from .registry import ABLATIONS_BY_NAME

        bad = [v for v in self.variants or [] if v not in ABLATIONS_BY_NAME]
        if bad:
            raise ConfigError(f"ablations.variants: unknown {bad}; choose from {sorted(ABLATIONS_BY_NAME)}")
        if self.seeds is not None and not self.seeds:
            raise ConfigError("ablations.seeds must not be empty (null = the inner loop's seeds)")


@dataclass
class Profile:
    """Everything one run of the pipeline needs."""

    name: str = "paper"
    description: str = ""
    runs_dir: str = "runs"
    hardware: str = ""
    model: ModelSize = field(default_factory=ModelSize)
    data: DataConfig = field(default_factory=DataConfig)
    evolve: EvolveConfig = field(default_factory=EvolveConfig)
    develop: DevelopConfig = field(default_factory=DevelopConfig)
    ablations: AblationConfig = field(default_factory=AblationConfig)
    evals: EvalConfig = field(default_factory=EvalConfig)

    @property
    def run_root(self) -> Path:
        """``<runs_dir>/<name>``: the folder that holds every stage's outputs."""
        return Path(self.runs_dir) / self.name

    def validate(self) -> "Profile":
        self.model.validate("model")
        self.data.validate("data")
        self.evolve.validate()
        self.develop.validate()
        self.ablations.validate()
        if self.model.n_embd % self.model.n_head:
            raise ConfigError("model.n_embd must be divisible by model.n_head")
        if self.data.tokenizer == "bpe" and self.model.vocab_size < self.data.bpe_vocab_size:
            raise ConfigError(
                f"model.vocab_size ({self.model.vocab_size}) is smaller than data.bpe_vocab_size "
                f"({self.data.bpe_vocab_size}): the embedding needs a row for every token"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# building dataclasses from nested dicts, with type checks and helpful errors


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert the harmless cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-3 as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if tp is Any:
        return value
    raise ConfigError(f"{where}: unsupported annotation {tp!r}")  # pragma: no cover


def _unknown_key_error(cls: type, key: str, where: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(names)}"
    full = f"{where}.{key}" if where else key
    return ConfigError(f"unknown configuration key {full!r}{hint}")


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key_error(cls, key, where)
        f = fields[key]
        if isinstance(value, dict) and _is_dataclass_type(hints[key]) and f.default_factory is not dataclasses.MISSING:
            # a partial mapping overrides the field's own default (e.g. evolve.train keeps the
            # outer loop's defaults, such as weight_decay 0, for every key a profile leaves out)
            value = _merge(dataclasses.asdict(f.default_factory()), value)
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    return cls(**kwargs)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _nest(dotted: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        parts = key.split(".")
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r} conflicts with another override")
        node[parts[-1]] = value
    return nested


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (value in YAML syntax: ``3``, ``1e-3``, ``[0, 1]``, ``null``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. evolve.generations=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    if not raw.strip():
        return key, ""
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(
            f"override {text!r}: the value {raw!r} is not valid YAML ({_yaml_problem(e)}); "
            "quote a string, close brackets, e.g. --set develop.seeds=[0,1]"
        ) from None


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def profile_path(name_or_path: str) -> Path:
    """The YAML file of a named profile, or a path to a profile file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        close = difflib.get_close_matches(name_or_path, available_profiles(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown profile {name_or_path!r}{hint}; available: {', '.join(available_profiles())}, "
            "or a path to a .yaml file"
        )
    return path


def load_profile(name_or_path: str = "cpu", overrides: dict[str, Any] | list[str] | None = None) -> Profile:
    """Load a profile by name (or YAML path) and apply overrides.

    ``overrides`` is a dict of dotted keys (``{"evolve.generations": 3}``) or a list of
    ``"key=value"`` strings. A YAML profile may start from another with ``extends: <name>``.
    """
    data = _read_profile_yaml(profile_path(name_or_path))
    data.setdefault("name", Path(name_or_path).stem)
    if overrides:
        if isinstance(overrides, (list, tuple)):
            overrides = dict(parse_override(o) for o in overrides)
        data = _merge(data, _nest(dict(overrides)))
    return from_dict(Profile, data).validate()


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: the problem and where (1-based line and column)."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _read_profile_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ConfigError(f"profile {path} extends itself")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"profile {path}: YAML syntax error: {_yaml_problem(e)}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"profile {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"profile {path} must be a mapping of keys to values, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent is not None and not isinstance(parent, str):
        raise ConfigError(f"profile {path}: 'extends' must be a profile name or path, got {parent!r}")
    if parent:
        base = _read_profile_yaml(profile_path(parent), seen + (path,))
        base.pop("name", None)
        base.pop("description", None)
        data = _merge(base, data)
    return data


def profile_to_yaml(profile: Profile) -> str:
    return yaml.safe_dump(profile.to_dict(), sort_keys=False)
