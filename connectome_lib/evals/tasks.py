"""Dispatch from a task name to its evaluation, with the options of an :class:`EvalConfig`.

:class:`TaskContext` carries what the tasks share for one evaluation session -- the tokenizer,
the options, the validation tokens (an array, or a callable producing it on first use) and
caches of model-independent inputs (localizer stimuli, corpus word counts) -- so that nothing
is global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np
import torch

from ..jsonl import iter_jsonl
from ..paths import data_path
from .baselines import corpus_word_counts, evaluate_baselines
from .blimp import evaluate_blimp
from .config import ALL_TASKS, EvalConfig
from .futrell2018 import evaluate_futrell2018
from .hellaswag import evaluate_hellaswag
from .language_units import build_localizer, evaluate_language_units
from .mmlu import evaluate_mmlu
from .perplexity import evaluate_perplexity
from .results import TaskResult
from .ridge import alpha_grid
from .tuckute2024 import evaluate_tuckute2024

ValTokens = Union[np.ndarray, Callable[[], np.ndarray], None]


def tokenize_val_corpus(tokenizer, data_dir=None) -> np.ndarray:
    """Fallback validation tokens: every ``corpus_val`` book tokenised, each followed by
    ``<|endoftext|>``, concatenated (uint16). The training pipeline's own loader should be
    passed instead when it exists, so that the loss matches the training curves exactly."""
    out: list[int] = []
    for rec in iter_jsonl(data_path("corpus_val", data_dir), require=("text",)):
        out += tokenizer(rec["text"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return np.asarray(out, dtype=np.uint16)


@dataclass
class TaskContext:
    tokenizer: Any
    cfg: EvalConfig
    val_tokens: ValTokens = None
    cache: dict[str, Any] = field(default_factory=dict)

    def get_val_tokens(self) -> np.ndarray:
        if "val_tokens" not in self.cache:
            v = self.val_tokens
            if v is None:
                v = tokenize_val_corpus(self.tokenizer, self.cfg.data_dir)
                self.cache["val_tokens_source"] = "connectome_lib.evals.tasks.tokenize_val_corpus (fallback)"
            elif callable(v):
                v = v()
            self.cache["val_tokens"] = np.asarray(v)
        return self.cache["val_tokens"]

    def localizer(self):
        if "localizer" not in self.cache:
            self.cache["localizer"] = build_localizer(self.cfg.data_dir, self.cfg.localizer_n_sentences, self.cfg.seed)
        return self.cache["localizer"]

    @property
    def alphas(self) -> np.ndarray:
        c = self.cfg
        return alpha_grid(c.brain_alpha_min_exp, c.brain_alpha_max_exp, c.brain_n_alphas)


def run_task(name: str, model: torch.nn.Module, ctx: TaskContext) -> TaskResult:
    """Evaluate ``model`` on task ``name`` with the options in ``ctx.cfg``."""
    if name not in ALL_TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(ALL_TASKS)}")
    c, tok = ctx.cfg, ctx.tokenizer
    common = dict(limit=c.limit, batch_size=c.batch_size, dtype=c.dtype, progress=c.progress)
    model.eval()
    if name == "perplexity":
        res = evaluate_perplexity(model, ctx.get_val_tokens(), context=c.perplexity_context, **common)
        res.metadata["val_tokens"] = ctx.cache.get("val_tokens_source", "supplied by the caller")
        return res
    if name == "hellaswag":
        return evaluate_hellaswag(model, tok, c.data_dir, norm=c.hellaswag_norm, seed=c.seed, **common)
    if name == "mmlu":
        return evaluate_mmlu(model, tok, c.data_dir, prompt=c.mmlu_prompt, seed=c.seed, **common)
    if name == "blimp":
        return evaluate_blimp(model, tok, c.data_dir, leading_space=c.blimp_leading_space,
                              **{**common, "limit": c.blimp_limit or c.limit})
    if name == "futrell2018":
        return evaluate_futrell2018(model, tok, c.data_dir, stride=c.futrell_stride or None,
                                    **{**common, "limit": c.futrell_limit})
    brain = dict(roi=c.brain_roi, folds=c.brain_folds, seed=c.seed, alphas=ctx.alphas)
    brain_common = {**common, "limit": c.brain_limit}
    if name == "tuckute2024":
        return evaluate_tuckute2024(model, tok, c.data_dir, **brain, **brain_common)
    if name == "language_units":
        return evaluate_language_units(
            model, tok, c.data_dir, fractions=tuple(c.language_units_fractions),
            n_sentences=c.localizer_n_sentences, localizer=ctx.localizer(), **brain, **brain_common,
        )
    # baselines; the corpus word counts are model-independent: count once per session
    if c.frequency_corpora and "word_counts" not in ctx.cache:
        ctx.cache["word_counts"] = corpus_word_counts(c.data_dir, tuple(c.frequency_corpora))
    return evaluate_baselines(
        model, tok, lambda task, m: run_task(task, m, ctx), c.data_dir,
        futrell_limit=c.futrell_limit, brain_limit=c.brain_limit,
        frequency_corpora=tuple(c.frequency_corpora), untrained_tasks=tuple(c.baseline_tasks),
        counts=ctx.cache.get("word_counts"), **brain,
    )
