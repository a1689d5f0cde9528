"""Options of the evaluation package, as one flat dataclass.

Every field is a simple type (int, float, str, bool, list of str, or ``None``) so that a profile
can hold the options as YAML and every field can be overridden from the command line by its
dotted name (``evals.limit=20``, ``evals.tasks=[hellaswag,blimp]``); see :func:`apply_overrides`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml


class EvalConfigError(ValueError):
    """An evaluation option is invalid (unknown task or field, wrong type, impossible value).

    A ``ValueError``, so callers that catch those keep working; the command line treats it as
    a configuration error (exit status 2), like :class:`connectome_lib.config.ConfigError`.
    """


def _suggest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(what: str, names: list[str], choices: Iterable[str]) -> EvalConfigError:
    choices = list(choices)
    hints = "".join(_suggest(n, choices) for n in names[:1])
    return EvalConfigError(f"unknown {what} {', '.join(map(repr, names))}{hints}; known: {', '.join(choices)}")


def _type_ok(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the simple annotation ``tp`` (int, float, str, bool, list[...], X | None)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True

#: every task the package knows, in the order the runner evaluates them
ALL_TASKS: tuple[str, ...] = (
    "perplexity",
    "hellaswag",
    "mmlu",
    "blimp",
    "futrell2018",
    "tuckute2024",
    "language_units",
    "baselines",
)

#: the tasks whose result comes with a per-item table (``tables/<model>__<task>.csv``): a results
#: row of one of them without its table is incomplete, and is computed again
TABLE_TASKS: frozenset[str] = frozenset({"perplexity", "hellaswag", "mmlu", "blimp", "futrell2018", "language_units"})

#: the tasks of the paper (the ``baselines`` task is ours)
PAPER_TASKS: tuple[str, ...] = (
    "perplexity",
    "hellaswag",
    "mmlu",
    "futrell2018",
    "tuckute2024",
    "language_units",
)


@dataclass
class EvalConfig:
    """What to evaluate and how.

    Subsets, for smoke runs and small machines (``None`` = everything; deterministic for a
    given ``seed``): ``limit`` applies to the expensive tasks -- a seeded random sample of
    ``limit`` HellaSwag items, a seeded sample of ``limit`` MMLU questions stratified over the
    57 subjects (both recorded in the metadata), the first ``limit`` pairs of *each*
    BLiMP paradigm (``blimp_limit`` instead, when set: BLiMP scores every token of 67,000
    pairs and is the slowest task on a CPU) and the first ``limit`` windows of the validation
    tokens. The cheap tasks
    have their own limits: ``futrell_limit`` counts Natural Stories *stories* (at most 10) and
    ``brain_limit`` Tuckute sentences (at least ``brain_folds * 2`` are kept so that
    cross-validation stays possible); the baselines use the same two.
    """

    tasks: list[str] = field(default_factory=lambda: list(PAPER_TASKS))
    limit: int | None = None
    blimp_limit: int | None = None
    futrell_limit: int | None = None
    brain_limit: int | None = None
    batch_size: int = 16
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    dtype: str = "float32"  # "float32" or "bfloat16" (bf16 autocast, used on GPU only)
    seed: int = 0
    progress: bool = True
    data_dir: str | None = None
    tokenizer: str | None = None  # None = the GPT-2 files in the data directory

    # HellaSwag: which normalisation the headline "acc_norm" uses; both are always reported
    hellaswag_norm: str = "chars"  # "chars" (lm-evaluation-harness) or "tokens" (official script)
    # MMLU prompt: "harness" (lm-evaluation-harness default) or "paper" ("Question: ..\n\nAnswer:")
    mmlu_prompt: str = "harness"
    # BLiMP: score " " + sentence after <|endoftext|> (lm-evaluation-harness's target delimiter)
    blimp_leading_space: bool = True

    # validation loss: window length (0 = the model's context window)
    perplexity_context: int = 0

    # Futrell2018: sliding-window stride in tokens for stories longer than the window (0 = half)
    futrell_stride: int = 0

    # brain (Tuckute2024) and language units
    brain_roi: str = "lang_LH_netw"
    brain_folds: int = 5
    brain_alpha_min_exp: int = -30  # RidgeCV alphas = logspace(min_exp, max_exp, n)
    brain_alpha_max_exp: int = 29
    brain_n_alphas: int = 60
    language_units_fractions: list[float] = field(default_factory=lambda: [0.01, 0.10])
    localizer_n_sentences: int = 240

    # baselines: corpora whose word counts give unigram frequencies
    frequency_corpora: list[str] = field(default_factory=lambda: ["corpus_val", "corpus_inner"])
    # baselines: tasks on which the untrained same-architecture model is evaluated
    baseline_tasks: list[str] = field(default_factory=lambda: ["futrell2018", "tuckute2024"])

    # runner: "all" checkpoints of a training folder, or only the "final" model
    checkpoints: str = "all"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`EvalConfigError` (a ``ValueError``) naming the option and its bad value."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _type_ok(value, hints[f.name]):
                raise EvalConfigError(f"{f.name} must be of type {hints[f.name]}, got {value!r}")
        unknown = [t for t in self.tasks if t not in ALL_TASKS]
        if unknown:
            raise _unknown("task(s)", unknown, ALL_TASKS)
        if not self.tasks:
            raise EvalConfigError(f"tasks must name at least one task; known: {', '.join(ALL_TASKS)}")
        bad = [t for t in self.baseline_tasks if t not in ALL_TASKS or t == "baselines"]
        if bad:
            raise _unknown("baseline task(s)", bad, ALL_TASKS[:-1])
        choices = {
            "hellaswag_norm": ("chars", "tokens"),
            "mmlu_prompt": ("harness", "paper"),
            "dtype": ("float32", "bfloat16"),
            "checkpoints": ("all", "final"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise EvalConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}"
                                      f"{_suggest(getattr(self, name), allowed)}")
        for name in ("limit", "blimp_limit", "futrell_limit", "brain_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise EvalConfigError(f"{name} must be a positive integer or None (everything), got {value}")
        for name, low in (("batch_size", 1), ("brain_folds", 2), ("brain_n_alphas", 1), ("localizer_n_sentences", 1),
                          ("perplexity_context", 0), ("futrell_stride", 0)):
            if getattr(self, name) < low:
                raise EvalConfigError(f"{name} must be >= {low}, got {getattr(self, name)}")
        for f in self.language_units_fractions:
            if not 0 < f <= 1:
                raise EvalConfigError(f"language_units_fractions must lie in (0, 1], got {f}")

    # -- construction helpers ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "EvalConfig":
        """Build from a mapping (e.g. the ``evals:`` section of a YAML profile)."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(values) - known)
        if extra:
            raise _unknown("EvalConfig field(s)", extra, sorted(known))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "EvalConfig":
        return dataclasses.replace(self, **changes)


def parse_value(text: str) -> Any:
    """Parse a command-line value the YAML way: ``20`` -> 20, ``[a,b]`` -> list, ``null`` -> None."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise EvalConfigError(f"value {text!r} is not valid YAML ({problem})") from None


def apply_overrides(cfg: EvalConfig, overrides: Iterable[str], prefix: str = "") -> EvalConfig:
    """Return a copy of ``cfg`` with ``name=value`` overrides applied.

    ``prefix`` (e.g. ``"evals."``) is stripped from names that carry it, so the same strings work
    inside the top-level CLI (``evals.limit=20``) and here (``limit=20``). A comma-separated
    value for a list field (``tasks=hellaswag,mmlu``) is split.
    """
    changes: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(EvalConfig)}
    for item in overrides:
        if "=" not in item:
            raise EvalConfigError(f"override {item!r} is not of the form name=value, e.g. limit=20")
        name, text = item.split("=", 1)
        name = name.strip()
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
        if name not in fields:
            raise _unknown("EvalConfig field", [name], sorted(fields))
        try:
            value = parse_value(text)
        except EvalConfigError as e:
            raise EvalConfigError(f"override {item!r}: {e}") from None
        current = getattr(cfg, name)
        if isinstance(current, list) and isinstance(value, str):
            value = [parse_value(v.strip()) for v in value.split(",") if v.strip()]
        if isinstance(current, list) and not isinstance(value, list):
            value = [value]
        changes[name] = value
    return cfg.replace(**changes)
