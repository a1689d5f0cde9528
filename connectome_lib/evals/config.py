"""Options of the evaluation package, as one flat dataclass.

Every field is a simple type (int, float, str, bool, list of str, or ``None``) so that a profile
can hold the options as YAML and every field can be overridden from the command line by its
dotted name (``evals.limit=20``, ``evals.tasks=[hellaswag,blimp]``); see :func:`apply_overrides`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

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

    Subsets, for smoke runs and small machines (``None`` = everything; always the first items,
    so subsets are deterministic): ``limit`` applies to the expensive tasks -- the first
    ``limit`` items of HellaSwag and MMLU (file order), the first ``limit`` pairs of *each*
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
        """Raise ``ValueError`` with a clear message for an impossible option."""
        unknown = [t for t in self.tasks if t not in ALL_TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known tasks: {', '.join(ALL_TASKS)}")
        bad = [t for t in self.baseline_tasks if t not in ALL_TASKS or t == "baselines"]
        if bad:
            raise ValueError(f"unknown baseline task(s) {bad}; choose among {', '.join(ALL_TASKS[:-1])}")
        choices = {
            "hellaswag_norm": ("chars", "tokens"),
            "mmlu_prompt": ("harness", "paper"),
            "dtype": ("float32", "bfloat16"),
            "checkpoints": ("all", "final"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("limit", "blimp_limit", "futrell_limit", "brain_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer or None, got {value}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.brain_folds < 2:
            raise ValueError("brain_folds must be >= 2")
        for f in self.language_units_fractions:
            if not 0 < f <= 1:
                raise ValueError(f"language_units_fractions must lie in (0, 1], got {f}")

    # -- construction helpers ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "EvalConfig":
        """Build from a mapping (e.g. the ``evals:`` section of a YAML profile)."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(values) - known)
        if extra:
            raise ValueError(f"unknown EvalConfig field(s) {extra}; known: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "EvalConfig":
        return dataclasses.replace(self, **changes)


def parse_value(text: str) -> Any:
    """Parse a command-line value the YAML way: ``20`` -> 20, ``[a,b]`` -> list, ``null`` -> None."""
    return yaml.safe_load(text)


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
            raise ValueError(f"override {item!r} is not of the form name=value")
        name, text = item.split("=", 1)
        name = name.strip()
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
        if name not in fields:
            raise ValueError(f"unknown EvalConfig field {name!r}; known: {', '.join(sorted(fields))}")
        value = parse_value(text)
        current = getattr(cfg, name)
        if isinstance(current, list) and isinstance(value, str):
            value = [parse_value(v.strip()) for v in value.split(",") if v.strip()]
        if isinstance(current, list) and not isinstance(value, list):
            value = [value]
        changes[name] = value
    return cfg.replace(**changes)
