"""Options of the evaluation package, as one flat dataclass.

Every field is a simple type (int, float, str, bool, list of str, or ``None``) so that a profile
can hold the options as YAML and every field can be overridden from the command line by its
dotted name (``evals.limit=20``, ``evals.tasks=[hellaswag,blimp]``); see :func:`apply_overrides`.
Loading, type checks and overrides are those of every settings class (:mod:`connectome_lib.settings`);
the task names come from :mod:`connectome_lib.registry`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .. import settings
from ..registry import PAPER_TASKS, TABLE_TASKS, TASK_NAMES
from ..settings import ConfigError, key, require_choice, unknown


class EvalConfigError(ConfigError):
    """An evaluation option is invalid (unknown task or field, wrong type, impossible value).

    A :class:`~connectome_lib.settings.ConfigError` (so a ``ValueError``, and callers that catch
    those keep working); the command line treats it as a configuration error (exit status 2).
    """


#: every task the package knows, in the order the runner evaluates them
ALL_TASKS: tuple[str, ...] = TASK_NAMES

__all__ = ["ALL_TASKS", "PAPER_TASKS", "TABLE_TASKS", "EvalConfig", "EvalConfigError", "apply_overrides"]


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

    # how :mod:`connectome_lib.settings` reports problems with these options
    config_error = EvalConfigError
    config_key_name = "EvalConfig field"
    config_example = "limit=20"

    def __post_init__(self) -> None:
        settings.validate(self)

    def validate(self) -> "EvalConfig":
        """Raise :class:`EvalConfigError` (a ``ValueError``) naming the option and its bad value."""
        return settings.validate(self)

    def check(self, where: str = "") -> None:
        """The rules beyond the fields' types (:func:`connectome_lib.settings.validate` calls it)."""
        E = EvalConfigError
        unknown_tasks = [t for t in self.tasks if t not in ALL_TASKS]
        if unknown_tasks:
            raise unknown("task(s)", unknown_tasks, ALL_TASKS, E)
        if not self.tasks:
            raise E(f"{key(where, 'tasks')} must name at least one task; known: {', '.join(ALL_TASKS)}")
        bad = [t for t in self.baseline_tasks if t not in ALL_TASKS or t == "baselines"]
        if bad:
            raise unknown("baseline task(s)", bad, [t for t in ALL_TASKS if t != "baselines"], E)
        for name, allowed in (("hellaswag_norm", ("chars", "tokens")), ("mmlu_prompt", ("harness", "paper")),
                              ("dtype", ("float32", "bfloat16")), ("checkpoints", ("all", "final"))):
            require_choice(getattr(self, name), allowed, key(where, name), E)
        for name in ("limit", "blimp_limit", "futrell_limit", "brain_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise E(f"{key(where, name)} must be a positive integer or None (everything), got {value}")
        for name, low in (("batch_size", 1), ("brain_folds", 2), ("brain_n_alphas", 1), ("localizer_n_sentences", 1),
                          ("perplexity_context", 0), ("futrell_stride", 0)):
            if getattr(self, name) < low:
                raise E(f"{key(where, name)} must be >= {low}, got {getattr(self, name)}")
        if not self.language_units_fractions:
            raise E(f"{key(where, 'language_units_fractions')} must not be empty (the language units task would "
                    "report nothing); give fractions in (0, 1], e.g. [0.01, 0.1]")
        for f in self.language_units_fractions:
            if not 0 < f <= 1:
                raise E(f"{key(where, 'language_units_fractions')} must lie in (0, 1], got {f}")

    # -- construction helpers ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "EvalConfig":
        """Build from a mapping (e.g. the ``evals:`` section of a YAML profile)."""
        return settings.load(cls, values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "EvalConfig":
        return dataclasses.replace(self, **changes)


def apply_overrides(cfg: EvalConfig, overrides: Iterable[str] | Mapping[str, Any], prefix: str = "") -> EvalConfig:
    """Return a copy of ``cfg`` with ``name=value`` overrides applied.

    ``prefix`` (e.g. ``"evals."``) is stripped from names that carry it, so the same strings work
    inside the top-level CLI (``evals.limit=20``) and here (``limit=20``). A comma-separated
    value for a list field (``tasks=hellaswag,mmlu``) is split.
    """
    return settings.apply_overrides(cfg, overrides, prefix)
