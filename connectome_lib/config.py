"""Configuration as dataclasses, profiles as YAML files, overrides by dotted name.

The dataclass defaults are the paper's configuration (``../shared/PAPER.md``); a *profile*
(``connectome_lib/profiles/<name>.yaml``, or any YAML file path) overrides some of them, and
``key=value`` overrides (command line, papermill parameters) override the profile:

>>> p = load_profile("smoke", overrides={"evolve.generations": 2})
>>> p.evolve.generations
2

A misspelt key anywhere — in a profile file or an override — is a :class:`ConfigError` that
names the closest valid key; values are type-checked. Profiles and their ``evals`` section
(:class:`~connectome_lib.evals.config.EvalConfig`) are loaded, overridden and validated by the
one mechanism of :mod:`connectome_lib.settings`; each class adds its rules in ``check(where)``.

:func:`resolve_folders` makes a profile's folders absolute (command-line flag, else environment
variable, else profile value; relative to the project root), for the notebooks and every
command alike, and :func:`eval_config` turns a profile into its evaluation options.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from . import settings
from .evals.config import EvalConfig
from .model import ConnectomeGPTConfig
from .paths import project_root
from .registry import ABLATIONS_BY_NAME, INITS
from .settings import ConfigError, key
from .settings import require as _require

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

__all__ = ["ConfigError", "ModelSize", "DataConfig", "TrainConfig", "EvolveConfig", "DevelopConfig",
           "AblationConfig", "Profile", "load_profile", "parse_override", "available_profiles", "profile_path",
           "profile_to_yaml", "eval_config", "resolve_folders", "results_root", "ResolvedProfile"]


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

    def check(self, where: str = "model") -> None:
        for name in ("n_layer", "n_head", "n_embd"):
            _require(getattr(self, name) >= 1, key(where, name), getattr(self, name), ">= 1")
        for name in ("block_size", "vocab_size"):
            _require(getattr(self, name) >= 2, key(where, name), getattr(self, name), ">= 2")
        _require(self.n_embd % self.n_head == 0, key(where, "n_embd"), self.n_embd,
                 f"divisible by {key(where, 'n_head')} ({self.n_head})")


@dataclass
class DataConfig:
    """Where corpora come from and where their tokenised copies are cached.

    A corpus *source* is one of: a data-set key of :mod:`connectome_lib.paths`
    (``corpus_outer``, ``corpus_inner``, ``corpus_val``); a path to a JSON-lines file
    (``.jsonl``, ``.jsonl.xz``, ``.jsonl.gz``) with a text field; or ``hub:NAME[@CONFIG][#SPLIT]``
    for a Hugging Face hub data set (e.g. ``hub:HuggingFaceFW/fineweb@sample-100BT#train``),
    streamed; ``SPLIT[START:STOP]`` streams documents START to STOP-1 (:mod:`connectome_lib.sources`).

    The defaults are the paper's corpora, cut from one stream of FineWeb ``sample-100BT`` (about
    100B GPT-2 tokens) into disjoint ranges of documents: the inner corpus (100M tokens of the
    first 500,000 documents, ~670 tokens each), the validation corpus (10M of the next 100,000)
    and the outer corpus (every later document, up to ``outer_max_tokens``). The outer loop reads
    7,001 x 512 x 1,024 = 3.67B tokens per generation, 22.02B in 6 generations: the outer corpus
    holds that many, so no generation re-reads another's data (``sample-10BT`` has only ~9.8B
    after the inner and validation parts; the loop re-read data from generation 2.7 on).
    """

    data_dir: str | None = None
    cache_dir: str = ".cache/tokens"
    #: ``None`` = GPT-2's tokenizer (the paper's), a tokenizer folder or hub name, or ``"bpe"``:
    #: a byte-level BPE of ``bpe_vocab_size`` tokens trained on the outer corpus (cached)
    tokenizer: str | None = None
    outer: str = "hub:HuggingFaceFW/fineweb@sample-100BT#train[600000:]"
    inner: str = "hub:HuggingFaceFW/fineweb@sample-100BT#train[:500000]"
    val: str = "hub:HuggingFaceFW/fineweb@sample-100BT#train[500000:600000]"
    text_field: str = "text"
    #: the paper's 6 generations read 6 x 7,001 x 512 windows of 1,025 tokens (22,023,241,729
    #: tokens); with some to spare (a hub corpus is read in document order up to the limit)
    outer_max_tokens: int | None = 22_100_000_000
    inner_max_tokens: int | None = 100_000_000
    val_max_tokens: int | None = 10_000_000
    #: with ``tokenizer: bpe``: vocabulary size of the byte-level BPE trained on the outer corpus,
    #: and how many characters of that corpus (documents in file order) it is trained on
    bpe_vocab_size: int = 4096
    bpe_train_chars: int = 20_000_000
    #: books left out of every split of a local corpus (by the records' ``id``): ``"duplicates"``
    #: = the committed list of works that appear twice in the shared Gutenberg corpora
    #: (``profiles/corpus_exclusions.csv``, the repair plan of :mod:`connectome_lib.corpus_audit`),
    #: a path to such a CSV (columns ``split, id``), or ``None`` (keep every book)
    exclude: str | None = "duplicates"
    #: how a split larger than its ``<split>_max_tokens`` is cut down: ``"chunks"`` tokenises
    #: every book, cuts the token stream into chunks of ``chunk_tokens`` and keeps a seeded
    #: (``sample_seed``) stratified random choice of them in corpus order, so every book
    #: contributes in proportion to its length; ``"head"`` reads the books in file order up to the
    #: limit (the official loader). Hub corpora are always read ``"head"`` (see connectome_lib.data)
    sample: str = "chunks"
    #: the splits ``sample`` applies to; the others are read ``"head"`` (the outer loop reads on
    #: through its corpus generation after generation, and tokenising all of it would cost minutes)
    sample_splits: list[str] = field(default_factory=lambda: ["inner", "val"])
    chunk_tokens: int = 4096
    sample_seed: int = 0

    def check(self, where: str = "data") -> None:
        for split in ("outer", "inner", "val"):
            name = f"{split}_max_tokens"
            value = getattr(self, name)
            _require(value is None or value >= 1, key(where, name), value, "a positive number of tokens or null")
            _require(bool(getattr(self, split)), key(where, split), getattr(self, split), "a corpus (not empty)")
        _require(bool(self.text_field), key(where, "text_field"), self.text_field, "a field name (not empty)")
        _require(bool(self.cache_dir), key(where, "cache_dir"), self.cache_dir, "a folder (not empty)")
        settings.require_choice(self.sample, ("chunks", "head"), key(where, "sample"))
        bad = [x for x in self.sample_splits if x not in ("outer", "inner", "val")]
        if bad:
            raise ConfigError(f"{key(where, 'sample_splits')}: unknown split(s) {bad}; choose from outer, inner, val")
        _require(isinstance(self.chunk_tokens, int) and self.chunk_tokens >= 1, key(where, "chunk_tokens"),
                 self.chunk_tokens, "a positive number of tokens")
        _require(isinstance(self.sample_seed, int) and self.sample_seed >= 0, key(where, "sample_seed"),
                 self.sample_seed, "a non-negative integer")
        _require(self.exclude is None or bool(self.exclude), key(where, "exclude"), self.exclude,
                 "'duplicates', a path to a CSV (split, id) or null")


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
    #: the validation set: the first ``val_batches`` batches of ``batch_size * grad_accum`` windows
    #: of the validation corpus (evaluated ``batch_size`` at a time), whatever the batch's split
    val_batches: int = 20
    log_every: int = 10
    checkpoint_every: int = 0
    checkpoint_iters: list[int] = field(default_factory=list)
    save_state_every: int = 100
    sampling: str = "sequential"

    def without_checkpoints(self) -> "TrainConfig":
        """The same training, saving no intermediate checkpoints (only the final model): for
        models whose evaluations read the final model alone."""
        return dataclasses.replace(self, checkpoint_every=0, checkpoint_iters=[])

    def check(self, where: str = "train") -> None:
        if self.sampling not in ("sequential", "shuffled", "random"):
            raise ConfigError(f"{where}.sampling must be 'sequential', 'shuffled' or 'random', got {self.sampling!r}")
        if self.optimizer not in ("adamw", "muon_adamw"):
            raise ConfigError(f"{where}.optimizer must be 'adamw' or 'muon_adamw', got {self.optimizer!r}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(f"{where}.mixed_precision must be auto, no, bf16 or fp16")
        if self.mixed_precision == "fp16" and self.optimizer == "muon_adamw":
            # accelerate's loss scaler updates its scale after each optimiser's step, so the second
            # optimiser (AdamW) has its gradients unscaled twice once clipping has unscaled them
            raise ConfigError(
                f"{where}.mixed_precision: fp16 does not work with {where}.optimizer muon_adamw (the loss scaler "
                "would unscale AdamW's gradients twice); use bf16 (or no), or the optimizer adamw")
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
    """The outer loop: ``generations`` rounds of train -> prune -> reset, run once per seed of
    ``seeds`` (each run a *lineage* with its own connectome; ``None``: one lineage, seed
    ``train.seed``). Independent lineages are the replicates of "evolution produces a useful
    connectome": with one lineage that claim has n = 1."""

    generations: int = 6
    seeds: list[int] | None = None
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

    @property
    def lineage_seeds(self) -> list[int]:
        """The seed of every lineage, lineage 0 first."""
        return [int(s) for s in self.seeds] if self.seeds is not None else [int(self.train.seed)]

    @property
    def lineages(self) -> int:
        return len(self.lineage_seeds)

    def check(self, where: str = "evolve") -> None:
        _require(self.generations >= 1, key(where, "generations"), self.generations, ">= 1")
        if self.seeds is not None:
            _require(len(self.seeds) >= 1, key(where, "seeds"), self.seeds, "a non-empty list of seeds or null")
            _require(len(set(self.seeds)) == len(self.seeds), key(where, "seeds"), self.seeds, "distinct seeds")
        _require(0.0 < self.prune_fraction < 1.0, key(where, "prune_fraction"), self.prune_fraction, "in (0, 1)")
        _require(self.reset_value > 0, key(where, "reset_value"), self.reset_value, "> 0")
        if self.prune_ties not in ("official", "random"):
            raise ConfigError(f"{key(where, 'prune_ties')} must be 'official' or 'random'")
        if self.prune_scope not in ("per_tensor", "global"):
            raise ConfigError(f"{key(where, 'prune_scope')} must be 'per_tensor' or 'global'")
        if self.reset not in ("sign", "rewind"):
            raise ConfigError(f"{key(where, 'reset')} must be 'sign' or 'rewind'")
        if self.reset == "rewind" and not 0 <= self.rewind_iter <= self.train.iters:
            raise ConfigError(f"{key(where, 'rewind_iter')} must lie within the first generation's iterations")


@dataclass
class DevelopConfig:
    """The inner loop: fresh models with ``init`` in {connectome, random, rowmatched, dense},
    several seeds. The model with the i-th seed of ``seeds`` inherits (or, for the random
    controls, is matched to) the connectome of lineage ``i % evolve.lineages``."""

    inits: list[str] = field(default_factory=lambda: ["connectome", "random", "rowmatched", "dense"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    #: the NoConnectome seeds (``None``: ``seeds``). Its unit of replication is the seed, so
    #: more seeds buy it the power the lineages give the other types at no outer-loop cost
    dense_seeds: list[int] | None = None
    init_value: float = 0.02
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            iters=2001, optimizer="adamw", warmup_iters=250, decay_iters=1750, checkpoint_every=100
        )
    )

    def seeds_of(self, init: str) -> list[int]:
        """The seeds of the models of ``init``."""
        return [int(s) for s in (self.dense_seeds if init == "dense" and self.dense_seeds is not None else self.seeds)]

    def models(self) -> list[tuple[str, int]]:
        """Every (init, seed) the inner loop trains, in training order (seed by seed, then the
        NoConnectome seeds beyond ``seeds``)."""
        out = [(init, int(s)) for s in self.seeds for init in self.inits if s in self.seeds_of(init)]
        return out + [(init, s) for init in self.inits for s in self.seeds_of(init) if (init, s) not in out]

    def check(self, where: str = "develop") -> None:
        bad = [i for i in self.inits if i not in INITS]
        if bad:
            raise ConfigError(f"{key(where, 'inits')}: unknown {bad}; choose from {list(INITS)}")
        if not self.seeds:
            raise ConfigError(f"{key(where, 'seeds')} must not be empty")
        if not self.inits:
            raise ConfigError(f"{key(where, 'inits')} must not be empty; choose from {list(INITS)}")
        _require(len(set(self.seeds)) == len(self.seeds), key(where, "seeds"), self.seeds, "distinct seeds")
        if self.dense_seeds is not None:
            _require(len(self.dense_seeds) >= 1 and len(set(self.dense_seeds)) == len(self.dense_seeds),
                     key(where, "dense_seeds"), self.dense_seeds, "a non-empty list of distinct seeds or null")
        _require(self.init_value > 0, key(where, "init_value"), self.init_value, "> 0")


@dataclass
class AblationConfig:
    """The per-component ablation stage (:mod:`connectome_lib.ablation`): Connectome models whose
    mask and signs in some components come from the random control, all from the connectome of
    lineage ``lineage``. ``seeds`` ``None`` = the inner loop's seeds of that lineage;
    ``variants`` ``None`` = all six. ``keep_checkpoints``: whether an ablation model keeps its
    intermediate checkpoints (``checkpoints/iter_*``); the ablation stage evaluates the final
    models only, so by default they are not written (the training, and so the final model, is
    the same either way: not part of any fingerprint)."""

    seeds: list[int] | None = None
    variants: list[str] | None = None
    lineage: int = 0
    keep_checkpoints: bool = False

    def check(self, where: str = "ablations") -> None:
        bad = [v for v in self.variants or [] if v not in ABLATIONS_BY_NAME]
        if bad:
            raise ConfigError(f"{key(where, 'variants')}: unknown {bad}; choose from {sorted(ABLATIONS_BY_NAME)}")
        if self.seeds is not None and not self.seeds:
            raise ConfigError(f"{key(where, 'seeds')} must not be empty (null = the inner loop's seeds)")
        if self.variants is not None and not self.variants:
            raise ConfigError(f"{key(where, 'variants')} must not be empty (null = all six); choose from "
                              f"{sorted(ABLATIONS_BY_NAME)}")
        _require(self.lineage >= 0, key(where, "lineage"), self.lineage, ">= 0")


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
        """Check every value (types, then each section's rules); return the profile."""
        return settings.validate(self)

    def check(self, where: str = "") -> None:
        _require(bool(self.runs_dir), "runs_dir", self.runs_dir, "a folder (not empty)")
        if self.ablations.lineage >= self.evolve.lineages:
            raise ConfigError(f"ablations.lineage ({self.ablations.lineage}) names no lineage: evolve.seeds gives "
                              f"{self.evolve.lineages} (0 to {self.evolve.lineages - 1})")
        if self.data.tokenizer == "bpe" and self.model.vocab_size < self.data.bpe_vocab_size:
            raise ConfigError(
                f"model.vocab_size ({self.model.vocab_size}) is smaller than data.bpe_vocab_size "
                f"({self.data.bpe_vocab_size}): the embedding needs a row for every token"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# profiles: YAML files, ``extends``, overrides


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (value in YAML syntax: ``3``, ``1e-3``, ``[0, 1]``, ``null``)."""
    return settings.parse_override(text)


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
    return settings.load(Profile, data, overrides)


def _read_profile_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ConfigError(f"profile {path} extends itself")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"profile {path}: YAML syntax error: {settings.yaml_problem(e)}") from None
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
        data = settings.merge(base, data)
    return data


def profile_to_yaml(profile: Profile) -> str:
    return yaml.safe_dump(profile.to_dict(), sort_keys=False)


# --------------------------------------------------------------------------------------------
# a profile's evaluation options, and its folders

#: environment variables that redirect a profile's folders without touching the profile (the
#: test suite uses them to keep its runs apart from yours)
RUNS_DIR_ENV, CACHE_DIR_ENV, RESULTS_DIR_ENV = "CONNECTOME_RUNS_DIR", "CONNECTOME_CACHE_DIR", "CONNECTOME_RESULTS_DIR"


def eval_config(profile: Profile, **changes: Any) -> EvalConfig:
    """The profile's evaluation options with its data directory and tokenizer (for ``bpe``: the
    trained tokenizer's folder, trained on first use), plus ``changes``."""
    from .tokenizer import tokenizer_source

    return dataclasses.replace(profile.evals, **{"data_dir": profile.data.data_dir,
                                                 "tokenizer": tokenizer_source(profile.data, progress=False),
                                                 **changes})


def _absolute(path: str | os.PathLike, root: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else root / p


def _first(*values: str | os.PathLike | None) -> str | os.PathLike | None:
    return next((v for v in values if v not in (None, "")), None)


def results_root(results_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> Path:
    """The folder of exported results (one sub-folder per profile): ``results_dir``, else
    ``$CONNECTOME_RESULTS_DIR``, else ``results/``; relative to the project root."""
    root = Path(root) if root is not None else project_root()
    return _absolute(_first(results_dir, os.environ.get(RESULTS_DIR_ENV)) or "results", root)


class ResolvedProfile(NamedTuple):
    """A profile whose folders are absolute, and the folder its exported results go to."""

    profile: Profile
    results_dir: Path

    @property
    def run_root(self) -> Path:
        return self.profile.run_root


def resolve_folders(
    profile: Profile,
    runs_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    overrides: settings.Overrides = None,
) -> ResolvedProfile:
    """Where a profile's runs, caches and results go -- the same for the notebooks and every command.

    Each folder is the value given for this run -- the arguments (command-line flags), else the
    ``overrides`` the profile was loaded with (``--set runs_dir=...``, a notebook's ``overrides``)
    -- else the environment variable (``CONNECTOME_RUNS_DIR``, ``CONNECTOME_CACHE_DIR``,
    ``CONNECTOME_RESULTS_DIR``), else the profile file's value (``runs_dir``, ``data.cache_dir``;
    ``results/`` for the results). A relative path is relative to the project root ``root``
    (default: :func:`~connectome_lib.paths.project_root`). The data directory is ``data_dir``,
    else the profile's ``data.data_dir``; when both are unset it stays unset and
    :func:`~connectome_lib.paths.resolve_data_dir` searches at use time (``$CONNECTOME_DATA_DIR``,
    ...). Returns a copy of the profile with absolute ``runs_dir``, ``data.cache_dir`` (and
    ``data.data_dir`` if set), and the results folder ``<results root>/<profile name>``.
    """
    root = Path(root).resolve() if root is not None else project_root()
    given = settings.nest_overrides(Profile, overrides)
    given_data = given.get("data") if isinstance(given.get("data"), dict) else {}
    runs = _first(runs_dir, given.get("runs_dir"), os.environ.get(RUNS_DIR_ENV), profile.runs_dir)
    cache = _first(cache_dir, given_data.get("cache_dir"), os.environ.get(CACHE_DIR_ENV), profile.data.cache_dir)
    data = _first(data_dir, profile.data.data_dir)
    resolved = dataclasses.replace(
        profile, runs_dir=str(_absolute(runs, root)),
        data=dataclasses.replace(profile.data, cache_dir=str(_absolute(cache, root)),
                                 data_dir=str(_absolute(data, root)) if data is not None else None),
    )
    return ResolvedProfile(resolved, results_root(results_dir, root) / profile.name)
